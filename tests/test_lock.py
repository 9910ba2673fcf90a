"""The dependency lock: every package from the registry by name, version and sha256, and in step with pyproject.

A lock that points at a file on the machine that wrote it installs there and nowhere else (it happened:
``jira @ file:///tmp/…``). This module fails, naming the file and line, on any direct reference, any line
without a hash, and any direct dependency of ``pyproject.toml`` that the lock does not pin at the same version.

Standard library only, so that ``.ci/run`` runs it (``python3 tests/test_lock.py``) before ``.venv`` exists;
pytest collects the same checks.
"""

from __future__ import annotations

import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "requirements.lock"
PYPROJECT = REPO / "pyproject.toml"
# Other hashed requirement files (installed into their own environments; same rules, no pyproject to match).
OTHER_LOCKS = (REPO / "benchmarks" / "serving" / "requirements-mlflow.txt",)

_NAME_PIN = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[A-Za-z0-9.+!_-]+)(?:\s*;\s*(?P<marker>.+))?$"
)
_HASH = re.compile(r"^--hash=sha256:[0-9a-f]{64}$")
_VIA = re.compile(r"^#\s+(?:via\s+)?(?P<what>\S.*)$")


def canonical(name: str) -> str:
    """PEP 503 name: lower case, runs of ``-_.`` as one ``-``."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Pin:
    """One requirement of a lock: where it starts, what it pins, its hashes and who asked for it."""

    line: int
    name: str
    version: str
    hashes: tuple[str, ...]
    via: tuple[str, ...]


class LockError(ValueError):
    """A lock line that would not install from the registry by name, version and hash."""


def _logical_lines(path: Path) -> list[tuple[int, str, bool]]:
    """(first line number, text, indented) of each requirement or comment, continuation lines joined."""
    raw = path.read_text(encoding="utf-8").splitlines()
    found: list[tuple[int, str, bool]] = []
    i = 0
    while i < len(raw):
        start, text = i + 1, raw[i].strip()
        indented = raw[i].startswith(" ")
        i += 1
        while text.endswith("\\") and i < len(raw):
            text = text[:-1].strip() + " " + raw[i].strip()
            i += 1
        if text:
            found.append((start, text.rstrip("\\").strip(), indented))
    return found


def parse_lock(path: Path) -> list[Pin]:
    """The pins of a hashed requirements file, refusing anything but ``name==version --hash=sha256:…``."""
    problems: list[str] = []
    pins: list[Pin] = []
    via: dict[int, list[str]] = {}
    for start, text, indented in _logical_lines(path):
        where = f"{path.name}:{start}"
        if text.startswith("#"):
            who = _VIA.match(text)
            if pins and indented and who:
                via.setdefault(len(pins) - 1, []).append(who.group("what").strip())
            continue
        if text.startswith("--hash"):
            problems.append(f"{where}: a hash with no requirement before it")
            continue
        head, *options = text.split(" --")
        reason = direct_reference(text)
        if reason:
            problems.append(f"{where}: {reason}: {head.strip()!r}; pin it as name==version from the package "
                            "registry, with its hashes")
            continue
        pin = _NAME_PIN.match(head.strip())
        if pin is None:
            problems.append(f"{where}: {head.strip()!r} is not a name==version pin")
            continue
        bad = ["--" + o.strip() for o in options if not _HASH.match("--" + o.strip())]
        if bad:
            problems.append(f"{where}: unexpected option(s) {', '.join(bad)}")
            continue
        if not options:
            problems.append(f"{where}: {head.strip()!r} has no --hash=sha256:… (installing with --require-hashes "
                            "needs one for every package)")
            continue
        hashes = tuple(o.strip()[len("hash="):] for o in options)
        pins.append(Pin(start, canonical(pin.group("name")), pin.group("version"), hashes, ()))
    if problems:
        raise LockError("\n".join(problems))
    return [Pin(p.line, p.name, p.version, p.hashes, tuple(via.get(i, ()))) for i, p in enumerate(pins)]


def direct_reference(requirement: str) -> str | None:
    """Why ``requirement`` would not come from the registry by name and version, or None."""
    lowered = requirement.lower()
    if lowered.startswith(("-e ", "--editable")):
        return "an editable install"
    if lowered.startswith(("-r ", "--requirement", "-c ", "--constraint")):
        return "an included file"
    if lowered.startswith(("-f ", "--find-links", "-i ", "--index-url", "--extra-index-url", "--trusted-host",
                           "--no-index", "--pre", "--prefer-binary", "--only-binary", "--no-binary")):
        return "an installer option (the Makefile, not the lock, says where packages come from)"
    if re.search(r"\b(git|hg|svn|bzr)\+", lowered):
        return "a version-control URL"
    if "file:" in lowered:
        return "a file: URL (a file on the machine that wrote the lock)"
    if re.search(r"\bhttps?://", lowered):
        return "a direct http(s) URL"
    if re.match(r"^[^\s;]+\s*@", requirement):
        return "a direct reference (name @ …)"
    if requirement.startswith(("/", "./", "../", "~", ".")) or re.match(r"^[A-Za-z]:[\\/]", requirement):
        return "a local path"
    if requirement.split(" ")[0].endswith((".whl", ".tar.gz", ".zip")):
        return "a local archive"
    return None


def direct_dependencies(pyproject: Path) -> dict[str, tuple[str, str]]:
    """Every direct requirement of pyproject.toml (runtime, each extra, build system): name → (version, where)."""
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    groups: list[tuple[str, list[str]]] = [("[project] dependencies", data["project"]["dependencies"])]
    for extra, requirements in data["project"].get("optional-dependencies", {}).items():
        groups.append((f"[project.optional-dependencies] {extra}", requirements))
    groups.append(("[build-system] requires", data["build-system"]["requires"]))
    found: dict[str, tuple[str, str]] = {}
    problems: list[str] = []
    for where, requirements in groups:
        for requirement in requirements:
            reason = direct_reference(requirement)
            match = re.match(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==(?P<version>[^\s;,]+)$",
                             requirement.strip())
            if reason or match is None:
                problems.append(f"pyproject.toml {where}: {requirement!r} must be pinned as name==version"
                                + (f" ({reason})" if reason else ""))
                continue
            name = canonical(match.group("name"))
            if name in found and found[name][0] != match.group("version"):
                problems.append(f"pyproject.toml {where}: {name} pinned at {match.group('version')} here and "
                                f"at {found[name][0]} in {found[name][1]}")
            found.setdefault(name, (match.group("version"), where))
    if problems:
        raise LockError("\n".join(problems))
    return found


def check_in_step(pins: list[Pin], direct: dict[str, tuple[str, str]]) -> list[str]:
    """Problems: a direct dependency pinned zero or several times, or at another version; a package nobody asked for."""
    problems: list[str] = []
    by_name: dict[str, list[Pin]] = {}
    for pin in pins:
        by_name.setdefault(pin.name, []).append(pin)
    for name, (version, where) in sorted(direct.items()):
        locked = by_name.get(name, [])
        if len(locked) != 1:
            problems.append(f"{name}=={version} ({where}) has {len(locked)} pins in requirements.lock, not one"
                            + (f" (lines {', '.join(str(p.line) for p in locked)})" if locked else ""))
        elif locked[0].version != version:
            problems.append(f"requirements.lock:{locked[0].line}: {name}=={locked[0].version}, but pyproject.toml "
                            f"({where}) pins {version}: run `make lock`")
    # Every lock entry must be wanted: a direct dependency, or needed (uv's "# via") by an entry that is.
    wanted = set(direct)
    changed = True
    while changed:
        changed = False
        for pin in pins:
            if pin.name in wanted:
                continue
            if any(canonical(v.split(" ")[0]) in wanted for v in pin.via):
                wanted.add(pin.name)
                changed = True
    for pin in pins:
        if pin.name not in wanted:
            problems.append(f"requirements.lock:{pin.line}: {pin.name}=={pin.version} is not needed by anything "
                            "pyproject.toml declares (via: " + (", ".join(pin.via) or "nothing") + ")")
    return problems


def check_all() -> list[str]:
    """Every problem with the project's locks, one line each (empty: all good)."""
    problems: list[str] = []
    try:
        pins = parse_lock(LOCK)
    except LockError as exc:
        problems.extend(str(exc).splitlines())
        pins = []
    try:
        direct = direct_dependencies(PYPROJECT)
    except LockError as exc:
        problems.extend(str(exc).splitlines())
        direct = {}
    if pins and direct:
        problems.extend(check_in_step(pins, direct))
    for other in OTHER_LOCKS:
        try:
            parse_lock(other)
        except LockError as exc:
            problems.extend(str(exc).splitlines())
    return problems


