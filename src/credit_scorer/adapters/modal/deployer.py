"""The ``modal`` deployer: each release is a Modal app serving the same scoring app as the local one.

``CREDIT_SCORER_DEPLOYER=modal`` selects it (optional extra ``credit-scorer[modal]``). A deploy
generates the release's app file (:mod:`credit_scorer.adapters.modal.app`), keeps a copy in the
store (``deployments/modal/<release>.modal_app.py``), runs ``modal deploy`` on it, reads the web
URL from its output and returns only once ``/health`` answers and ``/model`` reports the release
and model sha256, as the local deployer does; an app that never gets there is stopped again
(``modal app stop``). The record of a live deployment is ``deployments/modal/<release>.json`` in
the compliance store (any store backend), the CLI's output (secrets masked) goes to
``deployments/modal/logs/<release>.log``.

Why the ``modal`` CLI and not ``App.deploy()`` in-process: the Modal client (gRPC, its own event
loop thread) stays out of the pipeline and console processes; a deploy that hangs is killed by a
timeout; what runs is exactly what an engineer reproduces by hand with ``modal deploy <file>``; and
it can be tested without Modal by a stand-in executable (``CREDIT_SCORER_MODAL_CLI``).

Not run against live Modal: the machine it was written on cannot reach it.
"""

from __future__ import annotations

import builtins
import logging
import re
import shutil
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Mapping
from pathlib import Path

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
from credit_scorer.adapters.modal.app import (
    LOCK_FILE,
    MODEL_FILE_NAME,
    REASON_CODES_FILE_NAME,
    ModalAppSpec,
    app_name,
    render_app_source,
    runtime_pins,
)
from credit_scorer.adapters.modal.settings import (
    ENV_CLI,
    MODAL_OAUTH,
    MODAL_OAUTH_SECRETS,
    MODAL_TOKEN_ID,
    MODAL_TOKEN_SECRET,
    ModalSettings,
)
from credit_scorer.core.ports import Activation, Deployment, DeploymentError, DeploymentStatus
from credit_scorer.core.settings import environ
from credit_scorer.records import ledger
from credit_scorer.records.store import ComplianceStore, StoreError
from credit_scorer.serving.reasons import reason_table_path

logger = logging.getLogger(__name__)

STATE_DIR = "deployments/modal"
LOG_TAIL_LINES = 20
MASK = "********"
_URL = re.compile(r"https?://[^\s'\"<>()\[\]]+")
_GONE = ("already stopped", "no app with name")
# Values never to be written to a log or an error message, wherever a tool prints them.
_SECRET_VARIABLES = (MODAL_TOKEN_ID, MODAL_TOKEN_SECRET, *MODAL_OAUTH, *MODAL_OAUTH_SECRETS)


