"""Shared by every layer: constants, the error family, ports (interfaces), fault injection. Imports nothing of ours."""
