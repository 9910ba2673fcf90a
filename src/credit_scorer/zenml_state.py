"""Where ZenML keeps its state: project-local by default, never the user's global config.

Must run before ``zenml`` is first imported, because ZenML reads these variables
at import time. Variables already set by the user win.
"""

from __future__ import annotations

import os
from pathlib import Path

from credit_scorer import constants


def use_project_zenml_state(base: Path | None = None, *, quiet: bool = True) -> Path:
    """Point ZenML at ``<base>/.zenml-state`` (unless ZENML_CONFIG_PATH is set); analytics off.

    ``quiet`` silences ZenML's own log lines: the CLI reports progress and errors itself.
    """
    default = (base or Path.cwd()) / constants.ZENML_STATE_DIR
    os.environ.setdefault("ZENML_CONFIG_PATH", str(default))
    os.environ.setdefault("ZENML_ANALYTICS_OPT_IN", "false")
    os.environ.setdefault("ZENML_ENABLE_RICH_TRACEBACK", "false")
    os.environ.setdefault("AUTO_OPEN_DASHBOARD", "false")
    if quiet:
        os.environ.setdefault("ZENML_LOGGING_VERBOSITY", "CRITICAL")
    return Path(os.environ["ZENML_CONFIG_PATH"])