class ModalDeployer:
    """Deploys releases as Modal apps with the ``modal`` CLI; state in the compliance store."""

    backend = "modal"

    def __init__(
        self,
        store: ComplianceStore,
        settings: ModalSettings,
        *,
        deploy_timeout: float = 900.0,
        startup_timeout: float = 600.0,
        stop_timeout: float = 120.0,
        probe_timeout: float = 30.0,
        poll_interval: float = 2.0,
        reason_codes: Path | None = None,
        lock: Path | None = LOCK_FILE,
    ) -> None:
        self.store = store
        self.settings = settings
        self.deploy_timeout = deploy_timeout
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.probe_timeout = probe_timeout
        self.poll_interval = poll_interval
        self.reason_codes = reason_table_path(reason_codes).resolve()
        self.lock = lock

    # ------------------------------------------------------------------ protocol
    def deploy(
        self,
        release_id: str,
        model_path: Path,
        model_sha256: str,
        port: int | None = None,
        activation: Activation | None = None,
    ) -> Deployment:
        """Deploy the model as the release's Modal app; return once it answers with the expected sha256.

        ``port`` does not apply (Modal serves HTTPS on 443) and is ignored. Deploying a release that
        is already live with the same model returns its deployment; with another model it raises.
        ``activation`` is not supported by Modal containers (they cannot watch the ledger): a Modal
        endpoint scores as soon as it is ready, and a crash before the approval is recorded is
        undone by the next command's recovery, which stops it (see the README).
        """
        check_release_id(release_id)
        model_sha256 = model_sha256.strip().lower()
        model_path = Path(model_path).resolve()
        check_model_file(model_path, model_sha256)
        name = app_name(release_id)
        with self.store.lock(f"modal-deploy-{release_id}"):
            existing = self.get(release_id)
            if existing is not None and health_ok(existing.url, timeout=self.probe_timeout):
                if existing.model_sha256 == model_sha256:
                    return existing  # already serving exactly this
                raise DeploymentError(
                    f"release {release_id} is already deployed at {existing.url} (Modal app {name}, model "
                    f"{existing.model_sha256}); stop it first to redeploy it differently"
                )
            source = render_app_source(self._spec(release_id, model_sha256))
            self.store.replace(self.app_source_path(release_id), source.encode("utf-8"))
            with tempfile.TemporaryDirectory(prefix=f"credit-scorer-modal-{release_id}-") as tmp:
                build = Path(tmp)
                app_file = build / f"{name.replace('-', '_')}.py"
                app_file.write_text(source, encoding="utf-8")
                shutil.copyfile(model_path, build / MODEL_FILE_NAME)
                shutil.copyfile(self.reason_codes, build / REASON_CODES_FILE_NAME)
                code, output = self._modal(release_id, ["deploy", str(app_file)], self.deploy_timeout)
            if code != 0:
                raise DeploymentError(
                    f"`modal deploy` of release {release_id} failed (exit {code}); last lines of its output "
                    f"({self.store.url}/{self.log_path(release_id)}):\n{_tail(output)}"
                )
            url = web_url(output)
            try:
                if url is None:
                    raise DeploymentError(
                        f"`modal deploy` of release {release_id} printed no web URL; the app {name} was stopped; "
                        f"last lines of its output:\n{_tail(output)}"
                    )
                self._await_ready(url, release_id, model_sha256)
                deployment = Deployment(
                    release_id=release_id,
                    url=url,
                    model_sha256=model_sha256,
                    model_path=self._model_location(model_path, model_sha256),
                    port=_port(url),
                    pid=0,
                    started_at=now_utc(),
                    backend=self.backend,
                )
                data = deployment.model_dump_json(indent=2).encode() + b"\n"
                ledger.commit(self.store, "deployment", self._state_path(release_id), data)
            except BaseException:
                self._stop_quietly(release_id)
                raise
            return deployment

    def stop(self, release_id: str) -> bool:
        """Stop the release's Modal app (``modal app stop``); False when none was tracked or it was gone."""
        check_release_id(release_id)
        with self.store.lock(f"modal-deploy-{release_id}"):
            if self.get(release_id) is None:
                return False
            stopped = self._stop_app(release_id)
            ledger.commit_removal(self.store, "deployment", self._state_path(release_id))
            return stopped

    def seal_logs(self) -> list[str]:
        """Modal containers keep their decision logs on the Volume, per container; they are not sealed here."""
        return []

    def await_active(self, release_id: str, timeout: float = 15.0) -> Deployment:
        """A Modal endpoint is active once ready: the tracked deployment, or DeploymentError when none is."""
        deployment = self.get(release_id)
        if deployment is None or not health_ok(deployment.url, timeout=min(self.probe_timeout, timeout)):
            raise DeploymentError(f"release {release_id} has no live Modal endpoint")
        return deployment

    def list(self) -> list[DeploymentStatus]:
        """Every tracked deployment, with liveness (``/health`` answers)."""
        statuses = []
        for deployment in self._deployments():
            alive = health_ok(deployment.url, timeout=min(self.probe_timeout, 10.0))
            statuses.append(DeploymentStatus(deployment=deployment, alive=alive))
        return statuses

    # ------------------------------------------------------------------ helpers
    def get(self, release_id: str) -> Deployment | None:
        """The tracked deployment of a release, else None."""
        path = self._state_path(release_id)
        if not self.store.exists(path):
            return None
        try:
            return Deployment.model_validate_json(self.store.read_bytes(path))
        except (StoreError, ValidationError) as exc:
            logger.warning("ignoring unreadable deployment state %s: %s", path, exc)
            return None

    def app_source_path(self, release_id: str) -> str:
        """Store path of the release's generated Modal app file (what was deployed)."""
        return f"{STATE_DIR}/{release_id}.modal_app.py"

    def log_path(self, release_id: str) -> str:
        """Store path of the release's ``modal`` CLI output."""
        return f"{STATE_DIR}/logs/{release_id}.log"

    def _state_path(self, release_id: str) -> str:
        return f"{STATE_DIR}/{release_id}.json"

    def _spec(self, release_id: str, model_sha256: str) -> ModalAppSpec:
        s = self.settings
        return ModalAppSpec(
            release_id=release_id,
            model_sha256=model_sha256,
            volume=s.volume,
            volume_folder=s.volume_folder,
            min_containers=s.min_containers,
            scaledown_window=s.scaledown_window,
            max_inputs=s.max_inputs,
            api_token_secret=s.api_token_secret,
            pins=runtime_pins(self.lock),
        )

    def _deployments(self) -> builtins.list[Deployment]:
        found = []
        for path in self.store.list(STATE_DIR, ".json"):
            deployment = self.get(path.rsplit("/", 1)[-1].removesuffix(".json"))
            if deployment is not None:
                found.append(deployment)
        return sorted(found, key=lambda d: (d.started_at, d.release_id))

    def _model_location(self, model_path: Path, model_sha256: str) -> str:
        stored = f"models/{model_sha256}.json"
        return f"{self.store.url}/{stored}" if self.store.exists(stored) else str(model_path)

    def _await_ready(self, url: str, release_id: str, model_sha256: str) -> None:
        deadline = time.monotonic() + self.startup_timeout
        last_problem = "it never answered"
        while True:
            if time.monotonic() > deadline:
                raise DeploymentError(
                    f"the Modal app of release {release_id} did not become ready at {url} within "
                    f"{self.startup_timeout:g} s ({last_problem}); it was stopped; see `modal app logs "
                    f"{app_name(release_id)}`"
                )
            try:
                if health_ok(url, timeout=self.probe_timeout):
                    info = http_json("GET", f"{url.rstrip('/')}/model", timeout=self.probe_timeout)
                    problem = model_mismatch(info, url, release_id, model_sha256) or missing_request_fields(info, url)
                    if problem is not None:
                        raise DeploymentError(f"{problem}; the Modal app {app_name(release_id)} was stopped")
                    return
            except (OSError, ValueError) as exc:
                last_problem = f"last error: {exc}"
            time.sleep(self.poll_interval)

    def _stop_app(self, release_id: str) -> bool:
        """``modal app stop <app> --yes``; False when Modal says it is already stopped or unknown."""
        name = app_name(release_id)
        code, output = self._modal(release_id, ["app", "stop", name, "--yes"], self.stop_timeout)
        if code == 0:
            return True
        if any(marker in output.lower() for marker in _GONE):
            return False
        raise DeploymentError(
            f"`modal app stop {name}` failed (exit {code}); it may still be running; last lines of its "
            f"output:\n{_tail(output)}"
        )

    def _stop_quietly(self, release_id: str) -> None:
        """Stop an app that failed its checks; a failure to stop is logged, the original error stands."""
        try:
            self._stop_app(release_id)
        except DeploymentError as exc:
            logger.error("release %s: %s", release_id, exc)

    def _modal(self, release_id: str, args: builtins.list[str], timeout: float) -> tuple[int, str]:
        """Run the ``modal`` CLI; return its exit code and output (secrets masked), logged to the store."""
        command = [*self.settings.cli, *args]
        # A wide, plain terminal: rich would otherwise wrap long URLs at 80 columns when piped.
        env = {**environ(), "COLUMNS": "1000", "NO_COLOR": "1", "TERM": "dumb", "PYTHONIOENCODING": "utf-8"}
        started = now_utc()
        try:
            result = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=timeout,
                env=env,
                check=False,
            )
            code, output = result.returncode, mask_secrets(result.stdout + result.stderr)
        except FileNotFoundError:
            raise DeploymentError(
                f"the modal CLI {command[0]!r} was not found; install credit-scorer[modal] or set {ENV_CLI}"
            ) from None
        except subprocess.TimeoutExpired as exc:
            partial = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout or ""
            self._log(release_id, started, args, "timed out", mask_secrets(partial))
            raise DeploymentError(
                f"`modal {' '.join(args[:2])}` for release {release_id} did not finish within {timeout:g} s"
            ) from None
        self._log(release_id, started, args, f"exit {code}", output)
        return code, output

    def _log(self, release_id: str, started: str, args: builtins.list[str], outcome: str, output: str) -> None:
        path = self.log_path(release_id)
        try:
            before = self.store.read_bytes(path) if self.store.exists(path) else b""
            entry = f"--- {started} modal {' '.join(args)} ({outcome})\n{output.rstrip()}\n"
            self.store.replace(path, before + entry.encode("utf-8"))
        except (StoreError, OSError) as exc:
            logger.warning("could not write the modal CLI output to %s: %s", path, exc)


def web_url(output: str) -> str | None:
    """The web endpoint URL in ``modal deploy`` output (not a modal.com dashboard link), else None."""
    for match in _URL.finditer(output):
        url = match.group(0).rstrip(".,;:")
        host = (urllib.parse.urlsplit(url).hostname or "").lower()
        if host == "modal.com" or host.endswith(".modal.com"):
            continue
        return url.rstrip("/")
    return None


def mask_secrets(text: str, env: Mapping[str, str] | None = None) -> str:
    """``text`` with the values of Modal's credential variables replaced by a mask."""
    source = environ() if env is None else env
    for name in _SECRET_VARIABLES:
        value = source.get(name, "").strip()
        if len(value) >= 4:
            text = text.replace(value, MASK)
    return text


def _port(url: str) -> int:
    parts = urllib.parse.urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def _tail(output: str, lines: int = LOG_TAIL_LINES) -> str:
    kept = output.strip().splitlines()[-lines:]
    return "\n".join(kept) if kept else "(no output)"
