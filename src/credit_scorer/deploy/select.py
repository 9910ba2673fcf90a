"""Which deployer serves releases: ``CREDIT_SCORER_DEPLOYER`` = ``local`` (default) or ``modal``.

The pipeline, the CLI and the console all get their deployer here, so switching backends is one
setting. The local deployer keeps its state and decision logs next to the records, so it needs a
local store folder; the Modal deployer works with any store (records on a Modal Volume included).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from credit_scorer.deploy.base import Deployer
from credit_scorer.errors import ConfigError
from credit_scorer.integrations.modal_settings import ENV_DEPLOYER, deployer_kind, modal_settings
from credit_scorer.release.store import ComplianceStore


def check_deployer(store_url: str, env: Mapping[str, str] | None = None) -> None:
    """Refuse, at start, a deployer that cannot work with this store (ConfigError naming the setting)."""
    env = os.environ if env is None else env
    if deployer_kind(env) == "local" and not _is_local_url(store_url):
        raise ConfigError(
            f"the local deployer ({ENV_DEPLOYER} unset or 'local') keeps its state and decision logs in the "
            f"store folder, but {store_url} is not a local folder; set {ENV_DEPLOYER}=modal or use a local --store"
        )


def deployer_for(store: ComplianceStore, env: Mapping[str, str] | None = None) -> Deployer:
    """The configured deployer for this store."""
    env = os.environ if env is None else env
    check_deployer(store.url, env)
    settings = modal_settings(env, store.url)
    if deployer_kind(env) == "modal" and settings is not None:
        from credit_scorer.deploy.modal_deployer import ModalDeployer

        return ModalDeployer(store, settings)
    from credit_scorer.deploy.local import LocalDeployer
    from credit_scorer.release.workflow import DEPLOYMENTS_DIR

    return LocalDeployer(store.local_path(DEPLOYMENTS_DIR), store=store)


def _is_local_url(url: str) -> bool:
    return "://" not in url or url.startswith(("file://", "local://"))
