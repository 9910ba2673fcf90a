"""The compliance store's folders: every top-level name in one place (the README's store tree lists them)."""

from __future__ import annotations

from typing import Final

APPROVALS_DIR: Final = "approvals"  # approval records (records/models.py)
DEPLOY_RETRIES_DIR: Final = "deploy_retries"  # retried deployments of approved releases (records/deploy_retries.py)
SIGNOFFS_DIR: Final = "signoffs"  # tester sign-offs
MODELS_DIR: Final = "models"  # model files by sha256
RELEASES_DIR: Final = "releases"  # per release: gate inputs, Annex IV bundle
DEPLOYMENTS_DIR: Final = "deployments"  # the deployment registry (local deployer; modal/ for Modal)
DECISION_LOGS_DIR: Final = "decision_logs"  # Art. 12 decision logs, per release
TICKETS_DIR: Final = "tickets"  # the local ticket tracker, and the Jira key map
AUDIT_DIR: Final = "audit"  # spot-check reports
LEDGER_DIR: Final = "ledger"  # the signed hash chain and its keys
PEOPLE_DIR: Final = "people"  # the people registry's versions
THRESHOLDS_DIR: Final = "thresholds"  # threshold configuration versions
