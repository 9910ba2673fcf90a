# Two commands on a fresh machine (Python 3.11 on PATH):
#   make run    train -> evaluate -> fairness -> risk -> checks -> release gate -> live deployment
#   make test   lint, type-check and run the test suite
# Both create or refresh .venv from the pinned requirements.lock first.

# pytest-xdist worker processes for `make test` (TEST_WORKERS=0: the whole suite in one process)
TEST_WORKERS ?= 2
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test lint bench bench-serving clean-state

$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "credit-scorer needs Python 3.11 (set PYTHON=/path/to/python3.11)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

# `make run` approves through the automated channel with the demo people of
# conf/people.yaml (submitter, tester sign-off, approver); override on the command line,
# e.g. `make run APPROVER="Sam Compliance"`. Unset DEPLOY_APPROVAL to see the other channels.
SUBMITTER          ?= Ada Lovelace
TESTER             ?= Quinn Tester
DEPLOY_APPROVAL    ?= y
APPROVER           ?= Jane Doe
APPROVAL_RATIONALE ?= Demo release: all four Model Approval Thresholds pass; risk accepted.

run: $(STAMP)
	SUBMITTER="$(SUBMITTER)" TESTER="$(TESTER)" DEPLOY_APPROVAL="$(DEPLOY_APPROVAL)" \
	APPROVER="$(APPROVER)" APPROVAL_RATIONALE="$(APPROVAL_RATIONALE)" \
	$(BIN)/credit-scorer run

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_pipeline.py

# Scoring service vs `mlflow models serve` vs a bare FastAPI route (needs Debian's wrk; builds
# .venv-mlflow from benchmarks/serving/requirements-mlflow.txt on first use).
bench-serving: $(STAMP)
	$(BIN)/python benchmarks/bench_serving.py

clean-state:
	rm -rf .zenml-state
