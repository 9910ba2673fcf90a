"""People, their roles, and the separation-of-duties rules of the release gate.

The people/roles file (``conf/people.yaml``) maps each person to roles; the SOP's
roles are submitter (ML engineer), tester (QA lead), approver (AI compliance officer)
and auditor. Submitter, tester and approver of a release must be three different
people holding those roles; a dev-mode flag waives the rule, and the waiver is written
into the record.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from credit_scorer.core.errors import ConfigError, Forbidden
from credit_scorer.core.settings import PEOPLE_ENV, current_settings
from credit_scorer.domain.config import read_yaml

Role = Literal["submitter", "tester", "approver", "auditor"]
DEFAULT_PEOPLE_FILE = "conf/people.yaml"

RULE_ROLE = "SoD-1 each actor must hold the role they act in"
RULE_DISTINCT = "SoD-2 submitter, tester and approver must be three different people"
RULE_SIGNOFF = "SoD-3 an approval needs the tester's sign-off first"
RULE_SIGNATURE = "SIG-1 a sign-off or decision carries its maker's own signature (their password unlocks it)"


class IdentityError(Forbidden):
    """A person acted outside their role or broke separation of duties; names the rule."""


class ReleasePolicy(BaseModel):
    """Gate policy flags from the people/roles file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    require_tester_signoff: bool = True
    dev_mode: bool = False


class People(BaseModel):
    """Who holds which role."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    people: dict[str, list[Role]] = Field(default_factory=dict)
    policy: ReleasePolicy = ReleasePolicy()

    def roles(self, name: str) -> list[Role]:
        """Roles of a person (empty when unknown)."""
        return list(self.people.get(name, []))

    def holders(self, role: Role) -> list[str]:
        """People holding a role."""
        return [n for n, roles in self.people.items() if role in roles]


def people_file(given: Path | None = None) -> Path:
    """The people file: the option, else ``CREDIT_SCORER_PEOPLE``, else ``conf/people.yaml``."""
    if given is not None:
        return given
    return Path(current_settings().people or DEFAULT_PEOPLE_FILE)


def load_people(path: Path | None = None) -> People:
    """Load the people/roles file; a missing file is an error naming where it was looked for."""
    source = people_file(path)
    if not source.exists():
        raise ConfigError(
            f"people/roles file {source} not found; pass --people FILE or set {PEOPLE_ENV} "
            "(conf/people.yaml in this repository is an example)"
        )
    try:
        return People.model_validate(read_yaml(source))
    except ValidationError as exc:
        raise ConfigError(f"{source} is not a valid people/roles file: {exc}") from exc


def role_violation(people: People, name: str, role: Role) -> str | None:
    """Why ``name`` may not act as ``role``, or None when they may."""
    if not name.strip():
        return f"{RULE_ROLE}: no {role} name given"
    if name not in people.people:
        return f"{RULE_ROLE}: {name!r} is not in the people/roles file"
    if role not in people.people[name]:
        held = ", ".join(people.people[name]) or "no role"
        article = "an" if role[0] in "aeiou" else "a"
        return f"{RULE_ROLE}: {name!r} is not {article} {role} (holds: {held})"
    return None


def duty_violations(people: People, submitter: str, tester: str | None, approver: str) -> list[str]:
    """Every broken separation-of-duties rule for one release decision."""
    problems = [
        v
        for v in (
            role_violation(people, submitter, "submitter"),
            role_violation(people, tester, "tester") if tester else None,
            role_violation(people, approver, "approver"),
        )
        if v
    ]
    actors = {"submitter": submitter, "tester": tester, "approver": approver}
    named = {k: v for k, v in actors.items() if v}
    seen: dict[str, str] = {}
    for duty, person in named.items():
        if person in seen:
            problems.append(f"{RULE_DISTINCT}: {person!r} is both {seen[person]} and {duty}")
        else:
            seen[person] = duty
    return problems


def enforce(problems: list[str], dev_mode: bool) -> list[str]:
    """Raise IdentityError listing the problems, unless dev mode waives them (then return them)."""
    if problems and not dev_mode:
        raise IdentityError("refused: " + "; ".join(problems))
    return problems
