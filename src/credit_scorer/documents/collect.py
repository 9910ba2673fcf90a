"""Gather the run-independent facts an Annex IV document states: installed packages, Python, OS."""

from __future__ import annotations

import platform
from importlib import metadata

from pydantic import BaseModel, ConfigDict


class AnnexIvDocument(BaseModel):
    """Where a release's Annex IV document and companions were saved, with their hashes."""

    model_config = ConfigDict(frozen=True)

    pdf_path: str
    pdf_sha256: str
    html_path: str
    html_sha256: str
    model_card_path: str
    sbom_path: str
    missing_facts: list[str]
    generated_at: str


def installed_packages() -> dict[str, str]:
    """Name → version of every distribution installed in this environment, sorted by name."""
    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found[name.lower()] = dist.version
    return dict(sorted(found.items()))


def python_and_platform() -> tuple[str, str]:
    """``("3.11.7 (CPython)", "Linux-6.1 x86_64 …")``."""
    python = f"{platform.python_version()} ({platform.python_implementation()})"
    return python, f"{platform.system()} {platform.release()} {platform.machine()}"
