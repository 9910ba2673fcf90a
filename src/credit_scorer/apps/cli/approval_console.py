"""``credit-scorer users`` and ``credit-scorer console``: who can sign in, and the approval console itself."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from credit_scorer.apps.cli.common import (
    DevModeOption,
    PeopleOption,
    StoreOption,
    _fail,
    _people_in_force,
    _refused,
    console,
    err_console,
)
from credit_scorer.core.errors import ConfigError, CreditScorerError
from credit_scorer.pipelines.zenml_state import use_project_zenml_state

if TYPE_CHECKING:
    pass


app = typer.Typer()  # merged into the top-level ``credit-scorer`` app by main.py


users_app = typer.Typer(help="Console sign-in: set, list or remove a person's password.", no_args_is_help=True)


UsersOption = Annotated[
    Path | None,
    typer.Option(
        "--users", help="Console credentials file (default: $CREDIT_SCORER_USERS or .credit-scorer/console-users.json)."
    ),
]


@users_app.command("add")
def users_add_command(
    name: Annotated[str, typer.Argument(help="The person's name, as in the people/roles file.")],
    role: Annotated[
        str, typer.Option("--role", help="Role they sign in with: submitter, tester, approver or auditor.")
    ],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin (scripts).")
    ] = False,
    people: PeopleOption = None,
    users_path: UsersOption = None,
    store: StoreOption = None,
) -> None:
    """Set (or replace) a person's console password; the role must be theirs in the store's people registry."""
    import sys

    from credit_scorer.apps.console.users import UserError, add_user, users_file

    if role not in {"submitter", "tester", "approver", "auditor"}:
        raise _fail(f"--role must be submitter, tester, approver or auditor, not {role!r}", 2)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt(f"Password for {name}", hide_input=True, confirmation_prompt=True)
    path = users_file(users_path)
    try:
        add_user(path, _people_in_force(store, people, False).people, name, role, password)  # type: ignore[arg-type]
    except (UserError, CreditScorerError) as exc:
        raise _refused(exc) from None
    console.print(f"{name} can sign in to the console as {role} (argon2id hash in {path})", soft_wrap=True)


@users_app.command("list")
def users_list_command(users_path: UsersOption = None) -> None:
    """List who can sign in to the console and with which role (never the hashes)."""
    from credit_scorer.apps.console.users import load_credentials, users_file

    path = users_file(users_path)
    try:
        credentials = load_credentials(path)
    except ConfigError as exc:
        raise _refused(exc) from None
    if not credentials.users:
        console.print(f"nobody can sign in yet ({path}); add people with `credit-scorer users add NAME --role ROLE`")
        return
    for name, credential in sorted(credentials.users.items()):
        console.print(f"  {name:<24} {credential.role:<10} password set {credential.updated_at}", markup=False)


@users_app.command("remove")
def users_remove_command(
    name: Annotated[str, typer.Argument(help="The person whose console access ends.")],
    users_path: UsersOption = None,
) -> None:
    """Remove a person's console password (their open console sessions end at their next request)."""
    from credit_scorer.apps.console.users import remove_user, users_file

    path = users_file(users_path)
    if not remove_user(path, name):
        raise _fail(f"{name!r} has no console password in {path}", 2)
    console.print(f"{name} can no longer sign in to the console ({path})")


@app.command("console")
def console_command(
    port: Annotated[int, typer.Option("--port", help="TCP port on 127.0.0.1.")] = 8400,
    store: StoreOption = None,
    people: PeopleOption = None,
    users_path: UsersOption = None,
    dev_mode: DevModeOption = False,
) -> None:
    """Serve the approval console on http://127.0.0.1:PORT (sign-off, approve/reject, audit)."""
    use_project_zenml_state()
    import uvicorn

    from credit_scorer.adapters.local_processes import port_is_free
    from credit_scorer.apps.console.app import ConsoleSettings, create_console
    from credit_scorer.apps.console.users import load_credentials, users_file
    from credit_scorer.pipelines.zenml_state import ensure_zenml_store
    from credit_scorer.records.store import store_url

    if not 0 < port < 65536:
        raise _fail(f"--port {port} is not a TCP port (1-65535)", 2)
    if not port_is_free(port):
        raise _fail(f"port {port} on 127.0.0.1 is in use; pick another with --port N", 2)
    from credit_scorer.adapters.factory import check_integrations

    credentials_path = users_file(users_path)
    try:
        check_integrations(store)
        _people_in_force(store, people, dev_mode)
        credentials = load_credentials(credentials_path)
    except CreditScorerError as exc:
        raise _refused(exc) from None
    ensure_zenml_store()
    settings = ConsoleSettings(
        store_url=store_url(store),
        people_file=people,
        users_file=credentials_path,
        log_dir=credentials_path.parent / "logs",
        dev_mode=dev_mode,
    )
    application = create_console(settings)
    console.print(f"approval console at [bold]http://127.0.0.1:{port}[/] (store {settings.store_url}); Ctrl+C stops it")
    if not credentials.users:
        err_console.print(
            f"[yellow]nobody can sign in yet[/]: set passwords with `credit-scorer users add NAME --role ROLE` "
            f"({credentials_path})",
            soft_wrap=True,
        )
    uvicorn.run(application, host="127.0.0.1", port=port, log_level="warning")
