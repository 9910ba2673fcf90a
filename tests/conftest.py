"""Test set-up: ZenML state in a temporary folder, analytics off, never the user's config or key."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
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
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # An xdist worker's __main__ has no file, from which ZenML would take its source root;
        # give it an empty folder, as neutral as the folder of the pytest script it gets otherwise.
        os.environ["ZENML_CUSTOM_SOURCE_ROOT"] = str(_ZENML_DIR / "source-root")
        (_ZENML_DIR / "source-root").mkdir(exist_ok=True)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the temporary ZenML state."""
    shutil.rmtree(_ZENML_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def zenml_config_dir() -> Path:
    """The temporary ZENML_CONFIG_PATH of this test session."""
    return _ZENML_DIR


@pytest.fixture(scope="session", autouse=True)
def ledger_key_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The ledger's signing key lives in a temporary folder (CREDIT_SCORER_KEY), never in the home directory."""
    from credit_scorer.core.settings import KEY_ENV

    key = tmp_path_factory.mktemp("ledger-key") / "ledger_ed25519.pem"
    with pytest.MonkeyPatch.context() as env:
        env.setenv(KEY_ENV, str(key))
        yield key


@pytest.fixture(scope="session", autouse=True)
def no_store_in_the_checkout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A test that forgets --store writes to a temporary store, never to ./compliance of the checkout.

    (One did: `users add` adopted its one-person people file as the checkout's people registry, and the next
    `make run` was refused.) The session fails if a compliance/ folder appears in the checkout anyway.
    """
    from credit_scorer.core.settings import STORE_ENV

    checkout_store = Path(__file__).resolve().parents[1] / "compliance"
    existed = checkout_store.exists()
    with pytest.MonkeyPatch.context() as env:
        env.setenv(STORE_ENV, str(tmp_path_factory.mktemp("default-store") / "compliance"))
        yield
    assert existed or not checkout_store.exists(), f"a test wrote the checkout's own store {checkout_store}"


@pytest.fixture(scope="session", autouse=True)
def ledger_trust_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Trust anchors (pinned keys, witnessed checkpoints) in a temporary file, never the user's."""
    from credit_scorer.core.settings import TRUST_ENV

    trust = tmp_path_factory.mktemp("ledger-trust") / "ledger_trust.yaml"
    with pytest.MonkeyPatch.context() as env:
        env.setenv(TRUST_ENV, str(trust))
        yield trust
