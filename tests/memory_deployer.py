"""The Deployer protocol in memory, for tests of the release protocol that need no scoring process."""

from __future__ import annotations

import builtins
import hashlib
from pathlib import Path

from credit_scorer.core.ports import Activation, Deployment, DeploymentError, DeploymentStatus


class MemoryDeployer:
    """An endpoint "starts" (inactive when given an activation, active once awaited) unless ``fail`` is set."""

    def __init__(self, fail: str | None = None) -> None:
        self.fail = fail
        self.live: dict[str, Deployment] = {}
        self.started = 0

    def deploy(
        self,
        release_id: str,
        model_path: Path,
        model_sha256: str,
        port: int | None = None,
        activation: Activation | None = None,
    ) -> Deployment:
        if self.fail:
            raise DeploymentError(self.fail)
        assert hashlib.sha256(Path(model_path).read_bytes()).hexdigest() == model_sha256
        self.started += 1
        chosen = port or 9100 + self.started
        self.live[release_id] = Deployment(
            release_id=release_id,
            url=f"http://127.0.0.1:{chosen}",
            model_sha256=model_sha256,
            model_path=str(model_path),
            port=chosen,
            pid=4242,
            started_at="2026-12-01T10:00:00Z",
            active=activation is None,
        )
        return self.live[release_id]

    def await_active(self, release_id: str, timeout: float = 15.0) -> Deployment:
        self.live[release_id] = self.live[release_id].model_copy(update={"active": True})
        return self.live[release_id]

    def stop(self, release_id: str) -> bool:
        return self.live.pop(release_id, None) is not None

    def list(self) -> builtins.list[DeploymentStatus]:
        return [DeploymentStatus(deployment=d, alive=True, active=d.active) for d in self.live.values()]

    def seal_logs(self) -> builtins.list[str]:
        return []
