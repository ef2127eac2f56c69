"""Alert receivers on loopback for tests: a Slack-like incoming webhook and an SMTP server (aiosmtpd).

Both record what they accepted, can refuse (HTTP 500 / SMTP 451) and can be stopped and started again
on the same port, to play a destination that is down for a while.
"""

from __future__ import annotations

import json
import socket
import threading
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class WebhookReceiver:
    """Accepts POSTs of ``{"text": ...}`` at ``path``; ``texts`` lists what it accepted (status 200).

    ``status = 500`` makes it refuse (recorded in ``refused``); ``stop()`` closes the port (connection
    refused), ``start()`` opens it again.
    """

    def __init__(self, path: str = "/services/T0/B0/hook") -> None:
        self.path = path
        self.port = free_port()
        self.status = 200
        self.texts: list[str] = []
        self.refused = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    if self.path != receiver.path:
                        status = 404
                    elif receiver.status != 200:
                        status = receiver.status
                        receiver.refused += 1
                    else:
                        status = 200
                        receiver.texts.append(json.loads(body)["text"])
                answer = b"ok" if status == 200 else b"no"
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True, name="webhook-receiver").start()
        self._server = server
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Mailbox:
    def __init__(self, receiver: SmtpReceiver) -> None:
        self.receiver = receiver

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.receiver.refuse:
            return "451 Requested action aborted: try again later"
        message = message_from_bytes(envelope.content, policy=policy.default)
        with self.receiver._lock:
            self.receiver.messages.append(message)
        return "250 OK"


class SmtpReceiver:
    """An SMTP server on loopback; ``messages`` lists the e-mails it accepted.

    With ``user``/``password`` it requires AUTH (over plain TCP: loopback only, no TLS in tests).
    ``refuse = True`` answers 451 to every message; ``stop()``/``start()`` close and reopen the port.
    """

    def __init__(self, user: str | None = None, password: str | None = None) -> None:
        self.user, self.password = user, password
        self.port = free_port()
        self.refuse = False
        self.messages: list[EmailMessage] = []
        self.logins: list[str] = []
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == self.user
              and auth_data.password.decode() == self.password)
        if ok:
            self.logins.append(self.user)
        return AuthResult(success=ok, handled=False)

    def start(self) -> SmtpReceiver:
        options: dict[str, Any] = {}
        if self.user:
            options = {"authenticator": self._authenticate, "auth_required": True, "auth_require_tls": False}
        self._controller = Controller(_Mailbox(self), hostname="127.0.0.1", port=self.port, **options)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
