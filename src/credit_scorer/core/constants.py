"""Defaults and policy values, in one place.

Everything a compliance officer may want to look up (thresholds, group sizes,
risk cut-offs) is defined here and can be overridden from a YAML file given to
``credit-scorer run --thresholds FILE``. The values actually used are copied
into every run's metadata and checks, so a record never depends on this file.
"""

from __future__ import annotations

from typing import Final

# ---------------------------------------------------------------------------
# Model Approval Thresholds (SOP §2)
# Fixed before results are seen (EU AI Act Art. 9(8)); adjust to business needs
# through a thresholds file, never after looking at a run's numbers.
# ---------------------------------------------------------------------------
ACCURACY_MIN: Final = 0.80
"""Accuracy on the test split must be at least this."""

BIAS_DISPARITY_MAX: Final = 0.20
"""Largest demographic-parity difference over all protected attributes."""

RISK_SCORE_MAX: Final = 0.40
"""Overall risk score from the risk register must be at most this."""

FAIRNESS_FLAGS_MAX: Final = 0
"""Number of fairness flags allowed (the SOP says: none)."""

# ---------------------------------------------------------------------------
# Fairness policy (what raises a fairness flag)
# ---------------------------------------------------------------------------
MIN_GROUP_SIZE: Final = 100
# The smallest test split the gate accepts (issue 16): with 1,000 rows an accuracy near 0.8 is known to about
# ±0.025 (95 %), and with 100 defaulters and 100 repayers the AUC's standard error is at most about 0.04
# (Hanley & McNeil 1982); below that, the four checks would be measured on noise.
MIN_TEST_ROWS: Final = 1000
# Checks the SOP's four cannot see (issue 16): a model must beat the majority-class baseline (balanced accuracy
# and AUC 0.5) by a margin, and must neither approve nor decline (almost) everyone. On the bundled data the
# default model scores balanced accuracy 0.65, AUC 0.78 and approves 89 %; one trained on shuffled labels
# scores 0.50, 0.48 and approves 100 %.
BALANCED_ACCURACY_MIN: Final = 0.55
AUC_MIN: Final = 0.60
APPROVAL_RATE_MIN: Final = 0.10
APPROVAL_RATE_MAX: Final = 0.97
MIN_TEST_PER_OUTCOME: Final = 100
"""Groups with fewer test rows are reported as "insufficient sample", not compared."""

DISPARATE_IMPACT_MIN: Final = 0.80
"""Four-fifths rule: min/max approval rate below this raises a flag."""

EQUAL_OPPORTUNITY_GAP_MAX: Final = 0.10
"""Largest gap in approval rate among good payers (true-positive rate) before a flag."""

# ---------------------------------------------------------------------------
# Training defaults
# ---------------------------------------------------------------------------
RANDOM_SEED: Final = 42
TEST_FRACTION: Final = 0.20
VALIDATION_FRACTION: Final = 0.20
COST_RATIO: Final = 1.0
"""Cost of approving an applicant who defaults, relative to declining one who repays."""

# ---------------------------------------------------------------------------
# Where things live
# ---------------------------------------------------------------------------
DEFAULT_DATASET_SPEC: Final = "taiwan_credit.yaml"
"""Bundled dataset spec (in ``credit_scorer/resources``)."""

DEFAULT_RISK_REGISTER: Final = "risk_register.yaml"
"""Bundled risk register (in ``credit_scorer/resources``)."""

ZENML_STATE_DIR: Final = ".zenml-state"
"""Project-local ZenML state, relative to the working directory, unless ZENML_CONFIG_PATH is set."""

PIPELINE_NAME: Final = "training_pipeline"
