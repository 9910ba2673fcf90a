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
    from credit_scorer.records.store import ComplianceStore


app = typer.Typer()  # merged into the top-level ``credit-scorer`` app by main.py


users_app = typer.Typer(
    help="People's console passwords and signing keys: enrol (add), list or remove.", no_args_is_help=True
)


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
    password_file: Annotated[
        Path | None, typer.Option("--password-file", help="Read the password from this file's first line (0600).")
    ] = None,
    unless_enrolled: Annotated[
        bool,
        typer.Option("--unless-enrolled", help="Change nothing when the password already opens their enrolled key."),
    ] = False,
    people: PeopleOption = None,
    users_path: UsersOption = None,
    store: StoreOption = None,
) -> None:
    """Enrol a person: console password (argon2id) and a signing key sealed by it, its public key ledgered.

    The role must be theirs in the store's people registry. Enrolling again replaces the key: the old one
    is revoked in the ledger, so what it signed before stays valid and nothing can be signed with it after.
    """
    import getpass
    import socket
    import sys

    from credit_scorer.apps.console.users import UserError, add_user, users_file
    from credit_scorer.records import identities
    from credit_scorer.records.store import ComplianceStore

    if role not in {"submitter", "tester", "approver", "auditor"}:
        raise _fail(f"--role must be submitter, tester, approver or auditor, not {role!r}", 2)
    if password_stdin and password_file is not None:
        raise _fail("give --password-stdin or --password-file, not both; nothing was changed", 2)
    try:
        if password_file is not None:
            password = identities.read_password_file(password_file)
        elif password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            password = typer.prompt(f"Password for {name}", hide_input=True, confirmation_prompt=True)
        path = users_file(users_path)
        roles = _people_in_force(store, people, False).people
        compliance = ComplianceStore(store)
        if unless_enrolled and _enrolled(compliance, name, password, path):
            console.print(f"{name} is enrolled already (console password and signing key unchanged)")
            return
        add_user(path, roles, name, role, password)  # type: ignore[arg-type]
        sealed = identities.enrol(compliance, name, password, by=f"{getpass.getuser()}@{socket.gethostname()}")
    except (UserError, CreditScorerError) as exc:
        raise _refused(exc) from None
    console.print(
        f"{name} can sign in to the console as {role} (argon2id hash in {path}) and sign with key {sealed.key_id} "
        f"(sealed in {identities.identities_dir()}; public key in the ledger of {compliance.url})",
        soft_wrap=True,
        markup=False,
    )


def _enrolled(store: ComplianceStore, name: str, password: str, users_path: Path) -> bool:
    """Whether ``password`` is ``name``'s console password and opens the key the store has enrolled for them."""
    from credit_scorer.apps.console.users import load_credentials
    from credit_scorer.records import identities
    from credit_scorer.records.people import IdentityError

    if name not in load_credentials(users_path).users:
        return False
    try:
        identities.unlock(store, name, password)
    except IdentityError:
        return False
    return True


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
    name: Annotated[str, typer.Argument(help="The person whose console access and signing key end.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded with the key's revocation).")] = "removed",
    users_path: UsersOption = None,
    store: StoreOption = None,
) -> None:
    """Remove a person's console password and revoke their signing key (ledgered); open sessions end at once."""
    import getpass
    import socket

    from credit_scorer.apps.console.users import remove_user, users_file
    from credit_scorer.records import identities
    from credit_scorer.records.people import IdentityError
    from credit_scorer.records.store import ComplianceStore

    path = users_file(users_path)
    removed = remove_user(path, name)
    try:
        key_id = identities.revoke(ComplianceStore(store), name, by=f"{getpass.getuser()}@{socket.gethostname()}",
                                   reason=reason)  # fmt: skip
    except IdentityError:
        key_id = None
    if not removed and key_id is None:
        raise _fail(f"{name!r} has no console password in {path} and no signing key in the ledger", 2)
    console.print(f"{name} can no longer sign in to the console ({path})", markup=False)
    if key_id:
        console.print(f"{name}'s signing key {key_id} is revoked in the ledger: nothing signed with it after now "
                      "verifies", markup=False)  # fmt: skip


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
