"""Where ZenML keeps its state: project-local by default, never the user's global config.

Must run before ``zenml`` is first imported, because ZenML reads these variables
at import time. Variables already set by the user win.
"""

from __future__ import annotations

import fcntl
from pathlib import Path

from credit_scorer.core import constants
from credit_scorer.core.settings import environ, set_default


def use_project_zenml_state(base: Path | None = None, *, quiet: bool = True) -> Path:
    """Point ZenML at ``<base>/.zenml-state`` (unless ZENML_CONFIG_PATH is set); analytics off.

    ``quiet`` silences ZenML's own log lines: the CLI reports progress and errors itself.
    """
    default = (base or Path.cwd()) / constants.ZENML_STATE_DIR
    config = set_default("ZENML_CONFIG_PATH", str(default))
    set_default("ZENML_ANALYTICS_OPT_IN", "false")
    set_default("ZENML_ENABLE_RICH_TRACEBACK", "false")
    set_default("AUTO_OPEN_DASHBOARD", "false")
    if quiet:
        set_default("ZENML_LOGGING_VERBOSITY", "CRITICAL")
    return Path(config)


def ensure_zenml_store() -> None:
    """Create or migrate ZenML's store under a file lock, so concurrent first runs don't race.

    ZenML is imported here, not at module import, so commands that never touch ZenML stay fast.
    """
    from zenml.client import Client

    config = Path(environ().get("ZENML_CONFIG_PATH", constants.ZENML_STATE_DIR))
    config.mkdir(parents=True, exist_ok=True)
    with open(config / ".credit-scorer-init.lock", "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            Client().active_stack_model  # noqa: B018 - initialises the store and the default stack
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
