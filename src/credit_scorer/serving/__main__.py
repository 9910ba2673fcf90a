"""Run the scoring endpoint: ``python -m credit_scorer.serving --model PATH --release-id ID --port N``.

One uvicorn worker, log level warning. SIGTERM and SIGINT shut the server down gracefully
(in-flight requests finish) and the process exits 0. Exit codes: 0 stopped by a signal,
2 bad arguments or model file, 3 the server could not start (e.g. the port is in use).
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import uvicorn

EXIT_BAD_MODEL = 2
EXIT_STARTUP_FAILED = 3


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options of the scoring server."""
    parser = argparse.ArgumentParser(prog="python -m credit_scorer.serving", description=__doc__)
    parser.add_argument("--model", required=True, type=Path, help="model JSON file (TrainedModel.to_bytes())")
    parser.add_argument("--release-id", required=True, help="release this model belongs to")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", required=True, type=int, help="TCP port to listen on")
    return parser.parse_args(argv)


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

    from credit_scorer.serving.app import ModelLoadError, create_app

    try:
        app = create_app(args.model, args.release_id)
    except (ModelLoadError, ValueError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_BAD_MODEL

    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        workers=1,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    # uvicorn handles SIGTERM/SIGINT itself while serving (graceful shutdown), then restores the
    # handlers it found and re-raises the signal; ours then sees it and the process exits 0.
    on_signal.server = server
    try:
        server.run()
    except SystemExit:  # uvicorn exits this way when it cannot bind; it has logged why
        if server.started:
            raise
    if not server.started:
        sys.stderr.write(f"error: the server could not start on {args.host}:{args.port} (see above)\n")
        return EXIT_STARTUP_FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())
