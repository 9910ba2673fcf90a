"""The ``local`` deployer: a detached uvicorn process on 127.0.0.1 per release.

Each deployment is a ``python -m credit_scorer.serving`` process in its own session, so it
outlives the process that started it. Its registry entry is ``<state_dir>/<release_id>.json``
(a :class:`~credit_scorer.core.ports.Deployment`), written the moment the process exists —
its PID and port known before it can answer anything — and again once it is ready (it answered
``/health``, reported the expected model on ``/model`` and scored a sample applicant) and once
active. With a compliance store the registry is ledgered (kind ``deployment``); its output goes
to ``<state_dir>/logs/<release_id>.log``.

With an :class:`~credit_scorer.core.ports.Activation` the server is started inactive and its
stdin is a pipe held by this process: the server scores only after the ledger holds its token,
and exits if the pipe closes first (this process died before the approval was recorded).
"""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import json
import logging
import subprocess
import sys
import time
import urllib.error
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError

from credit_scorer.adapters.endpoint import (
    check_model_file,
    check_release_id,
    health_ok,
    http_json,
    missing_request_fields,
    model_mismatch,
    now_utc,
)
from credit_scorer.adapters.local_processes import (
    HOST,
    SERVING_MODULE,
    STARTED,
    free_port,
    kill,
    port_is_free,
    serving_process_alive,
    terminate,
)
from credit_scorer.core.faults import crash_point
from credit_scorer.core.files import write_atomic
from credit_scorer.core.ports import Activation, Deployment, DeploymentError, DeploymentStatus
from credit_scorer.core.settings import current_settings, environ
from credit_scorer.records import ledger
from credit_scorer.records.layout import DECISION_LOGS_DIR
from credit_scorer.records.store import ComplianceStore
from credit_scorer.serving.decision_log import LOG_NAME, retire_live_file, seal_path, seal_segment
from credit_scorer.serving.reasons import reason_table_path

logger = logging.getLogger(__name__)

LOG_TAIL_LINES = 20
_PORT_IN_USE = "address already in use"
_ATTEMPTS_ON_FREE_PORT = 3

# The stdin pipes of servers waiting for activation, by release: they close when this process dies.
_PIPES: dict[str, IO[bytes]] = {}


class _StartFailed(DeploymentError):
    """One start attempt failed; ``port_taken`` when another process bound the port first."""

    def __init__(self, message: str, port_taken: bool = False) -> None:
        super().__init__(message)
        self.port_taken = port_taken


