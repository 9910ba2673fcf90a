"""One real deployment or rollback in a process of its own, for the crash tests (it may be SIGKILLed midway).

    python -m tests.crash_driver deploy STORE CANDIDATE_JSON MODEL_FILE
    python -m tests.crash_driver rollback STORE URL
    python -m tests.crash_driver retry STORE RELEASE_ID      (a failed deployment retried by Sam Compliance)

``CREDIT_SCORER_CRASH_AT`` (see :mod:`credit_scorer.core.faults`) names where the process kills itself. The tester
has signed off before (in the test process), so the only writes here are the release protocol's own.
"""

from __future__ import annotations

import sys
from pathlib import Path

from credit_scorer.adapters.factory import deployer_for
from credit_scorer.adapters.tickets import LocalTicketTracker
from credit_scorer.records import people_registry
from credit_scorer.records.store import ComplianceStore
from credit_scorer.release import workflow
from credit_scorer.release.deploy_retry import retry_deployment
from tests.integration.conftest import DEMO, approved_decision

SUBMITTER = DEMO["SUBMITTER"]


def main(argv: list[str]) -> None:
    mode, store_dir = argv[0], argv[1]
    store = ComplianceStore(store_dir)
    tracker = LocalTicketTracker(store)
    deployer = deployer_for(store)
    in_force = people_registry.people_in_force(store, None, False, explicit=False)
    people = in_force.people
    if mode == "retry":
        retry_deployment(store, tracker, deployer, in_force, argv[2], "Sam Compliance")
    elif mode == "deploy":
        candidate = workflow.ReleaseCandidate.model_validate_json(Path(argv[2]).read_text())
        decision = approved_decision(store, candidate, "crash test release")
        workflow.deploy_release(
            store, tracker, deployer, candidate, decision, Path(argv[3]).read_bytes(), [], False, None, False
        )
    else:
        workflow.rollback(store, tracker, deployer, people, argv[2], "crash test rollback", SUBMITTER)


if __name__ == "__main__":
    main(sys.argv[1:])