# ---- pytest -------------------------------------------------------------------------------------------------


def test_lock_installs_from_the_registry_by_name_version_and_hash() -> None:
    problems = check_all()
    assert not problems, "\n".join(problems)


def test_every_lock_entry_carries_sha256_hashes() -> None:
    pins = parse_lock(LOCK)
    assert len(pins) > 100
    assert all(pin.hashes and all(len(h) == len("sha256:") + 64 for h in pin.hashes) for pin in pins)


def _write(tmp: Path, text: str) -> Path:
    path = tmp / "requirements.lock"
    path.write_text(text, encoding="utf-8")
    return path


_GOOD = "six==1.17.0 \\\n    --hash=sha256:" + "a" * 64 + "\n    # via pyproject.toml\n"


def test_a_file_url_is_refused_naming_its_line(tmp_path: Path) -> None:
    bad = _GOOD + "jira @ file:///tmp/jiratmp/jira-3.10.5-py3-none-any.whl#sha256=" + "d" * 64 + "\n"
    try:
        parse_lock(_write(tmp_path, bad))
    except LockError as exc:
        assert "requirements.lock:4: a file: URL" in str(exc) or "requirements.lock:4: a direct reference" in str(exc)
    else:
        raise AssertionError("a file: URL passed")


def test_each_kind_of_direct_reference_is_refused(tmp_path: Path) -> None:
    cases = {
        "pkg @ https://example.org/pkg-1.0.tar.gz": "direct http(s) URL",
        "git+https://github.com/org/pkg@v1#egg=pkg": "version-control URL",
        "-e ./src/pkg": "editable install",
        "/opt/wheels/pkg-1.0-py3-none-any.whl": "local path",
        "./vendor/pkg-1.0.tar.gz": "local path",
        "pkg-1.0-py3-none-any.whl": "local archive",
        "--find-links /opt/wheels": "installer option",
        "--extra-index-url file:///opt/pypi/simple": "installer option",
        "pkg==1.0": "has no --hash",
        "pkg>=1.0 \\\n    --hash=sha256:" + "b" * 64: "not a name==version pin",
        "pkg==1.0 \\\n    --hash=md5:0123": "unexpected option",
    }
    for line, reason in cases.items():
        try:
            parse_lock(_write(tmp_path, _GOOD + line + "\n"))
        except LockError as exc:
            assert "requirements.lock:4:" in str(exc) and reason in str(exc), (line, str(exc))
        else:
            raise AssertionError(f"{line!r} passed")