class LocalDeployer:
    """Deploys releases as detached local uvicorn processes, tracked by state files in ``state_dir``."""

    backend = "local"

    def __init__(
        self,
        state_dir: Path,
        startup_timeout: float = 30.0,
        stop_timeout: float = 5.0,
        python: str | None = None,
        reason_codes: Path | None = None,
        decision_log_root: Path | None = None,
        store: ComplianceStore | None = None,
    ) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.store = store
        self._registry_folder = (
            self.state_dir.relative_to(Path(store.root)).as_posix() if store is not None and store.is_local else None
        )
        self.log_dir = self.state_dir / "logs"
        self.reason_codes = reason_table_path(reason_codes).resolve()  # resolved here: the server runs elsewhere
        self.decision_log_root = Path(decision_log_root or self.state_dir.parent / DECISION_LOGS_DIR).resolve()
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.python = python or sys.executable

    # ------------------------------------------------------------------ protocol
    def deploy(
        self,
        release_id: str,
        model_path: Path,
        model_sha256: str,
        port: int | None = None,
        activation: Activation | None = None,
    ) -> Deployment:
        """Serve the model file and return once the endpoint answers with the expected sha256.

        Deploying a release that is already live with the same model (and port, if given)
        returns its existing deployment; with another model or port it raises. With ``activation``
        the endpoint is returned inactive; :meth:`await_active` waits for it to score.
        """
        check_release_id(release_id)
        model_sha256 = model_sha256.strip().lower()
        model_path = Path(model_path).resolve()
        check_model_file(model_path, model_sha256)
        if port is not None and not 0 < port < 65536:
            raise DeploymentError(f"port {port} is not a TCP port; pass 1-65535, or None to pick a free one")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self._lock(release_id):
            existing = self._read_state(release_id)
            if existing is not None:
                if serving_process_alive(existing.pid, release_id):
                    same = existing.model_sha256 == model_sha256 and port in (None, existing.port)
                    if same and existing.active and health_ok(existing.url):
                        return existing  # already serving exactly this: deploying again is a no-op
                    raise DeploymentError(
                        f"release {release_id} is already deployed at {existing.url} (pid {existing.pid}, "
                        f"model {existing.model_sha256}); stop it first to redeploy it differently"
                    )
                self._remove_state(release_id)  # stale record of a dead process
            if port is not None:
                if not port_is_free(port):
                    raise DeploymentError(
                        f"port {port} on {HOST} is already in use; pass another port, or none to pick a free one"
                    )
                return self._start(release_id, model_path, model_sha256, port, activation)
            for attempt in range(_ATTEMPTS_ON_FREE_PORT):
                try:
                    return self._start(release_id, model_path, model_sha256, free_port(), activation)
                except _StartFailed as exc:
                    if not exc.port_taken or attempt == _ATTEMPTS_ON_FREE_PORT - 1:
                        raise DeploymentError(str(exc)) from None
            raise AssertionError("unreachable")  # pragma: no cover

    def stop(self, release_id: str) -> bool:
        """Stop the release's endpoint; False when none was running."""
        check_release_id(release_id)
        with self._lock(release_id):
            deployment = self._read_state(release_id)
            if deployment is None:
                return False
            stopped = False
            if serving_process_alive(deployment.pid, release_id):
                stopped = terminate(deployment.pid, self.stop_timeout)
                if not stopped:
                    raise DeploymentError(
                        f"pid {deployment.pid} serving release {release_id} did not exit after SIGTERM and "
                        f"SIGKILL; the state file {self._state_path(release_id)} is kept"
                    )
            else:
                logger.warning(
                    "release %s: pid %d is no longer its server; removing the stale record",
                    release_id,
                    deployment.pid,
                )
            _PIPES.pop(release_id, None)
            try:  # the endpoint is stopped first: a ledger that cannot be written never keeps it serving
                self._remove_state(release_id)
            except (ledger.LedgerError, OSError) as exc:
                logger.warning("release %s stopped; its registry entry stays (ledger refused: %s)", release_id, exc)
                return stopped
        with contextlib.suppress(ledger.LedgerError, OSError, ValueError):
            self.seal_logs()
        return stopped

    def seal_logs(self) -> list[str]:
        """Ledger the sealed segments of every release's decision log (see :meth:`Deployer.seal_logs`).

        A running server seals its own segments (at rotation and shutdown); for a release with no running
        server, a live ``decisions.jsonl`` or an unsealed segment was left by a killed one: it is retired and
        sealed here (reason ``recovery``). Then each seal is checked against its segment and ledgered (kind
        ``decision_log_segment``: the segment's sha256, the seal inline), once.
        """
        if self.store is None or not self.decision_log_root.is_dir():
            return []
        running = {d.release_id for d in self._deployments() if serving_process_alive(d.pid, d.release_id)}
        found = ledger.entries(self.store)
        ledgered = {e.path for e in found if e.kind == "decision_log_segment"}
        prefix = f"{self._registry_folder}/"
        deployed = {  # releases this deployer ever registered (ledgered): only their servers wrote decision logs
            e.path[len(prefix) : -len(".json")] for e in found if e.kind == "deployment" and e.path.startswith(prefix)
        }
        root = Path(self.store.root)
        done: list[str] = []
        for folder in sorted(p for p in self.decision_log_root.iterdir() if p.is_dir()):
            release_id = folder.name
            if release_id not in deployed:
                logger.warning("%s: no ledgered deployment of %s; nothing in it is ledgered", folder, release_id)
                continue
            if release_id not in running:
                self._seal_left_open(folder, release_id)
            for segment in sorted(folder.glob("decisions-*.jsonl")):
                path = segment.relative_to(root).as_posix()
                seal_file = seal_path(segment)
                if path in ledgered or not seal_file.exists():
                    continue
                seal, data = _seal_and_segment(seal_file, segment)
                why = _why_not_ledgered(seal, data, release_id)
                if why is not None:
                    logger.warning("%s: %s; not ledgered (audit verify says so)", path, why)
                    continue
                assert seal is not None
                row = ledger.canonical_event(seal)
                ledger.append(self.store, "decision_log_segment", path, data, row=row)
                done.append(f"ledgered the decision-log segment {path} ({seal.get('lines')} decisions)")
        return done

    def _seal_left_open(self, folder: Path, release_id: str) -> None:
        """Retire and seal the decision log a killed server of this release left behind."""
        model_sha256 = ""
        with contextlib.suppress(OSError, ValidationError):
            state = self._read_state(release_id)
            model_sha256 = state.model_sha256 if state else ""
        if (folder / LOG_NAME).exists() and (folder / LOG_NAME).stat().st_size > 0:
            retire_live_file(folder)
        for segment in sorted(folder.glob("decisions-*.jsonl")):
            if not seal_path(segment).exists():
                why = _lines_not_of(segment.read_bytes(), release_id, model_sha256)
                if why is not None:
                    logger.warning("%s: %s; not sealed (audit verify says so)", segment, why)
                    continue
                with contextlib.suppress(FileExistsError):
                    seal_segment(segment, release_id, model_sha256 or _model_of(segment), "recovery")

    def await_active(self, release_id: str, timeout: float = 15.0) -> Deployment:
        """Wait until the endpoint reports ``active`` (it saw its activation entry), then register it active."""
        check_release_id(release_id)
        deployment = self._read_state(release_id)
        if deployment is None:
            raise DeploymentError(f"release {release_id} has no registered endpoint to activate")
        deadline = time.monotonic() + timeout
        last = "it never reported active"
        while time.monotonic() < deadline:
            if not serving_process_alive(deployment.pid, release_id):
                raise DeploymentError(
                    f"the endpoint of {release_id} (pid {deployment.pid}) exited before it became active; "
                    f"see {self.log_path(release_id)}"
                )
            try:
                if http_json("GET", f"{deployment.url}/health", timeout=1.0).get("active") is True:
                    active = deployment.model_copy(update={"active": True})
                    with self._lock(release_id):
                        self._write_state(active)
                    pipe = _PIPES.pop(release_id, None)
                    if pipe is not None:
                        with contextlib.suppress(OSError):
                            pipe.close()  # the server ignores the pipe once active
                    return active
            except (OSError, ValueError) as exc:
                last = f"last error: {exc}"
            time.sleep(0.02)
        raise DeploymentError(f"the endpoint of {release_id} did not become active within {timeout:g} s ({last})")

    def list(self) -> list[DeploymentStatus]:
        """Every tracked deployment, with liveness (process alive and ``/health`` answers)."""
        statuses = []
        for deployment in self._deployments():
            health: dict[str, object] = {}
            if serving_process_alive(deployment.pid, deployment.release_id):
                with contextlib.suppress(OSError, ValueError):
                    health = http_json("GET", f"{deployment.url}/health", timeout=2.0)
            alive = health.get("status") == "ok"
            active = alive and health.get("active", True) is True
            statuses.append(DeploymentStatus(deployment=deployment, alive=alive, active=active))
        return statuses

    # ------------------------------------------------------------------ helpers
    def find_by_url(self, url: str) -> Deployment | None:
        """The tracked deployment serving ``url`` (trailing slash and ``localhost`` ignored), else None."""
        wanted = _url_key(url)
        for deployment in self._deployments():
            if _url_key(deployment.url) == wanted:
                return deployment
        return None

    def get(self, release_id: str) -> Deployment | None:
        """The tracked deployment of a release, else None."""
        check_release_id(release_id)
        return self._read_state(release_id)

    def decision_log_dir(self, release_id: str) -> Path:
        """Folder of a release's decision log (Art. 12)."""
        return self.decision_log_root / release_id

    def log_path(self, release_id: str) -> Path:
        """The server log of a release."""
        return self.log_dir / f"{release_id}.log"

    def _state_path(self, release_id: str) -> Path:
        return self.state_dir / f"{release_id}.json"

    def _deployments(self) -> builtins.list[Deployment]:
        if not self.state_dir.is_dir():
            return []
        found = []
        for path in sorted(self.state_dir.glob("*.json")):
            deployment = self._read_state(path.stem)
            if deployment is not None:
                found.append(deployment)
        return sorted(found, key=lambda d: (d.started_at, d.release_id))

    def _write_state(self, deployment: Deployment) -> None:
        """Register (or update) a deployment: ledgered when the deployer has a store."""
        data = deployment.model_dump_json(indent=2).encode() + b"\n"
        if self.store is not None and self._registry_folder is not None:
            ledger.commit(self.store, "deployment", f"{self._registry_folder}/{deployment.release_id}.json", data)
        else:
            write_atomic(self._state_path(deployment.release_id), data)

    def _remove_state(self, release_id: str) -> None:
        if not self._state_path(release_id).exists():
            return
        if self.store is not None and self._registry_folder is not None:
            ledger.commit_removal(self.store, "deployment", f"{self._registry_folder}/{release_id}.json")
        else:
            self._state_path(release_id).unlink(missing_ok=True)

    def _read_state(self, release_id: str) -> Deployment | None:
        path = self._state_path(release_id)
        try:
            return Deployment.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValidationError) as exc:
            logger.warning("ignoring unreadable deployment state file %s: %s", path, exc)
            return None

    @contextlib.contextmanager
    def _lock(self, release_id: str) -> Iterator[None]:
        """Serialise deploy/stop of one release across processes."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.state_dir / f".{release_id}.lock", "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _start(
        self, release_id: str, model_path: Path, model_sha256: str, port: int, activation: Activation | None
    ) -> Deployment:
        log_path = self.log_path(release_id)
        command = [
            self.python,
            "-m",
            SERVING_MODULE,
            "--model",
            str(model_path),
            "--release-id",
            release_id,
            "--host",
            HOST,
            "--port",
            str(port),
            "--decision-log",
            str(self.decision_log_dir(release_id)),
            "--reason-codes",
            str(self.reason_codes),
        ]
        token_file = current_settings().api_token_file
        if token_file:
            command += ["--token-file", str(Path(token_file).resolve())]
        if activation is not None:
            command += [
                "--activation-ledger",
                str(Path(activation.ledger_file).resolve()),
                "--activation-token",
                activation.token,
            ]
        env = {**environ(), "PYTHONUNBUFFERED": "1"}
        with open(log_path, "ab") as log:
            log_offset = log.tell()
            stamp = now_utc()
            log.write(f"--- {stamp} deploy {release_id} on {HOST}:{port}: {' '.join(command)}\n".encode())
            log.flush()
            try:
                process = subprocess.Popen(
                    command,
                    stdin=subprocess.PIPE if activation is not None else subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    close_fds=True,
                    cwd=self.state_dir,
                    env=env,
                )
            except OSError as exc:
                raise DeploymentError(
                    f"cannot start the scoring server with {self.python}: {exc}; check the Python interpreter"
                ) from None
        STARTED[process.pid] = process
        if process.stdin is not None:
            _PIPES[release_id] = process.stdin
        crash_point("deploy-server-spawned")
        url = f"http://{HOST}:{port}"
        deployment = Deployment(
            release_id=release_id,
            url=url,
            model_sha256=model_sha256,
            model_path=str(model_path),
            port=port,
            pid=process.pid,
            started_at=stamp,
            backend=self.backend,
            active=False,
        )
        try:
            self._write_state(deployment)  # registered before it can answer: no unknown server ever scores
            crash_point("deploy-server-registered")
            self._await_ready(process, url, release_id, model_sha256, log_path, log_offset)
            if activation is None:
                deployment = deployment.model_copy(update={"active": True})
                self._write_state(deployment)
        except BaseException:
            kill(process, self.stop_timeout)
            _PIPES.pop(release_id, None)
            with contextlib.suppress(OSError, ledger.LedgerError):
                self._remove_state(release_id)
            raise
        crash_point("deploy-server-ready")
        return deployment

    def _await_ready(
        self,
        process: subprocess.Popen[bytes],
        url: str,
        release_id: str,
        model_sha256: str,
        log_path: Path,
        log_offset: int,
    ) -> None:
        deadline = time.monotonic() + self.startup_timeout
        last_problem = "it never answered"
        while True:
            code = process.poll()
            if code is not None:
                tail = _log_tail(log_path, log_offset)
                raise _StartFailed(
                    f"the server for release {release_id} exited with code {code} before answering "
                    f"on {url}; last lines of {log_path}:\n{tail}",
                    port_taken=_PORT_IN_USE in tail.lower(),
                )
            if time.monotonic() > deadline:
                raise _StartFailed(
                    f"the server for release {release_id} did not become ready on {url} within "
                    f"{self.startup_timeout:g} s ({last_problem}); it was killed; last lines of "
                    f"{log_path}:\n{_log_tail(log_path, log_offset)}"
                )
            try:
                if health_ok(url, timeout=1.0):
                    self._check_serving(url, release_id, model_sha256, log_path, log_offset)
                    return
            except (OSError, ValueError) as exc:  # refused / reset / timed out / bad JSON: retry
                last_problem = f"last error: {exc}"
            time.sleep(0.1)

    def _check_serving(self, url: str, release_id: str, model_sha256: str, log_path: Path, log_offset: int) -> None:
        info = http_json("GET", f"{url}/model", timeout=5.0)
        mismatch = model_mismatch(info, url, release_id, model_sha256)
        if mismatch is not None:
            tail = _log_tail(log_path, log_offset)
            raise _StartFailed(f"{mismatch}; it was killed; last lines of {log_path}:\n{tail}")
        missing = missing_request_fields(info, url)
        if missing is not None:
            raise _StartFailed(missing)
        # The service scored a sample applicant at start-up (not logged as a decision) before answering.


# ---------------------------------------------------------------------------
# Module helpers
# ---------------------------------------------------------------------------
def _read_error(exc: urllib.error.HTTPError) -> str:
    try:
        return exc.read().decode(errors="replace")[:500]
    except OSError:
        return "no body"


def _url_key(url: str) -> tuple[str, str, int | None, str]:
    parts = urllib.parse.urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    if host == "localhost":
        host = HOST
    return parts.scheme.lower(), host, parts.port, parts.path.rstrip("/")


def _log_tail(log_path: Path, offset: int = 0, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with open(log_path, "rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
    except OSError as exc:
        return f"(log unreadable: {exc})"
    kept = text.strip().splitlines()[-lines:]
    return "\n".join(kept) if kept else "(log is empty)"


def _seal_and_segment(seal_file: Path, segment: Path) -> tuple[dict[str, Any] | None, bytes]:
    """A seal (None when it is not a JSON object) and its segment's bytes."""
    try:
        seal = json.loads(seal_file.read_bytes())
    except (OSError, ValueError, RecursionError):
        seal = None
    return (seal if isinstance(seal, dict) else None), segment.read_bytes()


