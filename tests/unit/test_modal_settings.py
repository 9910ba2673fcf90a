"""Modal is off by default; switched on with a piece missing, it fails naming the setting, never the secret."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from credit_scorer.adapters.factory import check_deployer, check_integrations, deployer_for
from credit_scorer.adapters.modal import settings as ms
from credit_scorer.core.errors import ConfigError
from credit_scorer.core.settings import DEPLOYER_ENV
from credit_scorer.records.store import ComplianceStore

TOKEN_ID = "ak-fake-id-4711abcdef"
TOKEN_SECRET = "as-fake-secret-0815ghijkl"


@pytest.fixture
def no_modal_config(tmp_path: Path) -> dict[str, str]:
    """An environment whose Modal config file does not exist (never the user's ~/.modal.toml)."""
    return {ms.MODAL_CONFIG_PATH: str(tmp_path / "absent.toml"), "PATH": "/nonexistent"}


def modal_on(env: dict[str, str], **more: str) -> dict[str, str]:
    return {**env, DEPLOYER_ENV: "modal", **more}


def test_off_by_default(no_modal_config: dict[str, str]) -> None:
    assert ms.deployer_kind({}) == "local"
    assert ms.modal_settings(no_modal_config, "./compliance") is None
    assert ms.modal_settings({**no_modal_config, DEPLOYER_ENV: "local"}, "s3://bucket/records") is None


def test_an_unknown_deployer_is_named() -> None:
    with pytest.raises(ConfigError, match=f"{DEPLOYER_ENV} must be one of local, modal, not 'kubernetes'"):
        ms.deployer_kind({DEPLOYER_ENV: "kubernetes"})


def test_tokens_from_the_environment(no_modal_config: dict[str, str]) -> None:
    env = modal_on(no_modal_config, MODAL_TOKEN_ID=TOKEN_ID, MODAL_TOKEN_SECRET=TOKEN_SECRET)
    settings = ms.modal_settings(env, "./compliance")
    assert settings is not None
    assert settings.credentials == "the environment"
    assert (settings.volume, settings.volume_folder) == ("credit-scorer", "compliance")
    assert TOKEN_ID not in settings.model_dump_json() and TOKEN_SECRET not in settings.model_dump_json()


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        ({}, "MODAL_TOKEN_ID and MODAL_TOKEN_SECRET are not set"),
        ({"MODAL_TOKEN_ID": TOKEN_ID}, "MODAL_TOKEN_SECRET is not set"),
        ({"MODAL_TOKEN_SECRET": TOKEN_SECRET}, "MODAL_TOKEN_ID is not set"),
    ],
)
def test_missing_credentials_are_named_and_never_echoed(
    no_modal_config: dict[str, str], given: dict[str, str], missing: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        ms.modal_settings(modal_on(no_modal_config, **given), "./compliance")
    message = str(caught.value)
    assert missing in message and f"{DEPLOYER_ENV}=modal needs Modal credentials" in message
    assert "modal token set" in message
    assert TOKEN_ID not in message and TOKEN_SECRET not in message


def test_tokens_from_the_active_profile_of_the_modal_config(tmp_path: Path) -> None:
    config = tmp_path / "modal.toml"
    config.write_text(
        '[default]\ntoken_id = "x"\n\n'
        f'[work]\nactive = true\ntoken_id = "{TOKEN_ID}"\ntoken_secret = "{TOKEN_SECRET}"\n'
    )
    settings = ms.modal_settings(modal_on({ms.MODAL_CONFIG_PATH: str(config)}), "./compliance")
    assert settings is not None and settings.credentials == f"profile 'work' of {config}"
    with pytest.raises(ConfigError, match=f"MODAL_TOKEN_SECRET is not set .*profile 'default' of {config}"):
        ms.modal_settings(modal_on({ms.MODAL_CONFIG_PATH: str(config), ms.MODAL_PROFILE: "default"}), "./compliance")


def test_a_broken_modal_config_is_named_without_its_content(tmp_path: Path) -> None:
    config = tmp_path / "modal.toml"
    config.write_text(f'[default]\ntoken_secret = "{TOKEN_SECRET}\n')  # unterminated string
    with pytest.raises(ConfigError, match="is not valid TOML") as caught:
        ms.modal_settings(modal_on({ms.MODAL_CONFIG_PATH: str(config)}), "./compliance")
    assert TOKEN_SECRET not in str(caught.value) and str(config) in str(caught.value)


def test_modal_oauth_variables_count_as_credentials(no_modal_config: dict[str, str]) -> None:
    env = modal_on(
        no_modal_config,
        MODAL_OAUTH_REFRESH_TOKEN="r-token-123",
        MODAL_OAUTH_CLIENT_ID="client",
        MODAL_OAUTH_CLIENT_SECRET="c-secret-123",
    )
    settings = ms.modal_settings(env, "./compliance")
    assert settings is not None and settings.credentials == "Modal OAuth variables in the environment"


def test_a_missing_modal_package_names_the_extra(
    no_modal_config: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "modal", None)  # `import modal` now fails as if it were not installed
    env = modal_on(no_modal_config, MODAL_TOKEN_ID=TOKEN_ID, MODAL_TOKEN_SECRET=TOKEN_SECRET)
    needs_package = r"CREDIT_SCORER_DEPLOYER=modal needs the modal package.*credit-scorer\[modal\]"
    with pytest.raises(ConfigError, match=needs_package):
        ms.modal_settings(env, "./compliance")
    with pytest.raises(ConfigError, match=r"the Modal Volume store modal-volume://v/c needs the modal package"):
        ms.modal_settings(no_modal_config, "modal-volume://v/c")


@pytest.mark.parametrize(
    "url",
    ["modal-volume:///compliance", "modal-volume://bad name/compliance", "modal-volume://v/../x", "modal-volume://"],
)
def test_a_bad_volume_url_names_the_store_setting(no_modal_config: dict[str, str], url: str) -> None:
    with pytest.raises(ConfigError, match="--store / CREDIT_SCORER_STORE"):
        ms.modal_settings(no_modal_config, url)
    with pytest.raises(ConfigError, match="--store / CREDIT_SCORER_STORE"):
        ComplianceStore(url)


def test_a_volume_store_takes_its_volume_and_folder_from_the_url(no_modal_config: dict[str, str]) -> None:
    env = {**no_modal_config, "MODAL_TOKEN_ID": TOKEN_ID, "MODAL_TOKEN_SECRET": TOKEN_SECRET}
    settings = ms.modal_settings(env, "modal-volume://records-eu/audit/compliance/")
    assert settings is not None
    assert (settings.volume, settings.volume_folder) == ("records-eu", "audit/compliance")


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        (ms.ENV_MIN_CONTAINERS, "-1", "from 0 to 1000"),
        (ms.ENV_SCALEDOWN_WINDOW, "1", "from 2 to 3600"),
        (ms.ENV_MAX_INPUTS, "many", "whole number"),
        (ms.ENV_VOLUME, "no spaces allowed", "Modal Volume name"),
        (ms.ENV_API_TOKEN_SECRET, "a/b", "Modal Secret name"),
    ],
)
def test_bad_values_are_named(no_modal_config: dict[str, str], name: str, value: str, expected: str) -> None:
    env = modal_on(no_modal_config, MODAL_TOKEN_ID=TOKEN_ID, MODAL_TOKEN_SECRET=TOKEN_SECRET, **{name: value})
    with pytest.raises(ConfigError, match=f"{name} must be .*{expected}"):
        ms.modal_settings(env, "./compliance")


