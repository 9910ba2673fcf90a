"""``model_release_log.md``: one Markdown table row per release or rollback (SOP §1 step 6).

The ledger is the log's source of truth: a row is appended to the ledger first (its text inline in the
entry), then the file is rewritten as the header plus every ledgered row, atomically. A crash between the
two leaves a file one row short, which the next append (or :func:`rebuild`) completes; it never leaves a
row the ledger does not know. Each row names the ledger checkpoint at the moment it was written
(``ledger seq N · head …``), so a copy of the log kept elsewhere proves how far the ledger had come.
``--git-commit`` commits the log when the store lies inside a git work tree.
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from credit_scorer.core.faults import crash_point
from credit_scorer.records import ledger
from credit_scorer.records.store import ComplianceStore

log = logging.getLogger(__name__)

LOG_FILE = "model_release_log.md"
COLUMNS = (
    "date (UTC)",
    "event",
    "release",
    "model path",
    "sha256",
    "deployment_url",
    "approval id",
    "by",
    "note",
    "ledger checkpoint",
)
LEGACY_COLUMNS = COLUMNS[:-1]
"""Logs written before rows carried the ledger checkpoint keep their header; their new rows gain the cell."""
HEADER = (
    "# Model release log\n\n"
    "One row per release or rollback, appended by credit-scorer (SOP §1 step 6, §4).\n\n"
    "| " + " | ".join(COLUMNS) + " |\n"
    "|" + "|".join("---" for _ in COLUMNS) + "|\n"
)
LEGACY_HEADER = (
    "# Model release log\n\n"
    "One row per release or rollback, appended by credit-scorer (SOP §1 step 6, §4).\n\n"
    "| " + " | ".join(LEGACY_COLUMNS) + " |\n"
    "|" + "|".join("---" for _ in LEGACY_COLUMNS) + "|\n"
)


class ReleaseLogRow(BaseModel):
    """One row of the release log."""

    model_config = ConfigDict(frozen=True)

    date: str
    event: Literal["release", "rollback"]
    release_id: str
    model_path: str
    sha256: str
    deployment_url: str
    approval_id: str
    by: str
    note: str = ""
    checkpoint: str = ""
    """The ledger when the row was written: ``ledger seq N · head <16 hex>``."""

    def as_markdown(self) -> str:
        """The row as a Markdown table line."""
        cells = [
            self.date,
            self.event,
            self.release_id,
            self.model_path,
            self.sha256,
            self.deployment_url,
            self.approval_id,
            self.by,
            self.note,
            self.checkpoint,
        ]
        return "| " + " | ".join(_cell(c) for c in cells) + " |\n"


def normal_url(url: str) -> str:
    """A deployment URL as compared: no surrounding space or trailing slash, ``localhost`` as ``127.0.0.1``."""
    return url.strip().rstrip("/").replace("://localhost:", "://127.0.0.1:")


_ESCAPES = {"\\": "\\\\", "|": "\\|", "\n": "\\n", "\r": "\\r"}
_UNESCAPES = {"\\": "\\", "|": "|", "n": "\n", "r": "\r"}


def _cell(text: str) -> str:
    """A table cell: backslash, pipe and line breaks escaped so a row stays one line and parses back."""
    return "".join(_ESCAPES.get(ch, ch) for ch in text)


def parse_rows(text: str) -> list[ReleaseLogRow]:
    """Rows of a release log, oldest first."""
    rows: list[ReleaseLogRow] = []
    for line in text.split("\n"):  # not splitlines(): a cell may hold U+2028, U+0085, \f … (rows end in \n only)
        if not line.startswith("| ") or line.startswith("| date"):
            continue
        cells = _split_row(line)
        if len(cells) not in (len(COLUMNS), len(LEGACY_COLUMNS)):
            continue
        rows.append(ReleaseLogRow.model_validate(dict(zip(ReleaseLogRow.model_fields, cells, strict=False))))
    return rows


def _split_row(line: str) -> list[str]:
    """Cells of one table line, unescaped; the single padding space around each cell is dropped."""
    body = line.rstrip()[1:-1]
    cells: list[str] = []
    current: list[str] = []
    chars = iter(body)
    for ch in chars:
        if ch == "\\":
            nxt = next(chars, "")
            current.append(_UNESCAPES.get(nxt, "\\" + nxt))
        elif ch == "|":
            cells.append("".join(current))
            current = []
        else:
            current.append(ch)
    cells.append("".join(current))
    return [c[1:] if c.startswith(" ") else c for c in (c[:-1] if c.endswith(" ") else c for c in cells)]


def read_rows(store: ComplianceStore) -> list[ReleaseLogRow]:
    """Rows in the store's release log (empty when there is none yet)."""
    if not store.exists(LOG_FILE):
        return []
    return parse_rows(store.read_text(LOG_FILE))


