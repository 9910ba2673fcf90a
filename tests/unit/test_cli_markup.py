"""Text people type (names, rationales, paths) is printed verbatim by the CLI, never read as rich markup."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from credit_scorer.apps.cli.main import app


@pytest.mark.parametrize("path", ["/x/[/x]", "/x/[bold green]verified[/]"])
def test_a_path_with_markup_in_an_error_is_printed_as_typed(path: str, tmp_path: Path) -> None:
    """Red team: `audit verify --checkpoint '/x/[/x]'` ended in a MarkupError traceback."""
    result = CliRunner().invoke(app, ["audit", "verify", "--store", str(tmp_path / "s"), "--checkpoint", path])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert path in result.output.replace("\n", "")
