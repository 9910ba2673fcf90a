"""Either/or options are separate flags that refuse each other: no command takes the last of two contradicting flags."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from credit_scorer.apps.cli.main import app

RUN_ID = "0000abcd-1111-2222-3333-444455556666"


def _options(command: Any, path: str = "credit-scorer") -> list[tuple[str, Any]]:
    """Every option of every command (Typer's own click: walked by attribute, not by class)."""
    found = [(path, p) for p in command.params if getattr(p, "opts", None) and hasattr(p, "secondary_opts")]
    for name, sub in getattr(command, "commands", {}).items():
        found += _options(sub, f"{path} {name}")
    return found


def test_no_command_has_an_on_off_flag_pair_where_the_last_one_wins() -> None:
    """Red team: `approve RUN --approve --reject` recorded a rejection (the last flag of --approve/--reject won)."""
    options = _options(typer.main.get_command(app))
    assert len(options) > 50  # the walk reached every command
    pairs = [f"{where}: {'/'.join(o.opts + o.secondary_opts)}" for where, o in options if o.secondary_opts]
    assert pairs == []


def test_the_walk_sees_an_on_off_pair() -> None:
    demo = typer.Typer()

    @demo.command()
    def decide(yes: bool = typer.Option(False, "--approve/--reject")) -> None: ...

    @demo.command()
    def other() -> None: ...

    assert [(w, o.secondary_opts) for w, o in _options(typer.main.get_command(demo)) if o.secondary_opts] == [
        ("credit-scorer decide", ["--reject"])
    ]


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--approve", "--reject"], "not both"),
        ([], "say which"),
        (["--reject", "--override"], "--override goes with --approve"),
    ],
)
def test_approve_refuses_contradicting_or_missing_flags_before_anything_is_read_or_written(
    flags: list[str], says: str, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    args = ["approve", RUN_ID, *flags, "--rationale", "x", "--as", "Jane Doe", "--store", str(store)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert says in result.output and "nothing was recorded" in result.output
    assert not store.exists()
