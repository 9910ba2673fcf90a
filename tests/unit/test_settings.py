"""One settings object: every ``CREDIT_SCORER_*`` variable is named in ``core/settings.py`` and read only there."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from credit_scorer.core import settings
from credit_scorer.core.settings import PREFIX, Settings, current_settings

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "credit_scorer"
SETTINGS_MODULE = SRC / "core" / "settings.py"
OS_ENV_CALLS = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}


def _environment_reads(path: Path, root: Path = ROOT) -> list[str]:
    """``os.environ`` / ``os.getenv`` … uses and ``from os import environ`` in one source file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in OS_ENV_CALLS
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
        ):
            found.append(f"{path.relative_to(root)}:{node.lineno}: os.{node.attr}")
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            found += [
                f"{path.relative_to(root)}:{node.lineno}: from os import {alias.name}"
                for alias in node.names
                if alias.name in OS_ENV_CALLS
            ]
    return found


def test_no_module_but_core_settings_reads_the_environment() -> None:
    reads = [hit for path in sorted(SRC.rglob("*.py")) if path != SETTINGS_MODULE for hit in _environment_reads(path)]
    assert reads == [], "read the environment through credit_scorer.core.settings:\n" + "\n".join(reads)


def test_the_check_catches_a_read(tmp_path: Path) -> None:
    planted = tmp_path / "planted.py"
    planted.write_text("import os\nfrom os import getenv\nvalue = os.environ.get('X')\n")
    assert _environment_reads(planted, tmp_path) == ["planted.py:2: from os import getenv", "planted.py:3: os.environ"]


def test_every_variable_name_is_spelled_only_in_core_settings() -> None:
    spelled = []
    for path in sorted(SRC.rglob("*.py")):
        if path == SETTINGS_MODULE:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and re.fullmatch(r"CREDIT_SCORER_[A-Z_]+", node.value)
            ):
                spelled.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value}")
    assert spelled == [], "import the name from credit_scorer.core.settings:\n" + "\n".join(spelled)


def test_every_named_variable_is_a_settings_field_and_back() -> None:
    named = {value for name, value in vars(settings).items() if name.endswith("_ENV") and isinstance(value, str)}
    fields = {PREFIX + field.upper() for field in Settings.model_fields}
    assert named == fields


def test_the_readme_configuration_table_lists_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `(CREDIT_SCORER_[A-Z_]+)` \|", section, flags=re.M))
    assert listed == {PREFIX + field.upper() for field in Settings.model_fields}


def test_settings_follow_the_environment_and_a_given_mapping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDIT_SCORER_STORE", "/tmp/elsewhere")
    monkeypatch.setenv("CREDIT_SCORER_DEPLOYER", "modal")
    assert current_settings().store == "/tmp/elsewhere"
    assert current_settings().deployer == "modal"
    given = Settings.from_env({"credit_scorer_store": "s3://bucket/records", "UNRELATED": "x"})
    assert given.store == "s3://bucket/records"
    assert given.deployer == ""  # a given mapping is the whole environment: the process's is not consulted


def test_temporarily_restores_what_was_there(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "7")
    with settings.temporarily("SOURCE_DATE_EPOCH", "99"):
        assert settings.environ()["SOURCE_DATE_EPOCH"] == "99"
    assert settings.environ()["SOURCE_DATE_EPOCH"] == "7"
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    with settings.temporarily("SOURCE_DATE_EPOCH", "99"):
        pass
    assert "SOURCE_DATE_EPOCH" not in settings.environ()
