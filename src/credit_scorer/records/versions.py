"""Versioned records (people registry, thresholds): read every ``<name>_v<N>.json`` that the ledger vouches for."""

from __future__ import annotations

import re
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from credit_scorer.core.errors import CreditScorerError
from credit_scorer.records import ledger
from credit_scorer.records.store import ComplianceStore

V = TypeVar("V", bound=BaseModel)


def read_versions(
    store: ComplianceStore,
    folder: str,
    file_name: re.Pattern[str],
    kind: ledger.Kind,
    model: type[V],
    error: type[CreditScorerError],
    what: str,
) -> list[V]:
    """Every version in ``folder``, oldest first; ``error`` naming a file that is not ``what``, that no genuine
    ledger entry of ``kind`` vouches for (written by hand, or edited since), or whose number disagrees."""
    numbered: list[tuple[int, str]] = []
    for path in store.list(folder, ".json"):
        match = file_name.match(path.rsplit("/", 1)[-1])
        if match:
            numbered.append((int(match.group(1)), path))
    trusted = ledger.trusted_file_hashes(store, frozenset({kind})) if numbered else {}
    versions: list[V] = []
    for number, path in sorted(numbered):
        try:
            data = store.read_bytes(path)
            version = model.model_validate_json(data)
        except ValidationError as exc:
            raise error(f"{path} is not {what}: {exc}") from exc
        if trusted.get(path) != ledger.sha256_hex(data):
            raise error(
                f"{path} is not in the ledger with these bytes (written by hand, or edited since): it is not in "
                "force; run `credit-scorer audit verify`"
            )
        found = getattr(version, "version", None)
        if found != number:
            raise error(f"{path}: field version is {found}, the file name says {number}")
        versions.append(version)
    return versions
