"""Faults around deployment: an endpoint left by an interrupted deploy has no record, so it is stopped."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest

from credit_scorer.adapters.local_deployer import LocalDeployer
from credit_scorer.domain import data, train
from credit_scorer.domain.config import load_dataset_spec, training_config
from credit_scorer.records.store import ComplianceStore
from credit_scorer.release import recovery, workflow
from tests.integration.conftest import stop_all

pytestmark = pytest.mark.integration


def test_an_endpoint_without_an_approval_record_is_stopped_before_the_next_deploy(tmp_path: Path) -> None:
    spec = load_dataset_spec()
    frame, _ = data.load_dataset(spec)
    clean, _ = data.validate_dataset(frame.head(3000), spec)
    tr, va, _te, _ = data.split_dataset(clean, spec, training_config())
    model = train.train_model(tr, va, spec, training_config(n_estimators=5))
    store = ComplianceStore(str(tmp_path / "compliance"))
    path, digest = workflow.store_model(store, model.to_bytes())
    deployer = LocalDeployer(store.local_path("deployments"), store=store)
    try:
        # what a kill between "endpoint answers" and "approval record written" leaves behind
        orphan = deployer.deploy("AI-REL-0rphan00", store.local_path(path), digest)
        with urllib.request.urlopen(f"{orphan.url}/health", timeout=5) as response:
            assert response.status == 200

        done = recovery.recover(store, deployer)
        assert done == [f"stopped AI-REL-0rphan00 at {orphan.url}: no ledgered approval or rollback vouches for it"]
        assert deployer.list() == []
        with pytest.raises(OSError):
            urllib.request.urlopen(f"{orphan.url}/health", timeout=5)
    finally:
        stop_all(tmp_path / "compliance")
