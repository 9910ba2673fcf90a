"""Release ids: one pattern, one way to make one, one way to check one.

A release is named after the training run that produced it: ``AI-REL-<first 8 hex digits of the run id>``.
It is the release's ticket key, its folder under ``releases/``, and its decision-log folder.
"""

from __future__ import annotations

import re
from typing import Final

RELEASE_PREFIX: Final = "AI-REL-"
RELEASE_ID_PATTERN: Final = re.compile(r"AI-REL-[0-9a-f]{8}")


def release_key(run_id: str) -> str:
    """The release id and ticket key of a run: ``AI-REL-<first 8 hex digits of the run id>``."""
    return f"{RELEASE_PREFIX}{run_id.replace('-', '')[:8]}"


def is_release_id(value: str) -> bool:
    """Whether ``value`` is exactly a release id (what the console accepts in a URL)."""
    return RELEASE_ID_PATTERN.fullmatch(value) is not None
