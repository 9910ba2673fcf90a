"""Run the scoring service.

    python -m credit_scorer.serving --model PATH --release-id ID --port N --decision-log DIR
        [--activation-ledger FILE --activation-token TOKEN [--activation-timeout SECONDS]]

One uvicorn worker, log level warning. SIGTERM and SIGINT shut the server down gracefully
(in-flight requests finish), then the decision log is synced and its live file renamed to
a sealed segment, and the process exits 0.

Activation (``--activation-ledger FILE --activation-token TOKEN``, both or neither): the
server starts *inactive* — ``/predict`` and ``/predict/batch`` answer 503 ("release <id> is
not active yet: its approval has not been recorded") and log nothing, ``/health`` and
``/model`` say ``"active": false`` — until a complete line of FILE (JSON lines, only ever
appended to; read every 20 ms from where the last read stopped; missing = nothing yet) is a
JSON object with ``"activates": TOKEN``. Then it is active for good. While inactive, the
server reads its stdin: EOF there means the deploying process died, so the server checks
FILE once more and, still inactive, shuts down with exit code 5; once active, EOF on stdin
is ignored (the server outlives its parent). ``--activation-timeout SECONDS`` (default 600,
counted from start-up): still inactive by then, exit code 5 too. Without the two options the
server is active at once.

Exit codes: 0 stopped by a signal, 2 bad arguments (including only one of the two activation
options), model file, reason-code table or token file, 3 the server could not start (e.g.
the port is in use), 4 the decision log could not be synced or sealed, 5 never activated
(stdin closed or the activation timeout passed while inactive).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from credit_scorer.core.settings import API_TOKEN_FILE_ENV, current_settings

if TYPE_CHECKING:
    import uvicorn

EXIT_BAD_MODEL = 2
EXIT_STARTUP_FAILED = 3
EXIT_LOG_FAILED = 4
EXIT_NEVER_ACTIVATED = 5
"""Inactive when stdin reached EOF (the deploying process died) or when the activation timeout passed."""

ACTIVATION_LEDGER_OPTION = "--activation-ledger"
ACTIVATION_TOKEN_OPTION = "--activation-token"
ACTIVATION_TIMEOUT_OPTION = "--activation-timeout"
DEFAULT_ACTIVATION_TIMEOUT = 600.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options of the scoring server."""
    parser = argparse.ArgumentParser(prog="python -m credit_scorer.serving", description=__doc__)
    parser.add_argument("--model", required=True, type=Path, help="model JSON file (TrainedModel.to_bytes())")
    parser.add_argument("--release-id", required=True, help="release this model belongs to")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", required=True, type=int, help="TCP port to listen on")
    parser.add_argument("--decision-log", required=True, type=Path, help="folder of the decision log (Art. 12)")
    parser.add_argument("--reason-codes", type=Path, help="reason-code table (default: conf/reason_codes.yaml)")
    parser.add_argument(
        "--token-file",
        type=Path,
        default=Path(token_file) if (token_file := current_settings().api_token_file) else None,
        help=f"bearer tokens for the predict routes, one per line (default: ${API_TOKEN_FILE_ENV}; none = no auth)",
    )
    parser.add_argument(
        ACTIVATION_LEDGER_OPTION,
        type=Path,
        metavar="FILE",
        help=f'start inactive until a line of this JSON-lines file has "activates": TOKEN '
        f"(needs {ACTIVATION_TOKEN_OPTION})",
    )
    parser.add_argument(
        ACTIVATION_TOKEN_OPTION,
        metavar="TOKEN",
        help=f"the token that activates this server (needs {ACTIVATION_LEDGER_OPTION})",
    )
    parser.add_argument(
        ACTIVATION_TIMEOUT_OPTION,
        type=float,
        metavar="SECONDS",
        help=f"exit {EXIT_NEVER_ACTIVATED} if still inactive this long after start-up "
        f"(default {DEFAULT_ACTIVATION_TIMEOUT:g})",
    )
    args = parser.parse_args(argv)
    if (args.activation_ledger is None) != (args.activation_token is None):
        given, missing = (
            (ACTIVATION_LEDGER_OPTION, ACTIVATION_TOKEN_OPTION)
            if args.activation_token is None
            else (ACTIVATION_TOKEN_OPTION, ACTIVATION_LEDGER_OPTION)
        )
        parser.error(f"{given} needs {missing}: give both activation options or neither")
    if args.activation_token is not None and not args.activation_token.strip():
        parser.error(f"{ACTIVATION_TOKEN_OPTION} is empty")
    if args.activation_timeout is not None:
        if args.activation_ledger is None:
            parser.error(f"{ACTIVATION_TIMEOUT_OPTION} needs {ACTIVATION_LEDGER_OPTION} and {ACTIVATION_TOKEN_OPTION}")
        if not args.activation_timeout > 0:
            parser.error(f"{ACTIVATION_TIMEOUT_OPTION} must be a positive number of seconds")
    else:
        args.activation_timeout = DEFAULT_ACTIVATION_TIMEOUT
    return args