def _why_not_ledgered(seal: dict[str, Any] | None, data: bytes, release_id: str) -> str | None:
    """Why a sealed segment may not be ledgered: a broken seal, other bytes, or a line of another release."""
    if seal is None:
        return "its seal is not a JSON object"
    if seal.get("sha256") != ledger.sha256_hex(data):
        return "its seal does not match the segment"
    if seal.get("release_id") != release_id:
        return f"its seal names release {seal.get('release_id')!r}, not {release_id}"
    return _lines_not_of(data, release_id, str(seal.get("model_sha256") or ""))


def _lines_not_of(data: bytes, release_id: str, model_sha256: str) -> str | None:
    """Why a segment's lines are not all decisions of this release's model (None when they are)."""
    for number, line in enumerate(data.splitlines(), 1):
        try:
            decision = json.loads(line)
        except (ValueError, RecursionError):
            return f"line {number} is not JSON"
        if not isinstance(decision, dict) or decision.get("release_id") != release_id:
            return f"line {number} is not a decision of {release_id}"
        if model_sha256 and decision.get("model_sha256") != model_sha256:
            return f"line {number} names another model than the release's {model_sha256[:12]}…"
    return None


def _model_of(segment: Path) -> str:
    """The model sha256 named by a decision-log segment's first line ("" when it has none)."""
    with contextlib.suppress(OSError, ValueError, KeyError), open(segment, "rb") as handle:
        return str(json.loads(handle.readline())["model_sha256"])
    return ""