def test_a_direct_dependency_must_have_exactly_one_pin_at_its_version() -> None:
    pins = [Pin(1, "zenml", "0.98.0", ("sha256:" + "a" * 64,), ("pyproject.toml",)),
            Pin(5, "rich", "14.0.0", ("sha256:" + "b" * 64,), ("pyproject.toml",)),
            Pin(9, "skops", "0.16.0", ("sha256:" + "c" * 64,), ())]
    direct = {"zenml": ("0.98.0", "deps"), "rich": ("15.0.0", "deps"), "typer": ("0.29.2", "deps")}
    problems = "\n".join(check_in_step(pins, direct))
    assert "requirements.lock:5: rich==14.0.0, but pyproject.toml (deps) pins 15.0.0" in problems
    assert "typer==0.29.2 (deps) has 0 pins in requirements.lock" in problems
    assert "requirements.lock:9: skops==0.16.0 is not needed by anything pyproject.toml declares" in problems
    assert "zenml" not in problems


def test_the_installed_environment_is_exactly_the_lock() -> None:
    """What .venv holds (the suite runs in it) is the lock, version for version: nothing extra, nothing missing."""
    import importlib.metadata
    import sysconfig

    locked = {pin.name: pin.version for pin in parse_lock(LOCK)}
    # site-packages only: setuptools puts its vendored copies on sys.path once something imports it
    site_packages = sysconfig.get_paths()["purelib"]
    installed = {
        canonical(d.metadata["Name"]): d.version for d in importlib.metadata.distributions(path=[site_packages])
    }
    installed.pop("credit-scorer", None)
    assert {n: v for n, v in installed.items() if locked.get(n) != v} == {}
    assert sorted(set(locked) - set(installed)) == []


if __name__ == "__main__":
    found = check_all()
    for problem in found:
        print(problem, file=sys.stderr)
    print(f"requirements.lock: {'FAILED' if found else 'ok'} ({LOCK})", file=sys.stderr if found else sys.stdout)
    sys.exit(1 if found else 0)