def test_a_local_token_file_is_refused_for_modal_instead_of_silently_dropping_auth(
    no_modal_config: dict[str, str],
) -> None:
    env = modal_on(
        no_modal_config, MODAL_TOKEN_ID=TOKEN_ID, MODAL_TOKEN_SECRET=TOKEN_SECRET, CREDIT_SCORER_API_TOKEN_FILE="t"
    )
    with pytest.raises(ConfigError, match=f"CREDIT_SCORER_API_TOKEN_FILE is set.*{ms.ENV_API_TOKEN_SECRET}"):
        ms.modal_settings(env, "./compliance")
    settings = ms.modal_settings({**env, ms.ENV_API_TOKEN_SECRET: "scoring-tokens"}, "./compliance")
    assert settings is not None and settings.api_token_secret == "scoring-tokens"


def test_the_cli_comes_from_the_setting_then_path(tmp_path: Path) -> None:
    assert ms.modal_cli({ms.ENV_CLI: "/opt/modal"}) == ("/opt/modal",)
    fake = tmp_path / "modal"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert ms.modal_cli({"PATH": str(tmp_path)}) == (str(fake),)
    assert ms.modal_cli({"PATH": "/nonexistent"}) == (sys.executable, "-m", "modal")


def test_the_local_deployer_needs_a_local_store() -> None:
    check_deployer("./compliance", {})
    check_deployer("file:///srv/compliance", {})
    with pytest.raises(ConfigError, match="set CREDIT_SCORER_DEPLOYER=modal or use a local --store"):
        check_deployer("modal-volume://credit-scorer/compliance", {})


def test_check_integrations_stops_a_modal_run_at_start(
    no_modal_config: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET", "MODAL_PROFILE", "CREDIT_SCORER_STORE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(ms.MODAL_CONFIG_PATH, no_modal_config[ms.MODAL_CONFIG_PATH])
    check_integrations(str(tmp_path / "compliance"))  # nothing switched on
    monkeypatch.setenv(DEPLOYER_ENV, "modal")
    monkeypatch.setenv("MODAL_TOKEN_SECRET", TOKEN_SECRET)
    with pytest.raises(ConfigError, match="MODAL_TOKEN_ID is not set") as caught:
        check_integrations(str(tmp_path / "compliance"))
    assert TOKEN_SECRET not in str(caught.value)
    with pytest.raises(ConfigError, match="MODAL_TOKEN_ID is not set"):
        deployer_for(ComplianceStore(str(tmp_path / "compliance")))
    assert not (tmp_path / "compliance").exists()
