"""The approval console (FastAPI + Jinja2) for testers, approvers and auditors."""
