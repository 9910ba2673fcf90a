"""Settings of one run's release: who submits, where records go, how to deploy."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from credit_scorer.documents.inputs import ProviderFacts
from credit_scorer.records.people import People


class ReleaseSettings(BaseModel):
    """Passed to the pipeline; the same values are used again when a paused run resumes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    submitter: str
    store_url: str
    people: People
    people_version: int | None = None
    """The store's people registry version in force (None when dev mode uses a file from outside it)."""
    people_source: str | None = None
    dev_mode: bool = False
    wait_timeout_seconds: int = Field(5, ge=1)
    port: int | None = Field(None, ge=1, le=65535)
    git_commit: bool = False
    facts: ProviderFacts = ProviderFacts()

    @property
    def waives_duties(self) -> bool:
        """Dev mode from the flag or from the people file's policy."""
        return self.dev_mode or self.people.policy.dev_mode
