"""Checks every deployer makes: a usable release id, the model file's sha256, and whether an endpoint
serves the expected model (``/health``, then ``/model`` with the release id, sha256 and request fields).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from credit_scorer.core.ports import DeploymentError

DEPLOYMENT_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

# Never route calls to our own loopback endpoints through an HTTP proxy from the environment;
# remote endpoints (Modal) go through the environment's proxy settings like any other client.
_LOOPBACK_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_REMOTE_HTTP = urllib.request.build_opener()


def check_release_id(release_id: str) -> None:
    """Refuse a release id that cannot name a deployment (file names, app names)."""
    if not DEPLOYMENT_NAME_PATTERN.match(release_id):
        raise DeploymentError(
            f"release id {release_id!r} cannot name a deployment: use 1-128 letters, digits, '.', '_' "
            f"or '-', starting with a letter or digit"
        )


def check_model_file(model_path: Path, model_sha256: str) -> None:
    """Refuse a missing or unreadable model file, or one whose sha256 is not the expected one."""
    try:
        digest = hashlib.sha256(model_path.read_bytes()).hexdigest()
    except FileNotFoundError:
        raise DeploymentError(f"model file {model_path} does not exist; pass the stored model's path") from None
    except OSError as exc:
        raise DeploymentError(f"model file {model_path} cannot be read: {exc}") from None
    if digest != model_sha256:
        raise DeploymentError(
            f"model file {model_path} has sha256 {digest}, not the expected {model_sha256}; "
            f"deploy the file of that model version"
        )


def now_utc() -> str:
    """The current time as an ISO 8601 UTC string with ``Z``, to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _is_loopback(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def http_json(method: str, url: str, body: Any = None, timeout: float = 5.0) -> dict[str, Any]:
    """Call a JSON endpoint and return the decoded object (loopback: never through a proxy)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    opener = _LOOPBACK_HTTP if _is_loopback(url) else _REMOTE_HTTP
    with opener.open(request, timeout=timeout) as response:
        decoded = json.loads(response.read())
    if not isinstance(decoded, dict):
        raise ValueError(f"{url} answered {decoded!r}, not a JSON object")
    return decoded


def health_ok(url: str, timeout: float = 2.0) -> bool:
    """True when ``<url>/health`` answers ``{"status": "ok"}``."""
    try:
        return http_json("GET", f"{url.rstrip('/')}/health", timeout=timeout).get("status") == "ok"
    except (OSError, ValueError):
        return False


def model_mismatch(info: dict[str, Any], url: str, release_id: str, model_sha256: str) -> str | None:
    """How an endpoint's ``/model`` answer differs from the expected release and model, or None."""
    if info.get("model_sha256") != model_sha256 or info.get("release_id") != release_id:
        return (
            f"the server on {url} reports release {info.get('release_id')!r} with model sha256 "
            f"{info.get('model_sha256')!r}, expected release {release_id!r} with {model_sha256!r}"
        )
    return None


def missing_request_fields(info: dict[str, Any], url: str) -> str | None:
    """The problem when ``/model`` does not list the request fields (the input contract), else None."""
    if not info.get("request_fields"):
        return f"the server on {url} answered /model without its request fields: {info}"
    return None
