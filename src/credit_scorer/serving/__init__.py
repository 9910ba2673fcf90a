

TOKEN_FILE_ENV = "CREDIT_SCORER_API_TOKEN_FILE"
"""File of bearer tokens (one per line) that the predict routes require; unset = no auth."""
