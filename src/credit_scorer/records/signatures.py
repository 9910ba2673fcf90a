"""A person's signature on a record: Ed25519 over the sha256 of the record's canonical JSON without it.

The store's ledger key proves *the store* wrote a record; a person's signature proves *who* made the
sign-off or decision in it. The signed bytes are :func:`record_hash` of the record's JSON with the
``signature`` field left out, so a signature cannot be moved to another record, and an edit of any
field breaks it. Which key belonged to whom, and when, is in the ledger (``records/identities.py``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict

SIGNATURE_FIELD = "signature"


class PersonSignature(BaseModel):
    """Who signed a record, with which enrolled key, and the signature (base64) over :func:`record_hash`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    signer: str
    key_id: str
    signature: str


def record_hash(record: Mapping[str, object]) -> str:
    """sha256 (hex) of a record's canonical JSON without its ``signature`` field: what its maker signs."""
    unsigned = {k: v for k, v in record.items() if k != SIGNATURE_FIELD}
    text = json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def raw_public(public_key: Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of a public key."""
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id_of(public_key: Ed25519PublicKey) -> str:
    """First 16 hex digits of sha256 of the raw public key (as ledger entries name keys)."""
    return hashlib.sha256(raw_public(public_key)).hexdigest()[:16]


def sign(key: Ed25519PrivateKey, signer: str, hash_hex: str) -> PersonSignature:
    """``signer``'s signature over a record hash."""
    signature = key.sign(bytes.fromhex(hash_hex))
    return PersonSignature(
        signer=signer, key_id=key_id_of(key.public_key()), signature=base64.b64encode(signature).decode("ascii")
    )


def public_key_from(encoded: str) -> Ed25519PublicKey | None:
    """A public key from its base64 raw bytes, else None."""
    try:
        raw = base64.b64decode(encoded, validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (ValueError, binascii.Error):
        return None


def signature_valid(public_key: Ed25519PublicKey, hash_hex: str, signature: str) -> bool:
    """Whether ``signature`` (base64) is ``public_key``'s signature over ``hash_hex``."""
    try:
        public_key.verify(base64.b64decode(signature, validate=True), bytes.fromhex(hash_hex))
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True
