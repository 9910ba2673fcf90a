# Two commands on a fresh machine (Python 3.11 on PATH):
#   make run    train -> evaluate -> fairness -> risk -> checks -> release gate -> live deployment
#   make test   lint, type-check and run the test suite
# Both create or refresh .venv from the pinned requirements.lock first.

# pytest-xdist worker processes for `make test` (TEST_WORKERS=0: the whole suite in one process)
TEST_WORKERS ?= 2
PYTHON ?= $(shell command -v python3.11 || command -v python3)
# The package registry every dependency comes from, by name, version and sha256 (requirements.lock).
# A mirror of it works too: the hashes decide what is accepted.
INDEX_URL ?= https://pypi.org/simple
# Let Python cache compiled modules (.pyc) in .venv and src/. Some machines (this kind among them) export
# PYTHONDONTWRITEBYTECODE=1, and then every command compiles ZenML, pandas, scikit-learn, … from source again:
# measured +14 s on every `make run`, and the same in each of the test suite's subprocesses.
unexport PYTHONDONTWRITEBYTECODE

VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
UV     := $(BIN)/uv
# uv's version is the one pinned (with its hashes) in requirements.lock.
UV_VERSION := $(shell sed -n 's/^uv==\([^ ]*\).*/\1/p' requirements.lock)

.PHONY: run test lint lock bench bench-serving clean-state

# .venv from requirements.lock only: uv is taken from the registry by the lock's own hashed `uv==` entry
# (pip --isolated: no site-wide find-links, mirror or cache of this machine), then `uv pip sync
# --require-hashes --no-build` installs exactly the lock's wheels and removes anything else.
$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "credit-scorer needs Python 3.11 (set PYTHON=/path/to/python3.11)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv --without-pip $(VENV)
	@if [ "$$($(UV) --version 2>/dev/null)" != "uv $(UV_VERSION)" ]; then \
	  sed -n '/^uv==/,/# via/p' requirements.lock > $(VENV)/uv-requirement.txt && \
	  $(PYTHON) -m pip --isolated --python $(BIN)/python install --quiet --disable-pip-version-check \
	    --no-cache-dir --require-hashes --no-deps --index-url $(INDEX_URL) -r $(VENV)/uv-requirement.txt; \
	fi
	$(UV) pip sync --quiet --python $(BIN)/python --require-hashes --no-build --index-url $(INDEX_URL) requirements.lock
	$(UV) pip install --quiet --python $(BIN)/python --no-deps --no-build-isolation --no-index -e .
	$(BIN)/python scripts/compile_bytecode.py
	@touch $(STAMP)

# Regenerate requirements.lock after changing a pin in pyproject.toml: resolves the whole tree (every extra,
# and the build backend of [build-system]) from the registry, with the sha256 of every file of each version.
lock: $(STAMP)
	$(BIN)/python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]))' \
	| $(UV) pip compile pyproject.toml - --all-extras --generate-hashes --python-version 3.11 \
	    --python-platform x86_64-manylinux_2_28 --index-url $(INDEX_URL) --custom-compile-command "make lock" --quiet \
	    --output-file requirements.lock
	$(BIN)/python tests/test_lock.py

# `make run` approves through the automated channel with the demo people of
# conf/people.yaml (submitter, tester sign-off, approver); override on the command line,
# e.g. `make run APPROVER="Sam Compliance"`. Unset DEPLOY_APPROVAL to see the other channels.
SUBMITTER          ?= Ada Lovelace
TESTER             ?= Quinn Tester
DEPLOY_APPROVAL    ?= y
APPROVER           ?= Jane Doe
APPROVAL_RATIONALE ?= Demo release: all four Model Approval Thresholds pass; risk accepted.

# The demo tester and approver sign with their own keys: each is enrolled once (console password and a
# signing key sealed by it; conf/demo-passwords/, copied private), and the automated channel unlocks
# their keys from the password files, as a CI job would from its secrets.
DEMO_SECRETS := .credit-scorer/demo-passwords
slug = $(shell echo "$(1)" | tr 'A-Z ' 'a-z-')
TESTER_PASSWORD_FILE   ?= $(DEMO_SECRETS)/$(call slug,$(TESTER)).txt
APPROVER_PASSWORD_FILE ?= $(DEMO_SECRETS)/$(call slug,$(APPROVER)).txt

run: $(STAMP)
	@install -d -m 700 $(DEMO_SECRETS) && install -m 600 conf/demo-passwords/*.txt $(DEMO_SECRETS)/
	$(BIN)/credit-scorer users add "$(TESTER)" --role tester --password-file "$(TESTER_PASSWORD_FILE)" --unless-enrolled
	$(BIN)/credit-scorer users add "$(APPROVER)" --role approver --password-file "$(APPROVER_PASSWORD_FILE)" --unless-enrolled
	SUBMITTER="$(SUBMITTER)" TESTER="$(TESTER)" DEPLOY_APPROVAL="$(DEPLOY_APPROVAL)" \
	APPROVER="$(APPROVER)" APPROVAL_RATIONALE="$(APPROVAL_RATIONALE)" \
	TESTER_PASSWORD_FILE="$(TESTER_PASSWORD_FILE)" APPROVER_PASSWORD_FILE="$(APPROVER_PASSWORD_FILE)" \
	$(BIN)/credit-scorer run

test: $(STAMP)
	$(BIN)/python tests/test_lock.py
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_pipeline.py

# Scoring service vs `mlflow models serve` vs a bare FastAPI route (needs Debian's wrk; builds
# .venv-mlflow from benchmarks/serving/requirements-mlflow.txt on first use).
bench-serving: $(STAMP)
	$(BIN)/python benchmarks/bench_serving.py

clean-state:
	rm -rf .zenml-state
