"""Named crash points: where a test can make the process kill itself, to prove a protocol is crash-consistent.

``crash_point("deploy-intent")`` does nothing unless ``CREDIT_SCORER_CRASH_AT`` names that point (or a comma
list containing it); then the process sends itself SIGKILL at once — no cleanup, no ``finally`` blocks, no
flushed buffers, exactly like a power cut of the process. ``name@N`` crashes the N-th time the point is
reached (``record-ledgered@2``: the second record written, e.g. the approval after the model). The release
protocol calls it between its writes (see :data:`CRASH_POINTS`); the crash tests run a real deployment with
each point set and then check that the next command recovers and that ``audit verify`` reports the
interruption as a warning, not as forgery.
"""

from __future__ import annotations

import os
import signal

from credit_scorer.core.settings import CRASH_ENV, environ

CRASH_POINTS: tuple[str, ...] = (
    "record-pending-written",  # a record's bytes are in its .pending- file, no ledger entry yet
    "record-ledgered",  # the record's ledger entry is written, the file not yet linked into place
    "state-pending-written",  # a mutable state file (ticket, deployment registry) waits in .pending-
    "state-ledgered",  # its snapshot is ledgered, the file not yet replaced
    "release-row-ledgered",  # a release-log row is in the ledger, model_release_log.md not yet rewritten
    "deploy-intent",  # the deploy intent is ledgered, nothing else done
    "deploy-model-stored",  # the model file is stored
    "deploy-server-spawned",  # the scoring server process exists, not yet registered
    "deploy-server-registered",  # its PID and port are in the deployment registry, not ready
    "deploy-server-ready",  # it answers /health and /model (inactive)
    "deploy-approval-recorded",  # the approval (or retry) record and its activation token are ledgered
    "deploy-activated",  # the endpoint answers /predict
    "deploy-row-logged",  # the release-log row is written
    "deploy-previous-stopped",  # the endpoints it replaces are stopped
    "rollback-intent",
    "rollback-server-ready",
    "rollback-row-logged",
)


_reached: dict[str, int] = {}


def crash_point(name: str) -> None:
    """SIGKILL this process if ``CREDIT_SCORER_CRASH_AT`` names ``name`` (or ``name@N`` at its N-th pass)."""
    wanted = environ().get(CRASH_ENV)  # not current(): this runs at every write
    if not wanted:
        return
    _reached[name] = _reached.get(name, 0) + 1
    for point in wanted.split(","):
        target, _, nth = point.strip().partition("@")
        if target == name and (not nth or int(nth) == _reached[name]):
            os.kill(os.getpid(), signal.SIGKILL)
