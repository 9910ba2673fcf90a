"""Red team: text people type (rollback reasons, names) must not break the release log, the ledger or a refusal."""

from __future__ import annotations

from pathlib import Path

import pytest

from credit_scorer.records import ledger_verify, release_log
from credit_scorer.records.store import ComplianceStore
from tests.unit.test_release_log_and_tickets import _row

# str.splitlines() splits on these too; a Markdown table line may contain them (pasted text does: U+2028)
LINE_BREAKS_SPLITLINES_KNOWS = ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e"]


@pytest.mark.parametrize("brk", LINE_BREAKS_SPLITLINES_KNOWS, ids=lambda c: f"U+{ord(c):04X}")
def test_a_rollback_reason_with_a_unicode_line_break_round_trips(tmp_path: Path, brk: str) -> None:
    store = ComplianceStore(str(tmp_path))
    row = _row(1, event="rollback", note=f"AUC dropped{brk}customers complained")
    release_log.append_row(store, row)
    assert release_log.read_rows(store) == [row]
    assert ledger_verify.verify(store) == []


def test_a_release_row_by_an_approver_with_a_line_separator_keeps_the_store_verifiable(tmp_path: Path) -> None:
    store = ComplianceStore(str(tmp_path))
    release_log.append_row(store, _row(1, by="Jane\u2028Doe"))
    release_log.append_row(store, _row(2))
    assert [r.release_id for r in release_log.read_rows(store)] == [_row(1).release_id, _row(2).release_id]
    assert ledger_verify.verify(store) == []
