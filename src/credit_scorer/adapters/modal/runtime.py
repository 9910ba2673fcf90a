"""What a Modal container of a release runs: the scoring app of :mod:`credit_scorer.serving.app`.

Called from the generated Modal app (:mod:`credit_scorer.adapters.modal.app`): at container start
:func:`open_scoring_app` checks the model file's sha256 against the release's and builds the same
FastAPI app the local server runs; at container exit :func:`close_scoring_app` drains and fsyncs
the decision log (the app then commits the Volume). Each container writes its decision log in a
folder of its own (``<release>/<task id>``), so containers never append to the same file of the
Volume. Bearer tokens come from ``CREDIT_SCORER_API_TOKENS`` (one per line), which a Modal Secret
sets; the generated file only names that Secret.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from credit_scorer.core.settings import API_TOKENS_ENV, environ

TASK_ID_ENV = "MODAL_TASK_ID"  # set by Modal in every container
MIN_TOKEN_LENGTH = 16


class ModelFileMismatch(RuntimeError):
    """The model file in the container is not the release's model; the container refuses to serve."""


def api_tokens(env: Mapping[str, str], required: bool) -> list[str]:
    """Bearer tokens from ``CREDIT_SCORER_API_TOKENS`` (one per line; blank lines and ``#`` comments ignored)."""
    raw = env.get(API_TOKENS_ENV, "")
    tokens = [line.strip() for line in raw.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if required and not tokens:
        raise ValueError(f"{API_TOKENS_ENV} holds no token; the Modal Secret must set it, one token per line")
    if any(len(t) < MIN_TOKEN_LENGTH for t in tokens):
        raise ValueError(f"{API_TOKENS_ENV}: every token needs at least {MIN_TOKEN_LENGTH} characters")
    return tokens


def decision_log_folder(root: Path, env: Mapping[str, str]) -> Path:
    """This container's decision-log folder below the release's folder on the Volume."""
    task = env.get(TASK_ID_ENV, "").strip() or f"pid-{os.getpid()}"
    return root / "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "_" for c in task)


def open_scoring_app(
    release_id: str,
    model_sha256: str,
    model_file: Path,
    reason_codes: Path,
    decision_log_root: Path,
    *,
    tokens_required: bool,
    env: Mapping[str, str] | None = None,
) -> Any:
    """The release's scoring app, after checking the model file's sha256."""
    env = environ() if env is None else env
    digest = hashlib.sha256(model_file.read_bytes()).hexdigest()
    if digest != model_sha256:
        raise ModelFileMismatch(
            f"model file {model_file} has sha256 {digest}, but release {release_id} is model {model_sha256}; "
            f"not serving it"
        )
    from credit_scorer.serving.app import create_app

    return create_app(
        model_file,
        release_id,
        decision_log_dir=decision_log_folder(decision_log_root, env),
        reason_codes=reason_codes,
        api_tokens=api_tokens(env, tokens_required),
    )


def close_scoring_app(app: Any) -> None:
    """Write every queued decision, flush and fsync the decision log."""
    app.state.decision_log.close()
