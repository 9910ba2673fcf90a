"""Which deployer serves releases: ``CREDIT_SCORER_DEPLOYER`` = ``local`` (default) or ``modal``.

The pipeline, the CLI and the console all get their deployer here, so switching backends is one
setting. The local deployer keeps its state and decision logs next to the records, so it needs a
local store folder; the Modal deployer works with any store (records on a Modal Volume included).
"""

from __future__ import annotations

from collections.abc import Mapping

from credit_scorer.adapters.jira import JiraTicketTracker, jira_settings
from credit_scorer.adapters.modal.settings import deployer_kind, modal_settings
from credit_scorer.adapters.slack import NotifyingTracker, SlackNotifier, slack_settings
from credit_scorer.adapters.tickets import LocalTicketTracker, TicketTracker
from credit_scorer.core.errors import ConfigError
from credit_scorer.core.ports import Deployer
from credit_scorer.core.settings import DEPLOYER_ENV, environ
from credit_scorer.records import store as compliance_store
from credit_scorer.records.layout import DEPLOYMENTS_DIR
from credit_scorer.records.store import ComplianceStore


def check_deployer(store_url: str, env: Mapping[str, str] | None = None) -> None:
    """Refuse, at start, a deployer that cannot work with this store (ConfigError naming the setting)."""
    env = environ() if env is None else env
    if deployer_kind(env) == "local" and not _is_local_url(store_url):
        raise ConfigError(
            f"the local deployer ({DEPLOYER_ENV} unset or 'local') keeps its state and decision logs in the "
            f"store folder, but {store_url} is not a local folder; set {DEPLOYER_ENV}=modal or use a local --store"
        )


def deployer_for(store: ComplianceStore, env: Mapping[str, str] | None = None) -> Deployer:
    """The configured deployer for this store."""
    env = environ() if env is None else env
    check_deployer(store.url, env)
    settings = modal_settings(env, store.url)
    if deployer_kind(env) == "modal" and settings is not None:
        from credit_scorer.adapters.modal.deployer import ModalDeployer

        return ModalDeployer(store, settings)
    from credit_scorer.adapters.local_deployer import LocalDeployer

    return LocalDeployer(store.local_path(DEPLOYMENTS_DIR), store=store)


def _is_local_url(url: str) -> bool:
    return "://" not in url or url.startswith(("file://", "local://"))


def tracker_for(store: ComplianceStore) -> TicketTracker:
    """The configured ticket tracker: Jira when ``CREDIT_SCORER_JIRA_URL`` is set, else the local one;
    wrapped to send Slack messages when Slack is configured."""
    settings = jira_settings()
    tracker: TicketTracker = JiraTicketTracker(settings, store) if settings is not None else LocalTicketTracker(store)
    slack = slack_settings()
    return NotifyingTracker(tracker, SlackNotifier(slack)) if slack is not None else tracker


def check_integrations(store: str | None = None) -> None:
    """Fail at start, naming the setting, when an integration is on but incompletely configured.

    ``store`` is the ``--store`` option (else ``CREDIT_SCORER_STORE`` or ``./compliance``): a Modal
    Volume store needs the Modal settings, and the local deployer needs a local store folder.
    """
    jira_settings()
    slack_settings()
    url = compliance_store.store_url(store)
    modal_settings(store=url)
    check_deployer(url)
