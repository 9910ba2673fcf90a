"""Trust anchors of compliance ledgers, kept OUTSIDE the store they vouch for.

An insider who can write the store can rewrite every record, re-chain the ledger and re-sign it with a key of
their own, or cut the ledger back and delete what followed. What the store itself says cannot expose that;
something the insider did not rewrite has to. This file is that something, per store:

- ``keys``: the fingerprints (full sha256 of the raw Ed25519 public key) of the ledger keys trusted for this
  store. The first is pinned when the store's key is first published (trust on first use); later keys are
  trusted only through a ``key_rotation`` entry signed by the key before them.
- ``ledger_id``: the ``entry_hash`` of the ledger's first entry, so a ledger replaced wholesale is noticed.
- ``witnessed``: the newest checkpoint this machine has seen (sequence number, head hash, time), updated on
  every append, so a ledger cut back to before it is noticed.

The file is ``$CREDIT_SCORER_LEDGER_TRUST``, default ``~/.config/credit-scorer/ledger_trust.yaml`` beside the
signing key. A team that shares a store commits it to their configuration repository and points every
machine at it (``CREDIT_SCORER_LEDGER_TRUST=conf/ledger_trust.yaml``): then a change of pin is a reviewed
commit. Signed checkpoints (``credit-scorer audit checkpoint``) carry the same evidence to places outside both:
tickets, release-log rows, an auditor's files.

This module only reads and writes the file; :mod:`credit_scorer.records.ledger` decides what to pin and
checks ledgers against it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from credit_scorer.core.errors import ConfigError
from credit_scorer.core.settings import current_settings

DEFAULT_TRUST_FILE = "~/.config/credit-scorer/ledger_trust.yaml"
HEADER = (
    "# credit-scorer: trust anchors of compliance ledgers (see `credit-scorer audit verify`).\n"
    "# Written by credit-scorer; commit it where a change of pin must be reviewed.\n"
)
_HEX64 = r"^[0-9a-f]{64}$"


class Witnessed(BaseModel):
    """The newest point of a ledger this machine has seen."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: int = Field(ge=0)
    head: str = Field(pattern=_HEX64)
    at: str


class StoreAnchor(BaseModel):
    """What this machine trusts about one store's ledger."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    keys: list[str] = Field(default_factory=list)
    ledger_id: str | None = Field(default=None, pattern=_HEX64)
    witnessed: Witnessed | None = None


class TrustFile(BaseModel):
    """The whole trust file: anchors by store key."""

    model_config = ConfigDict(extra="forbid")

    stores: dict[str, StoreAnchor] = Field(default_factory=dict)


def trust_file() -> Path:
    """``$CREDIT_SCORER_LEDGER_TRUST``, else ``~/.config/credit-scorer/ledger_trust.yaml``."""
    return Path(current_settings().ledger_trust or DEFAULT_TRUST_FILE).expanduser()


def store_key(url: str, root: str, is_local: bool) -> str:
    """How a store is named in the trust file: its absolute folder, or its URL."""
    return str(Path(root).resolve()) if is_local else url.rstrip("/")


def read(path: Path | None = None) -> TrustFile:
    """The trust file (empty when it does not exist); ConfigError naming the file when it is unreadable."""
    source = path or trust_file()
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        return TrustFile()
    except OSError as exc:
        raise ConfigError(f"ledger trust file {source} cannot be read: {exc}") from exc
    try:
        return TrustFile.model_validate(yaml.safe_load(text) or {})
    except (yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"ledger trust file {source} is not valid: {exc}; fix or remove it") from exc


def anchor_of(key: str, path: Path | None = None) -> StoreAnchor | None:
    """The anchor of one store, or None when this machine has none."""
    return read(path).stores.get(key)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(path.with_name(path.name + ".lock"), "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _write(path: Path, trust: TrustFile) -> None:
    body = yaml.safe_dump(trust.model_dump(mode="json", exclude_none=True), sort_keys=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-trust-")  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(HEADER + body)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def pin(key: str, fingerprint: str, ledger_id: str | None = None, path: Path | None = None) -> StoreAnchor:
    """Trust ``fingerprint`` for the store ``key`` (idempotent); set its ledger id if not yet known."""
    target = path or trust_file()
    with _locked(target):
        trust = read(target)
        current = trust.stores.get(key, StoreAnchor())
        keys = current.keys if fingerprint in current.keys else [*current.keys, fingerprint]
        updated = current.model_copy(update={"keys": keys, "ledger_id": current.ledger_id or ledger_id})
        if updated != trust.stores.get(key):
            trust.stores[key] = updated
            _write(target, trust)
        return updated


def witness(key: str, seq: int, head: str, at: str, ledger_id: str, path: Path | None = None) -> None:
    """Remember that the store's ledger reached ``seq`` with ``head`` (only ever moves forward)."""
    target = path or trust_file()
    with _locked(target):
        trust = read(target)
        current = trust.stores.get(key, StoreAnchor())
        if current.witnessed is not None and current.witnessed.seq >= seq:
            return
        trust.stores[key] = current.model_copy(
            update={"witnessed": Witnessed(seq=seq, head=head, at=at), "ledger_id": current.ledger_id or ledger_id}
        )
        _write(target, trust)
