"""A local receiver speaking Slack's incoming-webhook and Web API (chat.postMessage) protocols, for the tests.

Records every message; ``failures`` makes it answer the next requests with those HTTP statuses.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

HOOK_PATH = "/services/T000/B000/XXXXsecretXXXX"
BOT_TOKEN = "xoxb-1234-secret-token"


@dataclass
class Receiver:
    """Records webhook posts and chat.postMessage calls; ``failures`` answers the next N with that status."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    failures: list[int] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                if receiver.failures:
                    status = receiver.failures.pop(0)
                    self._reply(status, "text/plain", "internal_error" if status >= 500 else "no_service")
                    return
                if self.path == HOOK_PATH:
                    receiver.messages.append({"via": "webhook", **json.loads(raw)})
                    self._reply(200, "text/plain", "ok")
                elif self.path == "/api/chat.postMessage":
                    if self.headers.get("Authorization") != f"Bearer {BOT_TOKEN}":
                        self._reply(200, "application/json", json.dumps({"ok": False, "error": "invalid_auth"}))
                        return
                    body = json.loads(raw) if raw.startswith("{") else {k: v[0] for k, v in parse_qs(raw).items()}
                    receiver.messages.append({"via": "api", **body})
                    self._reply(200, "application/json", json.dumps({"ok": True, "ts": "1.0"}))
                else:
                    self._reply(404, "text/plain", "no_service")

            def _reply(self, status: int, kind: str, body: str) -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