def _lines(text: str) -> list[str]:
    """Lines with their newline, split on ``\\n`` only."""
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _is_row(line: str) -> bool:
    return line.startswith("| ") and not line.startswith("| date")


def row_lines(text: str) -> list[str]:
    """The table rows of a release log as written (each with its newline), oldest first."""
    return [line for line in _lines(text) if _is_row(line)]


def append_row(store: ComplianceStore, row: ReleaseLogRow, *, activates: str | None = None) -> ReleaseLogRow:
    """Append one row: to the ledger first (with the checkpoint before it), then to the file; return the row."""
    with store.lock("release-log"):
        signer = ledger.signer_for(store)
        ledger.recover_pending(store)
        rebuild(store)
        written = row.model_copy(update={"checkpoint": row.checkpoint or ledger.head_note(store)})
        line = written.as_markdown()
        number = len(ledgered_rows(store)) + 1
        ledger.append(
            store, written.event, ledger.row_path(number), line.encode("utf-8"), row=line, signer=signer,
            activates=activates,
        )  # fmt: skip
        crash_point("release-row-ledgered")
        rebuild(store)
    return written


def ledgered_rows(store: ComplianceStore) -> list[str]:
    """The release-log rows the ledger records, in order (each with its newline)."""
    return [e.row for e in ledger.entries(store) if e.kind in ledger.ROW_KINDS and e.row is not None]


def rebuild(store: ComplianceStore) -> bool:
    """Rewrite the log as its header plus the ledgered rows when the file lags behind the ledger.

    Only a file that is the header plus an earlier part of the ledgered rows (what a crash leaves) is
    rewritten; a file that says anything else is left as evidence for ``audit verify``. True if rewritten.
    """
    rows = ledgered_rows(store)
    current = store.read_text(LOG_FILE) if store.exists(LOG_FILE) else None
    if current is None and not rows:
        return False
    header = LEGACY_HEADER if current is not None and current.startswith(LEGACY_HEADER) else HEADER
    wanted = header + "".join(rows)
    if current == wanted:
        return False
    lines = row_lines(current) if current is not None else []
    lagging = current is None or (current == header + "".join(lines) and lines == rows[: len(lines)])
    if not lagging:
        log.warning("%s differs from the ledger's rows; left as it is for `credit-scorer audit verify`", LOG_FILE)
        return False
    store.replace(LOG_FILE, wanted.encode("utf-8"))
    return True


def git_commit_log(store: ComplianceStore, message: str) -> str:
    """Commit the release log if the store is inside a git work tree; return what happened."""
    if not store.is_local:
        return "not committed: the store is not a local folder"
    log_path = store.local_path(LOG_FILE)
    folder = Path(store.root)
    inside = subprocess.run(
        ["git", "-C", str(folder), "rev-parse", "--is-inside-work-tree"],
        capture_output=True,
        text=True,
        check=False,
    )
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        return f"not committed: {folder} is not inside a git work tree"
    subprocess.run(["git", "-C", str(folder), "add", str(log_path)], check=True, capture_output=True)
    done = subprocess.run(
        ["git", "-C", str(folder), "commit", "-m", message, "--", str(log_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return f"not committed: {done.stderr.strip() or done.stdout.strip()}"
    return "committed to git"
