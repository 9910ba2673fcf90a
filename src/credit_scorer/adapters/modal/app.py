"""The Modal app definition of one release, generated as Python source for ``modal deploy``.

:func:`render_app_source` is pure: the same :class:`ModalAppSpec` gives the same text. The file
defines an ``App`` named after the release, an image (Debian slim, Python 3.11, ``pip_install`` of
the exact versions of ``requirements.lock`` that the scoring service needs, the ``credit_scorer``
package as local Python source, the model file and reason-code table as local files), the Volume
that receives the decision log, and a class whose ``@modal.enter`` builds the scoring app of
:mod:`credit_scorer.serving.app` (after checking the model's sha256), whose ``@modal.asgi_app``
serves it, and whose ``@modal.exit`` flushes the decision log and commits the Volume.

The file holds no secret: bearer tokens come from a Modal Secret named in it, Modal credentials
from the environment of ``modal deploy``.
"""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Iterable
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from pydantic import BaseModel, ConfigDict

from credit_scorer import __version__
from credit_scorer.core.ports import DeploymentError

PYTHON_VERSION = "3.11"
APP_PREFIX = "credit-scorer-"
MAX_APP_NAME = 64  # Modal object names
MODEL_FILE_NAME = "model.json"
REASON_CODES_FILE_NAME = "reason_codes.yaml"
CONTAINER_DIR = "/opt/credit-scorer"
VOLUME_MOUNT = "/mnt/credit-scorer"
DECISION_LOGS_DIR = "decision_logs"
LOCK_FILE = Path(__file__).resolve().parents[4] / "requirements.lock"

# What the scoring service imports (credit_scorer.serving.app); their dependencies are pinned too.
# Modal serves the ASGI app itself, so uvicorn is not among them.
SERVING_DISTRIBUTIONS = (
    "fastapi",
    "lightgbm",
    "numpy",
    "orjson",
    "pandas",
    "pandera",
    "pyarrow",
    "pydantic",
    "pydantic-settings",  # core/settings: the one reader of CREDIT_SCORER_* variables
    "python-multipart",
    "PyYAML",
    "scikit-learn",
    "scipy",
)


class ModalAppSpec(BaseModel):
    """Everything the generated app file says."""

    model_config = ConfigDict(frozen=True)

    release_id: str
    model_sha256: str
    volume: str
    volume_folder: str
    min_containers: int
    scaledown_window: int
    max_inputs: int
    api_token_secret: str | None
    pins: tuple[str, ...]


def app_name(release_id: str) -> str:
    """The Modal app name of a release: ``credit-scorer-<release id, lower case>``."""
    name = APP_PREFIX + re.sub(r"[^a-z0-9-]", "-", release_id.lower())
    if len(name) > MAX_APP_NAME:
        raise DeploymentError(
            f"release id {release_id!r} is too long for a Modal app name ({len(name)} > {MAX_APP_NAME} characters)"
        )
    return name


def decision_log_path(volume_folder: str, release_id: str) -> str:
    """Where the release's decision log lives inside the Volume mount."""
    parts = [VOLUME_MOUNT, volume_folder, DECISION_LOGS_DIR, release_id]
    return "/".join(p.strip("/") if i else p for i, p in enumerate(parts) if p)


def lock_pins(lock: Path) -> dict[str, str]:
    """``name==version`` lines of a lock file, by canonical name."""
    pins: dict[str, str] = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        # "name==version \" (hashes follow), optionally "name==version ; marker \"
        line = line.split("#", 1)[0].split(";", 1)[0].rstrip("\\ ").strip()
        if "==" in line and not line.startswith("-"):
            name, version = line.split("==", 1)
            pins[canonicalize_name(name.split("[", 1)[0])] = version.strip()
    return pins


def dependency_closure(roots: Iterable[str]) -> list[str]:
    """The installed distributions ``roots`` need, with their dependencies (markers evaluated here: Linux,
    CPython 3.11, as in the image), by canonical name."""
    seen: set[str] = set()
    stack = [canonicalize_name(r) for r in roots]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            raise DeploymentError(f"{name} is not installed here; the scoring service needs it") from None
        for text in requires:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                stack.append(canonicalize_name(requirement.name))
    return sorted(seen)


def runtime_pins(lock: Path | None = LOCK_FILE) -> tuple[str, ...]:
    """``name==version`` for every distribution the scoring service needs, versions from ``requirements.lock``.

    Without a lock file (an installed wheel), the versions installed here are pinned instead.
    """
    names = dependency_closure(SERVING_DISTRIBUTIONS)
    if lock is not None and lock.is_file():
        pinned = lock_pins(lock)
        missing = [n for n in names if n not in pinned]
        if missing:
            raise DeploymentError(f"{lock} does not pin {', '.join(missing)}, which the scoring service needs")
        return tuple(f"{n}=={pinned[n]}" for n in names)
    return tuple(f"{n}=={importlib.metadata.version(n)}" for n in names)


