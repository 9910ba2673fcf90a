"""What a release needs to be deployable, checked before anyone is asked to decide (issue 16, case 3).

``run`` checks the dataset spec's model features when it starts (before anything runs or is recorded)
and ``prepare_gate`` checks the trained model's features again: a model whose declines could not be
explained would be approved, recorded, and then refused by the scoring service at start.
"""

from __future__ import annotations

from pathlib import Path

from credit_scorer.serving.reasons import ReasonCoder, load_reason_table, reason_table_path


def check_reason_codes(features: list[str], given: Path | None = None) -> Path:
    """The reason-code table in force, when it explains every feature; ConfigError naming the missing ones."""
    path = reason_table_path(given)
    ReasonCoder(load_reason_table(path), features, path)
    return path
