"""Test set-up: ZenML state in a temporary folder, analytics off, never the user's config or key."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

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


DEMO_PASSWORD = "demo password, tests only"
PASSWORD_FILES: dict[str, Path] = {}
"""Each demo person's password file (mode 0600), filled by the ``signing_identities`` fixture."""


def password_file(name: str) -> Path:
    """The password file of a demo person (conf/people.yaml), for --password-file and *_PASSWORD_FILE."""
    return PASSWORD_FILES[name]


def signed_as(name: str) -> list[str]:
    """CLI arguments that act as ``name`` and sign with their key: ``--as NAME --password-file FILE``."""
    return ["--as", name, "--password-file", str(password_file(name))]


@pytest.fixture(scope="session", autouse=True)
def signing_identities(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every person of conf/people.yaml has a signing key sealed by DEMO_PASSWORD in a temporary folder
    (CREDIT_SCORER_IDENTITIES); each new store adopts them with its people registry on first use."""
    from credit_scorer.core.settings import IDENTITIES_ENV
    from credit_scorer.records import identities
    from credit_scorer.records.people import load_people

    folder = tmp_path_factory.mktemp("identities")
    secrets = tmp_path_factory.mktemp("passwords")
    people = load_people(Path(__file__).resolve().parents[1] / "conf" / "people.yaml")
    for name in people.people:
        identities.save_sealed(identities.seal(name, DEMO_PASSWORD, Ed25519PrivateKey.generate()), folder)
        file = secrets / (name.replace(" ", "-").lower() + ".txt")
        file.write_text(DEMO_PASSWORD + "\n")
        file.chmod(0o600)
        PASSWORD_FILES[name] = file
    sealed = {path: path.read_bytes() for path in folder.iterdir()}
    with pytest.MonkeyPatch.context() as env:
        env.setenv(IDENTITIES_ENV, str(folder))
        yield folder
    changed = [path.name for path, data in sealed.items() if not path.exists() or path.read_bytes() != data]
    assert not changed, f"a test re-enrolled a demo person in the session's identities folder: {changed}"