def read_tokens(path: Path | None) -> list[str]:
    """Tokens from a file, one per line (blank lines and # comments ignored); ValueError naming the file."""
    if path is None:
        return []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ValueError(f"token file {path} cannot be read: {exc}") from exc
    tokens = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not tokens:
        raise ValueError(f"token file {path} holds no token; put one token per line")
    short = [t for t in tokens if len(t) < 16]
    if short:
        raise ValueError(f"token file {path}: every token needs at least 16 characters")
    return tokens


class _SignalHandler:
    """SIGTERM/SIGINT outside uvicorn's own handling: exit before serving, stop (idempotently) after."""

    def __init__(self) -> None:
        self.server: uvicorn.Server | None = None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.server is None:
            raise SystemExit(0)  # still loading: nothing to shut down
        # Either the signal uvicorn replays after its graceful shutdown (already stopped), or one
        # that arrived just before uvicorn installed its handlers: both mean "stop serving".
        self.server.should_exit = True


def main(argv: list[str] | None = None) -> int:
    """Load the model, then serve it until SIGTERM/SIGINT; return the exit code."""
    args = parse_args(argv)
    on_signal = _SignalHandler()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    if not 0 < args.port < 65536:
        sys.stderr.write(f"error: --port {args.port} is not a TCP port (1-65535)\n")
        return EXIT_BAD_MODEL

    import uvicorn

    from credit_scorer.core.errors import CreditScorerError
    from credit_scorer.serving.activation import ActivationGate, ActivationWatcher
    from credit_scorer.serving.app import create_app

    gate = ActivationGate(args.activation_ledger, args.activation_token)
    try:
        app = create_app(
            args.model,
            args.release_id,
            decision_log_dir=args.decision_log,
            reason_codes=args.reason_codes,
            api_tokens=read_tokens(args.token_file),
            activation=gate,
        )
    except (CreditScorerError, ValueError, OSError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_BAD_MODEL

    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        workers=1,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    never_activated: list[str] = []
    if not gate.active:

        def give_up(reason: str) -> None:  # the watcher's thread; uvicorn checks should_exit every 0.1 s
            never_activated.append(reason)
            server.should_exit = True

        with contextlib.suppress(OSError):  # the watcher says why it cannot read the ledger
            gate.poll()  # approved already (a restart): active from the first request
        ActivationWatcher(gate, args.activation_timeout, give_up).start()
    gc.collect()
    gc.freeze()  # the model, app and libraries are never garbage: keep the collector from rescanning them
    # uvicorn handles SIGTERM/SIGINT itself while serving (graceful shutdown), then restores the
    # handlers it found and re-raises the signal; ours then sees it and the process exits 0.
    on_signal.server = server
    try:
        server.run()
    except SystemExit:  # uvicorn exits this way when it cannot bind; it has logged why
        if server.started:
            close_decision_log(app)
            raise
    if not close_decision_log(app):
        return EXIT_LOG_FAILED
    if never_activated:
        sys.stderr.write(f"error: release {args.release_id} was never activated: {never_activated[0]}; exiting\n")
        return EXIT_NEVER_ACTIVATED
    if not server.started:
        sys.stderr.write(f"error: the server could not start on {args.host}:{args.port} (see above)\n")
        return EXIT_STARTUP_FAILED
    return 0


def close_decision_log(app: Any) -> bool:
    """Sync the decision log and seal its live file; False (and a message) when it failed."""
    try:
        app.state.decision_log.close()
    except RuntimeError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
