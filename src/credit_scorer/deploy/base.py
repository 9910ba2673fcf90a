"""The deployer interface: put a stored model version behind a scoring endpoint.

A deployer returns only once the endpoint answers ``/health`` and ``/model`` reports the
expected model sha256, so a URL it returns is always live. Backends: ``local`` (a uvicorn
process on 127.0.0.1 that outlives the pipeline); others (Modal, ZenML deployers) plug in
behind the same protocol.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ConfigDict


class Deployment(BaseModel):
    """A live scoring endpoint for one release."""

    model_config = ConfigDict(frozen=True)

    release_id: str
    url: str
    model_sha256: str
    model_path: str
    port: int
    pid: int
    started_at: str
    backend: str = "local"


class DeploymentStatus(BaseModel):
    """A tracked deployment and whether its process still answers."""

    model_config = ConfigDict(frozen=True)

    deployment: Deployment
    alive: bool


class DeploymentError(RuntimeError):
    """The endpoint could not be started or did not answer; nothing is left running."""


class Deployer(Protocol):
    """What the release gate needs from a deployment backend."""

    def deploy(self, release_id: str, model_path: Path, model_sha256: str, port: int | None = None) -> Deployment:
        """Serve the model file and return once the endpoint answers with the expected sha256."""
        ...

    def stop(self, release_id: str) -> bool:
        """Stop the release's endpoint; False when none was running."""
        ...

    def list(self) -> list[DeploymentStatus]:
        """Every tracked deployment, with liveness."""
        ...
