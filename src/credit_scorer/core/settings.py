"""Every ``CREDIT_SCORER_*`` environment variable, named once.

Modules import these names instead of spelling the strings; the README's configuration table lists
the same names.
"""

from __future__ import annotations

from typing import Final

STORE_ENV: Final = "CREDIT_SCORER_STORE"
PEOPLE_ENV: Final = "CREDIT_SCORER_PEOPLE"
USERS_ENV: Final = "CREDIT_SCORER_USERS"
KEY_ENV: Final = "CREDIT_SCORER_KEY"
TRUST_ENV: Final = "CREDIT_SCORER_LEDGER_TRUST"
CRASH_ENV: Final = "CREDIT_SCORER_CRASH_AT"
FACTS_ENV: Final = "CREDIT_SCORER_ANNEX_FACTS"
REASON_CODES_ENV: Final = "CREDIT_SCORER_REASON_CODES"
API_TOKEN_FILE_ENV: Final = "CREDIT_SCORER_API_TOKEN_FILE"
API_TOKENS_ENV: Final = "CREDIT_SCORER_API_TOKENS"
DEPLOYER_ENV: Final = "CREDIT_SCORER_DEPLOYER"
