"""Entry points people use: the CLI and the approval console. They parse, call a service, present."""
