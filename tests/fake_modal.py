"""Stand-ins for Modal, which these tests cannot reach.

:class:`InMemoryVolume` is a test double of the part of ``modal.Volume`` that
``credit_scorer.records.modal_volume`` uses: ``listdir`` (``modal.types.FileEntry`` entries; a
file path lists just that file; a missing path raises ``modal.exception.NotFoundError``),
``read_file`` (chunks; a missing file raises ``FileNotFoundError``, as modal.volume converts it),
``batch_upload(force=...)`` (uploads happen when the batch closes; without ``force`` an existing
file makes the whole batch fail with ``FileExistsError``, as modal.volume raises it from the
server's ``AlreadyExistsError``) and ``remove_file``. It models what Modal's client code and docs
say, not a live Volume: consistency and latency of the real service are not tested.

:func:`install_fake_cli` writes an executable named ``modal`` that stands in for the Modal CLI:
``modal deploy <file>`` records its arguments, copies the app file and its neighbours (as
``modal deploy`` uploads them), starts the release's scoring app the way the generated class does
(``credit_scorer.adapters.modal.runtime.open_scoring_app`` with the file's constants; the Volume
mount mapped to a local folder) with uvicorn on 127.0.0.1, and prints what ``modal deploy``
prints, with that local URL as the web endpoint; ``modal app stop <name> --yes`` stops it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from modal.exception import NotFoundError
from modal.types import FileEntry, FileEntryType


class _Batch:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def put_file(self, local_file: BinaryIO | io.BytesIO, remote_path: str) -> None:
        path = PurePosixPath(remote_path).as_posix()
        if path.endswith("/"):
            raise ValueError(f"remote_path ({path}) must refer to a file - cannot end with /")
        self.files[path.lstrip("/")] = local_file.read()


class InMemoryVolume:
    """A test double of the ``modal.Volume`` methods the Modal Volume filesystem calls."""

    def __init__(self, name: str = "credit-scorer") -> None:
        self.name = name
        self.files: dict[str, bytes] = {}
        self.uploads: list[tuple[bool, list[str]]] = []  # (force, paths) of every committed batch

    def listdir(self, path: str, *, recursive: bool = False) -> list[FileEntry]:
        inner = path.strip("/")
        if inner in self.files:
            return [self._entry(inner)]
        prefix = f"{inner}/" if inner else ""
        children: dict[str, FileEntry] = {}
        for name in self.files:
            if not name.startswith(prefix):
                continue
            rest = name[len(prefix) :]
            head, _, tail = rest.partition("/")
            child = prefix + head
            if tail and not recursive:
                children.setdefault(child, FileEntry(path=child, type=FileEntryType.DIRECTORY, mtime=0, size=0))
            else:
                children[name if recursive else child] = self._entry(name)
        if not children:
            raise NotFoundError(f"No such file or directory: {path}")
        return sorted(children.values(), key=lambda e: e.path)

    def read_file(self, path: str) -> Iterator[bytes]:
        inner = path.strip("/")
        if inner not in self.files:
            raise FileNotFoundError(f"No such file: {path}")
        data = self.files[inner]
        return iter([data[i : i + 7] for i in range(0, len(data), 7)] or [b""])

    @contextlib.contextmanager
    def batch_upload(self, force: bool = False) -> Iterator[_Batch]:
        batch = _Batch()
        yield batch
        if not force:
            taken = [p for p in batch.files if p in self.files]
            if taken:
                raise FileExistsError(f"Files already exist: {', '.join(taken)}")
        self.files.update(batch.files)
        self.uploads.append((force, sorted(batch.files)))

    def remove_file(self, path: str, recursive: bool = False) -> None:
        inner = path.strip("/")
        if inner not in self.files:
            raise FileNotFoundError(f"No such file: {path}")
        del self.files[inner]

    def _entry(self, name: str) -> FileEntry:
        return FileEntry(path=name, type=FileEntryType.FILE, mtime=int(time.time()), size=len(self.files[name]))


# ---------------------------------------------------------------------------
# The stand-in `modal` executable
# ---------------------------------------------------------------------------
_CLI = r'''#!{python}
"""Stand-in for the `modal` CLI (tests/fake_modal.py): deploy starts the scoring app locally."""
import ast, json, os, shutil, signal, socket, subprocess, sys, time
from pathlib import Path

STATE = Path(os.environ["FAKE_MODAL_STATE"])
STATE.mkdir(parents=True, exist_ok=True)
with open(STATE / "calls.jsonl", "a") as calls:
    calls.write(json.dumps(sys.argv[1:]) + "\n")
args = sys.argv[1:]

SERVE = """
import sys, uvicorn
from pathlib import Path
from credit_scorer.adapters.modal.runtime import open_scoring_app, close_scoring_app
model, reasons, release, sha, port, log_root, tokens_required = sys.argv[1:]
app = open_scoring_app(release, sha, Path(model), Path(reasons), Path(log_root), tokens_required=tokens_required == "1")
uvicorn.run(app, host="127.0.0.1", port=int(port), log_level="warning", lifespan="off")
close_scoring_app(app)
"""

def constants(path):
    found = {{}}
    for node in ast.parse(Path(path).read_text()).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:
                found[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return found

if args[:1] == ["deploy"]:
    if os.environ.get("FAKE_MODAL_DEPLOY_FAIL"):
        token = os.environ.get("MODAL_TOKEN_SECRET", "")
        sys.stderr.write(f"Error: Token validation failed for secret {{token}}\n")
        sys.exit(1)
    source = Path(args[1])
    c = constants(source)
    app_dir = STATE / c["APP_NAME"]
    shutil.rmtree(app_dir, ignore_errors=True)
    shutil.copytree(source.parent, app_dir)  # what `modal deploy` uploads
    release = os.environ.get("FAKE_MODAL_SERVE_RELEASE") or c["RELEASE_ID"]  # a misconfigured app, on purpose
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    volume_root = Path(os.environ["FAKE_MODAL_VOLUMES"]) / c["VOLUME_NAME"]
    log_root = volume_root / os.path.relpath(c["DECISION_LOG_DIR"], c["VOLUME_MOUNT"])
    server = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(app_dir / "model.json"), str(app_dir / "reason_codes.yaml"),
         release, c["MODEL_SHA256"], str(port), str(log_root), "1" if c["API_TOKEN_SECRET"] else "0"],
        stdin=subprocess.DEVNULL, stdout=open(app_dir / "server.log", "ab"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    (STATE / f"{{c['APP_NAME']}}.pid").write_text(str(server.pid))
    print("✓ Created objects.")
    print(f"├── 🔨 Created mount {{source}}")
    print(f"└── 🔨 Created class Scorer.")
    print(f"    └── web -> http://127.0.0.1:{{port}} (unauthenticated)")
    print("✓ App deployed in 1.234s! 🎉")
    print()
    print(f"View Deployment: https://modal.com/apps/test-workspace/main/deployed/{{c['APP_NAME']}}")
    sys.exit(0)

if args[:2] == ["app", "stop"]:
    name = args[2]
    pid_file = STATE / f"{{name}}.pid"
    if not pid_file.exists():
        sys.stderr.write("App is already stopped.\n")
        sys.exit(1)
    pid = int(pid_file.read_text())
    try:
        os.kill(pid, signal.SIGTERM)
        for _ in range(200):
            os.kill(pid, 0)
            time.sleep(0.05)
    except ProcessLookupError:
        pass
    pid_file.unlink()
    print(f"Stopped app {{name}}")
    sys.exit(0)

sys.stderr.write(f"fake modal: unsupported command {{args}}\n")
sys.exit(2)
'''


def install_fake_cli(bin_dir: Path) -> Path:
    """Write the stand-in ``modal`` executable into ``bin_dir`` and return its path."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / "modal"
    path.write_text(_CLI.format(python=sys.executable), encoding="utf-8")
    path.chmod(0o755)
    return path


def calls(state: Path) -> list[list[str]]:
    """Every argument list the stand-in CLI was called with."""
    log = state / "calls.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def stop_all(state: Path) -> None:
    """Stop every scoring server the stand-in CLI started (test clean-up)."""
    for pid_file in state.glob("*.pid"):
        with contextlib.suppress(ProcessLookupError, ValueError):
            pid = int(pid_file.read_text())
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)
        pid_file.unlink(missing_ok=True)
