"""Modal settings: the Modal deployer and the compliance store on a Modal Volume (optional extra ``modal``).

Both are off by default. ``CREDIT_SCORER_DEPLOYER=modal`` deploys releases to Modal; a store URL
``modal-volume://<volume>/<folder>`` keeps the records on a Modal Volume. Either one needs the
``modal`` package (``pip install 'credit-scorer[modal]'``) and Modal credentials, resolved as the
Modal client resolves them: ``MODAL_TOKEN_ID`` and ``MODAL_TOKEN_SECRET`` from the environment, else
the active profile of ``~/.modal.toml`` (``MODAL_CONFIG_PATH``, ``MODAL_PROFILE``); or Modal's OAuth
variables. A missing piece stops ``run`` and ``console`` at start with a message naming it.

Tokens are never read into these settings: the check only looks at whether they are there, and
the ``modal`` CLI reads them itself. Nothing here contacts Modal.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from credit_scorer.core import settings
from credit_scorer.core.errors import ConfigError
from credit_scorer.core.settings import API_TOKEN_FILE_ENV, DEPLOYER_ENV, STORE_ENV, environ
from credit_scorer.records.modal_volume import (
    OBJECT_NAME,
    is_modal_volume_url,
    parse_volume_url,
)

ENV_VOLUME = settings.MODAL_VOLUME_ENV
ENV_MIN_CONTAINERS = settings.MODAL_MIN_CONTAINERS_ENV
ENV_SCALEDOWN_WINDOW = settings.MODAL_SCALEDOWN_WINDOW_ENV
ENV_MAX_INPUTS = settings.MODAL_MAX_INPUTS_ENV
ENV_API_TOKEN_SECRET = settings.MODAL_API_TOKEN_SECRET_ENV
ENV_CLI = settings.MODAL_CLI_ENV

MODAL_TOKEN_ID = "MODAL_TOKEN_ID"
MODAL_TOKEN_SECRET = "MODAL_TOKEN_SECRET"
MODAL_CONFIG_PATH = "MODAL_CONFIG_PATH"
MODAL_PROFILE = "MODAL_PROFILE"
MODAL_OAUTH = ("MODAL_OAUTH_REFRESH_TOKEN", "MODAL_OAUTH_CLIENT_ID")
MODAL_OAUTH_SECRETS = ("MODAL_OAUTH_CLIENT_SECRET", "MODAL_OAUTH_JWT_KEY")

DEFAULT_VOLUME = "credit-scorer"
DEFAULT_VOLUME_FOLDER = "compliance"
DEFAULT_MIN_CONTAINERS = 1
DEFAULT_SCALEDOWN_WINDOW = 300
DEFAULT_MAX_INPUTS = 32

DeployerKind = Literal["local", "modal"]
DEPLOYERS: tuple[DeployerKind, ...] = ("local", "modal")

MISSING_PACKAGE = (
    "{what} needs the modal package, which is not installed: pip install 'credit-scorer[modal]' "
    "(or pip install modal==1.6.4)"
)
_SECRET_NAME = OBJECT_NAME


class ModalSettings(BaseModel):
    """How to deploy to Modal and where the decision logs go; never holds a credential."""

    model_config = ConfigDict(frozen=True)

    volume: str = DEFAULT_VOLUME
    volume_folder: str = DEFAULT_VOLUME_FOLDER  # the compliance store's folder inside the volume
    min_containers: int = DEFAULT_MIN_CONTAINERS
    scaledown_window: int = DEFAULT_SCALEDOWN_WINDOW
    max_inputs: int = DEFAULT_MAX_INPUTS
    api_token_secret: str | None = None  # name of a Modal Secret holding CREDIT_SCORER_API_TOKENS
    cli: tuple[str, ...] = ("modal",)
    credentials: str = ""  # where the credentials were found (for messages), never their values


def deployer_kind(env: Mapping[str, str] | None = None) -> DeployerKind:
    """``CREDIT_SCORER_DEPLOYER``: ``local`` (default) or ``modal``; ConfigError naming it otherwise."""
    env = environ() if env is None else env
    value = env.get(DEPLOYER_ENV, "").strip().lower() or "local"
    if value == "local":
        return "local"
    if value == "modal":
        return "modal"
    raise ConfigError(f"{DEPLOYER_ENV} must be one of {', '.join(DEPLOYERS)}, not {value!r}")


def modal_installed() -> bool:
    """Whether the ``modal`` package can be imported (without importing it)."""
    try:
        return importlib.util.find_spec("modal") is not None
    except (ImportError, ValueError):  # ValueError: a module entry without a spec (e.g. blocked in sys.modules)
        return False


def modal_settings(env: Mapping[str, str] | None = None, store: str | None = None) -> ModalSettings | None:
    """Modal settings when the Modal deployer or a Modal Volume store is on, else None.

    Raises ConfigError naming the setting when one is on but the ``modal`` package, the
    credentials or a value is missing or malformed. ``store`` is the store URL in use.
    """
    env = environ() if env is None else env
    store = store if store is not None else env.get(STORE_ENV, "")
    on_deployer = deployer_kind(env) == "modal"
    on_store = is_modal_volume_url(store)
    if not on_deployer and not on_store:
        return None
    what = f"{DEPLOYER_ENV}=modal" if on_deployer else f"the Modal Volume store {store}"
    volume_url = parse_volume_url(store) if on_store else None
    if not modal_installed():
        raise ConfigError(MISSING_PACKAGE.format(what=what))
    credentials = credentials_source(env, what)
    volume = volume_url.volume if volume_url else env.get(ENV_VOLUME, "").strip() or DEFAULT_VOLUME
    if not OBJECT_NAME.match(volume):
        raise ConfigError(f"{ENV_VOLUME} must be a Modal Volume name (1-64 letters, digits, '-', '_' or '.')")
    folder = volume_url.folder if volume_url else DEFAULT_VOLUME_FOLDER
    secret = env.get(ENV_API_TOKEN_SECRET, "").strip() or None
    if secret is not None and not _SECRET_NAME.match(secret):
        raise ConfigError(f"{ENV_API_TOKEN_SECRET} must be a Modal Secret name (1-64 letters, digits, '-', '_' or '.')")
    if on_deployer and secret is None and env.get(API_TOKEN_FILE_ENV, "").strip():
        raise ConfigError(
            f"{API_TOKEN_FILE_ENV} is set, but a Modal endpoint cannot read a local token file: put the tokens "
            f"in a Modal Secret as CREDIT_SCORER_API_TOKENS (one per line) and name it in {ENV_API_TOKEN_SECRET}"
        )
    return ModalSettings(
        volume=volume,
        volume_folder=folder,
        min_containers=_int_setting(env, ENV_MIN_CONTAINERS, DEFAULT_MIN_CONTAINERS, 0, 1000),
        scaledown_window=_int_setting(env, ENV_SCALEDOWN_WINDOW, DEFAULT_SCALEDOWN_WINDOW, 2, 3600),
        max_inputs=_int_setting(env, ENV_MAX_INPUTS, DEFAULT_MAX_INPUTS, 1, 1000),
        api_token_secret=secret,
        cli=modal_cli(env),
        credentials=credentials,
    )


def credentials_source(env: Mapping[str, str], what: str) -> str:
    """Where the Modal client will find its credentials; ConfigError naming what is missing.

    Mirrors ``modal.config``: each of ``token_id`` / ``token_secret`` comes from ``MODAL_<KEY>``,
    else from the active profile of the config file. Only presence is checked; values are not kept.
    """
    if all(env.get(name, "").strip() for name in MODAL_OAUTH) and any(
        env.get(name, "").strip() for name in MODAL_OAUTH_SECRETS
    ):
        return "Modal OAuth variables in the environment"
    path = Path(env.get(MODAL_CONFIG_PATH, "").strip() or Path("~/.modal.toml").expanduser())
    profiles = _read_modal_config(path)
    profile = env.get(MODAL_PROFILE, "").strip() or _active_profile(profiles)
    section = profiles.get(profile, {})
    missing = []
    sources = set()
    for variable, key in ((MODAL_TOKEN_ID, "token_id"), (MODAL_TOKEN_SECRET, "token_secret")):
        if env.get(variable, "").strip():
            sources.add("the environment")
        elif str(section.get(key) or "").strip():
            sources.add(f"profile {profile!r} of {path}")
        else:
            missing.append(variable)
    if missing:
        raise ConfigError(
            f"{what} needs Modal credentials, but {' and '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not set (neither in the environment nor in profile "
            f"{profile!r} of {path}); run `modal token set` or export {MODAL_TOKEN_ID} and {MODAL_TOKEN_SECRET}"
        )
    return " and ".join(sorted(sources))


def _read_modal_config(path: Path) -> dict[str, dict[str, object]]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(
            f"the Modal config file {path} ({MODAL_CONFIG_PATH}) cannot be read: {exc.strerror}"
        ) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        # The error text could quote a line of the file, i.e. a token: name the file only.
        raise ConfigError(f"the Modal config file {path} ({MODAL_CONFIG_PATH}) is not valid TOML") from None
    return {name: section for name, section in data.items() if isinstance(section, dict)}


def _active_profile(profiles: Mapping[str, Mapping[str, object]]) -> str:
    for name, section in profiles.items():
        if section.get("active") is True:
            return name
    return "default"


def _int_setting(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number from {low} to {high}, not {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be a whole number from {low} to {high}, not {value}")
    return value


def modal_cli(env: Mapping[str, str]) -> tuple[str, ...]:
    """The ``modal`` command: ``CREDIT_SCORER_MODAL_CLI``, else ``modal`` on PATH, else ``python -m modal``."""
    given = env.get(ENV_CLI, "").strip()
    if given:
        return (given,)
    found = shutil.which("modal", path=env.get("PATH"))
    return (found,) if found else (sys.executable, "-m", "modal")
