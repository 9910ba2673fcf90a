"""The deployer interface: put a stored model version behind a scoring endpoint.

A deployer returns only once the endpoint answers ``/health`` and ``/model`` reports the
expected model sha256, so a URL it returns is always live. Backends: ``local`` (a uvicorn
process on 127.0.0.1 that outlives the pipeline); others (Modal, ZenML deployers) plug in
behind the same protocol.

**Activation.** Given an :class:`Activation`, the endpoint starts *inactive*: it answers ``/health``
and ``/model`` but refuses to score (503) until the ledger holds an entry carrying the activation
token — the entry of the record that makes the deployment official (the approval record, the retry record
of a failed deployment retried, or the release-log row of a rollback). If the deploying process dies before
that entry exists, the endpoint shuts itself down. So no crash leaves an endpoint scoring applicants without its record,
and no record claims an endpoint that never went live. :meth:`Deployer.await_active` waits for it.
"""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from credit_scorer.core.errors import OperationFailed


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
    active: bool = True
    """False while the endpoint waits for its activation entry in the ledger (it refuses to score)."""


class Activation(BaseModel):
    """What an endpoint waits for before it scores: an entry with ``activates: token`` in the ledger file."""

    model_config = ConfigDict(frozen=True)

    ledger_file: Path
    token: str


class DeploymentStatus(BaseModel):
    """A tracked deployment and whether its process still answers."""

    model_config = ConfigDict(frozen=True)

    deployment: Deployment
    alive: bool
    active: bool = True
    """Whether the endpoint says it scores (``/health`` ``active``); False while it waits for activation."""


class DeploymentError(OperationFailed):
    """The endpoint could not be started or did not answer; nothing is left running."""


class Deployer(Protocol):
    """What the release gate needs from a deployment backend."""

    def deploy(
        self,
        release_id: str,
        model_path: Path,
        model_sha256: str,
        port: int | None = None,
        activation: Activation | None = None,
    ) -> Deployment:
        """Serve the model file and return once the endpoint answers with the expected sha256.

        With ``activation`` the endpoint is registered at once and returned inactive (``active`` False).
        """
        ...

    def await_active(self, release_id: str, timeout: float = 15.0) -> Deployment:
        """Wait until the release's endpoint scores (its activation entry was seen); DeploymentError if not."""
        ...

    def stop(self, release_id: str) -> bool:
        """Stop the release's endpoint; False when none was running."""
        ...

    def list(self) -> list[DeploymentStatus]:
        """Every tracked deployment, with liveness."""
        ...

    def seal_logs(self) -> builtins.list[str]:
        """Ledger every sealed decision-log segment not ledgered yet, sealing what stopped servers left open.

        Returns one sentence per segment ledgered (empty when the backend keeps its logs elsewhere).
        """
        ...
