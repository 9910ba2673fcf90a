"""Test set-up: ZenML state in a temporary folder, analytics off, never the user's config."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

_ZENML_DIR = Path(tempfile.mkdtemp(prefix="credit-scorer-zenml-"))


def pytest_configure(config: pytest.Config) -> None:
    """Set ZenML's variables before anything imports zenml."""
    os.environ["ZENML_CONFIG_PATH"] = str(_ZENML_DIR)
    os.environ["ZENML_ANALYTICS_OPT_IN"] = "false"
    os.environ["ZENML_LOGGING_VERBOSITY"] = "WARN"
    os.environ["ZENML_ENABLE_RICH_TRACEBACK"] = "false"
    os.environ["AUTO_OPEN_DASHBOARD"] = "false"


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the temporary ZenML state."""
    shutil.rmtree(_ZENML_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def zenml_config_dir() -> Path:
    """The temporary ZENML_CONFIG_PATH of this test session."""
    return _ZENML_DIR