def render_app_source(spec: ModalAppSpec) -> str:
    """The Python source of the release's Modal app (pure)."""
    pins = "".join(f"    {pin!r},\n" for pin in spec.pins)
    return _TEMPLATE.format(
        version=__version__,
        release_id=spec.release_id,
        app_name=repr(app_name(spec.release_id)),
        release_id_literal=repr(spec.release_id),
        model_sha256=repr(spec.model_sha256),
        volume=repr(spec.volume),
        volume_mount=repr(VOLUME_MOUNT),
        decision_log_dir=repr(decision_log_path(spec.volume_folder, spec.release_id)),
        model_file=repr(f"{CONTAINER_DIR}/{MODEL_FILE_NAME}"),
        reason_codes_file=repr(f"{CONTAINER_DIR}/{REASON_CODES_FILE_NAME}"),
        model_file_name=MODEL_FILE_NAME,
        reason_codes_file_name=REASON_CODES_FILE_NAME,
        local_model=repr(MODEL_FILE_NAME),
        local_reason_codes=repr(REASON_CODES_FILE_NAME),
        api_token_secret=repr(spec.api_token_secret),
        min_containers=spec.min_containers,
        scaledown_window=spec.scaledown_window,
        max_inputs=spec.max_inputs,
        python_version=repr(PYTHON_VERSION),
        pins=pins,
    )


_TEMPLATE = '''\
"""Modal app of credit-scorer release {release_id} (generated by credit-scorer {version}; do not edit).

Deploy with `modal deploy <this file>` next to {model_file_name} and {reason_codes_file_name}. It serves
the scoring app of credit_scorer.serving.app for one model file, whose sha256 is checked when a
container starts; decisions are logged to the Modal Volume. No secret is written here: bearer
tokens come from the Modal Secret named in API_TOKEN_SECRET (None = no bearer auth).
"""

from pathlib import Path

import modal

APP_NAME = {app_name}
RELEASE_ID = {release_id_literal}
MODEL_SHA256 = {model_sha256}
VOLUME_NAME = {volume}
VOLUME_MOUNT = {volume_mount}
DECISION_LOG_DIR = {decision_log_dir}
MODEL_FILE = {model_file}
REASON_CODES_FILE = {reason_codes_file}
API_TOKEN_SECRET = {api_token_secret}
MIN_CONTAINERS = {min_containers}
SCALEDOWN_WINDOW = {scaledown_window}
MAX_INPUTS = {max_inputs}
PYTHON_VERSION = {python_version}
PIP_PINS = [
{pins}]

HERE = Path(__file__).resolve().parent
LOCAL_MODEL_FILE = HERE / {local_model}
LOCAL_REASON_CODES_FILE = HERE / {local_reason_codes}

image = (
    modal.Image.debian_slim(python_version=PYTHON_VERSION)
    .pip_install(*PIP_PINS)
    .add_local_python_source("credit_scorer")
    .add_local_file(LOCAL_MODEL_FILE, MODEL_FILE)
    .add_local_file(LOCAL_REASON_CODES_FILE, REASON_CODES_FILE)
)
volume = modal.Volume.from_name(VOLUME_NAME, create_if_missing=True)
secrets = [modal.Secret.from_name(API_TOKEN_SECRET)] if API_TOKEN_SECRET else []
app = modal.App(APP_NAME, image=image)


@app.cls(
    volumes={{VOLUME_MOUNT: volume}},
    secrets=secrets,
    min_containers=MIN_CONTAINERS,
    scaledown_window=SCALEDOWN_WINDOW,
)
@modal.concurrent(max_inputs=MAX_INPUTS)
class Scorer:
    """The release's scoring service: one scoring app per container."""

    @modal.enter()
    def start(self) -> None:
        from credit_scorer.adapters.modal.runtime import open_scoring_app

        self.scoring_app = open_scoring_app(
            RELEASE_ID,
            MODEL_SHA256,
            Path(MODEL_FILE),
            Path(REASON_CODES_FILE),
            Path(DECISION_LOG_DIR),
            tokens_required=bool(API_TOKEN_SECRET),
        )

    @modal.exit()
    def stop(self) -> None:
        from credit_scorer.adapters.modal.runtime import close_scoring_app

        try:
            close_scoring_app(self.scoring_app)
        finally:
            volume.commit()

    @modal.asgi_app()
    def web(self):
        return self.scoring_app
'''
