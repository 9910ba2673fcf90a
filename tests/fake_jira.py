"""A local Jira REST API v2 server for the tests: the endpoints the Jira tracker uses, with Jira's payload shapes.

Issues live in memory; every request is recorded (method, path, auth user, JSON body) so
tests can assert what was sent. Basic auth with a known user and API token is required,
as Jira Cloud does; a wrong token gets 401.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TRANSITIONS = [{"id": "11", "name": "Rejected"}, {"id": "21", "name": "Deployed"}, {"id": "31", "name": "Rolled back"}]


@dataclass
class FakeJira:
    """State of the fake Jira: users (name -> (token, display name)), issues, recorded calls."""

    users: dict[str, tuple[str, str]]
    issues: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, str, str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeJira:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _user(self) -> str | None:
                header = self.headers.get("Authorization", "")
                if not header.startswith("Basic "):
                    return None
                name, _, token = base64.b64decode(header[6:]).decode().partition(":")
                known = fake.users.get(name)
                return name if known and known[0] == token else None

            def _send(self, status: int, payload: Any = None) -> None:
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                user = self._user()
                path = self.path.split("?", 1)[0]
                with fake.lock:
                    fake.calls.append((method, path, user or "", body))
                if user is None:
                    self._send(401, {"errorMessages": ["Client must be authenticated to access this resource."]})
                    return
                status, payload = fake.route(method, path, body, user, self.server.server_address[1])
                self._send(status, payload)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_PUT(self) -> None:
                self._handle("PUT")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    # -- the REST API ------------------------------------------------------------------
    def _issue_json(self, key: str, port: int) -> dict[str, Any]:
        issue = self.issues[key]
        return {
            "id": issue["id"],
            "key": key,
            "self": f"http://127.0.0.1:{port}/rest/api/2/issue/{issue['id']}",
            "fields": {
                "summary": issue["summary"],
                "description": issue["description"],
                "labels": list(issue["labels"]),
                "status": {"name": issue["status"]},
                "project": {"key": issue["project"]},
                "issuetype": {"name": issue["issuetype"]},
            },
        }

    def add_comment(self, key: str, user: str, text: str) -> dict[str, Any]:
        """A comment as Jira stores it (also used by tests to type a comment "in Jira")."""
        issue = self.issues[key]
        comment = {
            "id": str(10000 + len(issue["comments"])),
            "body": text,
            "author": {"name": user, "displayName": self.users[user][1]},
            "created": f"2026-11-27T12:{len(issue['comments']):02d}:00.000+0000",
        }
        issue["comments"].append(comment)
        return comment

    def route(self, method: str, path: str, body: Any, user: str, port: int) -> tuple[int, Any]:
        with self.lock:
            if method == "POST" and path == "/rest/api/2/issue":
                fields = body["fields"]
                if not fields.get("summary") or "key" not in fields.get("project", {}):
                    return 400, {"errors": {"summary": "You must specify a summary of the issue."}}
                n = len(self.issues) + 1
                key = f"{fields['project']['key']}-{n}"
                self.issues[key] = {
                    "id": str(10000 + n),
                    "summary": fields["summary"],
                    "description": fields.get("description", ""),
                    "labels": list(fields.get("labels", [])),
                    "status": "Open",
                    "project": fields["project"]["key"],
                    "issuetype": fields["issuetype"]["name"],
                    "comments": [],
                }
                return 201, {"id": self.issues[key]["id"], "key": key, "self": f"http://127.0.0.1:{port}/x"}
            found = re.fullmatch(r"/rest/api/2/issue/([A-Z]+-\d+|\d+)(/comment|/transitions)?", path)
            by_id = {issue["id"]: key for key, issue in self.issues.items()}
            key = by_id.get(found.group(1), found.group(1)) if found else ""
            if not found or key not in self.issues:
                return 404, {"errorMessages": ["Issue does not exist or you do not have permission to see it."]}
            sub = found.group(2)
            issue = self.issues[key]
            if sub is None and method == "GET":
                return 200, self._issue_json(key, port)
            if sub is None and method == "PUT":
                for name, value in body.get("fields", {}).items():
                    if name == "labels":
                        bad = [label for label in value if " " in label]
                        if bad:
                            message = f"The label '{bad[0]}' contains spaces which is invalid."
                            return 400, {"errors": {"labels": message}}
                        issue["labels"] = list(value)
                return 204, None
            if sub == "/comment" and method == "POST":
                return 201, self.add_comment(key, user, body["body"])
            if sub == "/comment" and method == "GET":
                n = len(issue["comments"])
                return 200, {"startAt": 0, "maxResults": n, "total": n, "comments": issue["comments"]}
            if sub == "/transitions" and method == "GET":
                return 200, {"transitions": TRANSITIONS}
            if sub == "/transitions" and method == "POST":
                names = {t["id"]: t["name"] for t in TRANSITIONS}
                issue["status"] = names[str(body["transition"]["id"])]
                return 204, None
            return 405, {"errorMessages": [f"{method} not allowed"]}
