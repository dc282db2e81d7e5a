"""The HTTP side: routes, auth, fault plans, request log, SSE over chunked transfer encoding."""

from __future__ import annotations

import base64
import binascii
import contextlib
import ipaddress
import json
import re
import socket
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote

from . import _payloads as P
from ._model import generate
from ._validate import RequestError, check_semantics, validate

FAULT_PARAMS: dict[str, frozenset[str]] = {
    "status": frozenset({"status", "retry_after", "retry_after_ms", "retry_after_date", "message"}),
    "slow_first_byte": frozenset({"delay"}),
    "drop": frozenset({"after_chunks"}),
    "malformed": frozenset({"after_chunks", "variant"}),
    "stream_error": frozenset({"after_chunks", "message"}),
    "stall": frozenset({"after_chunks", "delay"}),
    "wrong_content_type": frozenset(),
    "reject_token": frozenset({"token"}),
}
# Kinds a GET /v1/models request consumes; stream-shaped faults wait for a chat request.
_MODELS_KINDS = frozenset(
    {"status", "slow_first_byte", "drop", "wrong_content_type", "reject_token"}
)
_CHAT_KINDS = frozenset(FAULT_PARAMS)

_VERTEX_RE = re.compile(
    r"^/v1/projects/(?P<project>[^/]+)/locations/(?P<region>[^/]+)/publishers/(?P<publisher>[^/]+)"
    r"/models/(?P<model>[^/:]+):(?P<method>rawPredict|streamRawPredict)$"
)
_MAX_LOG = 10_000


@dataclass
class FaultPlan:
    """One injected fault: ``kind`` with its params, applied to the next ``remaining`` requests."""

    kind: str
    params: dict[str, Any]
    remaining: int = 1

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "times": self.remaining, **self.params}


_GRANT_REFRESH = "refresh_token"
_GRANT_JWT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@dataclass
class _State:
    token_delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    faults: deque[FaultPlan] = field(default_factory=deque)
    log: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=_MAX_LOG))
    # OAuth token endpoint (POST /token): answers so far, pause before answering, lifetime
    oauth_log: list[dict[str, Any]] = field(default_factory=list)
    oauth_issued: int = 0
    oauth_delay: float = 0.0
    oauth_expires_in: int = 3600
    accepted: int = 0  # TCP connections accepted (keep-alive checks)

    def inject(self, kind: str, times: int = 1, **params: Any) -> None:
        if kind not in FAULT_PARAMS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(FAULT_PARAMS)}")
        unknown = set(params) - FAULT_PARAMS[kind]
        if unknown:
            raise ValueError(f"unknown params for fault {kind!r}: {sorted(unknown)}")
        if not isinstance(times, int) or isinstance(times, bool) or times < 1:
            raise ValueError("times must be an integer >= 1")
        if kind == "malformed" and params.get("variant", "bad_json") not in (
            "bad_json",
            "bad_line",
        ):
            raise ValueError("malformed variant must be 'bad_json' or 'bad_line'")
        if kind == "reject_token" and not isinstance(params.get("token"), str):
            raise ValueError("reject_token needs token=<str>")
        with self.lock:
            self.faults.append(FaultPlan(kind, dict(params), times))

    def take(self, kinds: frozenset[str]) -> FaultPlan | None:
        """Pop one use of the head plan if this kind of request can carry it (FIFO)."""
        with self.lock:
            if not self.faults or self.faults[0].kind not in kinds:
                return None
            plan = self.faults[0]
            plan.remaining -= 1
            if plan.remaining <= 0:
                self.faults.popleft()
            return FaultPlan(plan.kind, dict(plan.params), 1)

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def record(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.log.append(entry)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # 100 concurrent streams connect at once

    def __init__(self, address: tuple[str, int], state: _State) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)
        self.state = state
        self.connections: set[socket.socket] = set()
        self.conn_lock = threading.Lock()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up mid-response are normal here; stay quiet about them."""
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        with self.conn_lock:
            conns = list(self.connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "MistralEmulator/1.0"
    sys_version = ""
    disable_nagle_algorithm = True  # small SSE writes must leave at once
    server: _Server

    # ---- plumbing ------------------------------------------------------------------------------

    def setup(self) -> None:
        super().setup()
        with self.server.conn_lock:
            self.server.connections.add(self.connection)
        with self.server.state.lock:
            self.server.state.accepted += 1

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.conn_lock:
                self.server.connections.discard(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """No access log: the emulator must stay silent."""

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(parts)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(
        self,
        status: int,
        body: Any,
        *,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
        rid: str | None = None,
    ) -> None:
        data = body if isinstance(body, bytes) else P.dumps(body)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", rid or uuid.uuid4().hex)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _hang_up(self) -> None:
        """Cut the TCP connection without finishing the response."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _bearer(self) -> str | None:
        value = self.headers.get("Authorization", "")
        scheme, _, token = value.partition(" ")
        token = token.strip()
        return token if scheme.lower() == "bearer" and token else None

    # ---- routing -------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        raw = self._read_body()
        path = self.path.split("?", 1)[0]
        if path.startswith("/_emulator/"):
            self._control(path, raw)
            return
        if path == "/token":
            self._oauth_token(raw)
            return
        try:
            parsed: Any = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        self.server.state.record(
            {
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": parsed,
            }
        )
        match = _VERTEX_RE.match(path)
        if match:
            stream = match["method"] == "streamRawPredict"
            if self.command != "POST":
                self._send(405, P.google_error(405, "Method not allowed.", wrap=stream))
                return
            self._chat(raw, vertex=True, stream_path=stream, route=match.groupdict())
        elif path == "/v1/chat/completions":
            if self.command != "POST":
                self._send(405, {"detail": "Method Not Allowed"})
                return
            self._chat(raw, vertex=False, stream_path=False, route={})
        elif path == "/v1/models":
            if self.command != "GET":
                self._send(405, {"detail": "Method Not Allowed"})
                return
            self._models()
        elif path.startswith("/v1/projects/"):
            self._send(404, P.google_error(404, "The requested URL was not found on this server."))
        else:
            self._send(404, {"detail": "Not Found"})

    def _error(self, status: int, *, vertex: bool, wrap: bool, message: str | None = None,
               headers: dict[str, str] | None = None) -> None:  # fmt: skip
        if vertex and status != 422:
            self._send(status, P.google_error(status, message, wrap=wrap), headers=headers)
        else:
            self._send(status, P.mistral_error(status, message), headers=headers)

    def _status_fault(self, plan: FaultPlan, *, vertex: bool, wrap: bool) -> None:
        params = plan.params
        status = int(params.get("status", 503))
        headers: dict[str, str] = {}
        retry_after = params.get("retry_after")
        if params.get("retry_after_date"):
            seconds = float(retry_after if retry_after is not None else 1)
            headers["Retry-After"] = formatdate(time.time() + seconds, usegmt=True)
        elif retry_after is not None:
            value = float(retry_after)
            headers["Retry-After"] = str(int(value)) if value.is_integer() else str(value)
        if params.get("retry_after_ms") is not None:
            headers["retry-after-ms"] = str(int(params["retry_after_ms"]))
        self._error(
            status, vertex=vertex, wrap=wrap, message=params.get("message"), headers=headers
        )

    def _pre_faults(self, plan: FaultPlan | None, *, vertex: bool, wrap: bool) -> bool:
        """Apply the faults that act before the request is looked at; True = response done."""
        if plan is None:
            return False
        if plan.kind == "slow_first_byte":
            time.sleep(float(plan.params.get("delay", 1.0)))
            return False
        if plan.kind == "status":
            self._status_fault(plan, vertex=vertex, wrap=wrap)
            return True
        if plan.kind == "reject_token" and self._bearer() == plan.params["token"]:
            self._error(401, vertex=vertex, wrap=wrap)
            return True
        if plan.kind == "wrong_content_type":
            self._send(200, b"<html><body><h1>Service temporarily unavailable</h1></body></html>",
                       content_type="text/html; charset=utf-8")  # fmt: skip
            return True
        return False

    def _oauth_token(self, raw: bytes) -> None:
        """A Google-style OAuth 2 token endpoint, enough for google-auth's refresh flows.

        ``grant_type=refresh_token`` (authorized_user ADC) or the JWT-bearer grant (service
        account); answers ``emu-token-N`` with N counting up. ``?delay=s`` or the configured
        ``oauth_delay`` pauses before answering; ``?expires_in=s`` overrides the lifetime.
        """
        state = self.server.state
        query = parse_qs(self.path.partition("?")[2])
        form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
        entry: dict[str, Any] = {"method": self.command, "form": form}
        grant = form.get("grant_type")
        if grant == _GRANT_JWT:
            entry["claims"] = _jwt_claims(form.get("assertion", ""))
        with state.lock:
            state.oauth_log.append(entry)
            delay = state.oauth_delay
            expires_in = state.oauth_expires_in
        if "delay" in query:
            delay = float(query["delay"][0])
        if "expires_in" in query:
            expires_in = int(query["expires_in"][0])
        if self.command != "POST":
            self._send(405, {"error": "invalid_request", "error_description": "POST only"})
            return
        if grant == _GRANT_REFRESH:
            missing = [k for k in ("refresh_token", "client_id") if not form.get(k)]
        elif grant == _GRANT_JWT:
            missing = [] if entry["claims"] else ["assertion"]
        else:
            self._send(400, {"error": "unsupported_grant_type",
                             "error_description": f"grant_type {grant!r}"})  # fmt: skip
            return
        if missing:
            self._send(400, {"error": "invalid_request",
                             "error_description": f"missing {', '.join(missing)}"})  # fmt: skip
            return
        if delay > 0:
            time.sleep(delay)
        with state.lock:
            state.oauth_issued += 1
            token = f"emu-token-{state.oauth_issued}"
        entry["issued"] = token
        self._send(200, {"access_token": token, "expires_in": expires_in, "token_type": "Bearer"})

    def _models(self) -> None:
        plan = self.server.state.take(_MODELS_KINDS)
        if self._pre_faults(plan, vertex=False, wrap=False):
            return
        if self._bearer() is None:
            self._error(401, vertex=False, wrap=False)
            return
        if plan is not None and plan.kind == "drop":
            self._hang_up()
            return
        self._send(200, P.model_list(int(time.time())))

    def _chat(self, raw: bytes, *, vertex: bool, stream_path: bool, route: dict[str, str]) -> None:
        plan = self.server.state.take(_CHAT_KINDS)
        wrap = vertex and stream_path
        if self._pre_faults(plan, vertex=vertex, wrap=wrap):
            return
        if self._bearer() is None:
            self._error(401, vertex=vertex, wrap=wrap)
            return
        if vertex:
            model = unquote(route["model"])
            if route["publisher"] != "mistralai" or model not in P.VERTEX_MODELS:
                name = (f"projects/{route['project']}/locations/{route['region']}/publishers/"
                        f"{route['publisher']}/models/{model}")  # fmt: skip
                self._error(
                    404, vertex=True, wrap=wrap, message=f"Publisher Model `{name}` not found."
                )
                return
        try:
            body = json.loads(raw)
        except ValueError as exc:
            detail = {"type": "json_invalid", "loc": ["body", 0], "msg": "JSON decode error",
                      "input": {}, "ctx": {"error": str(exc)}}  # fmt: skip
            self._send(422, {"detail": [detail]})
            return
        errors = validate(body, vertex=vertex)
        if errors:
            self._send(422, {"detail": errors})
            return
        try:
            check_semantics(body)
        except RequestError as exc:
            self._send(400, P.mistral_error(400, str(exc)))
            return
        if not vertex and body["model"] not in P.MISTRAL_MODELS:
            self._send(404, P.mistral_error(404, f"Invalid model: {body['model']}",
                                            kind="invalid_model", code="1500"))  # fmt: skip
            return
        stream = stream_path if vertex else bool(body.get("stream", False))
        try:
            completion = generate(body)
        except Exception as exc:  # a bug or an exotic schema: answer instead of hanging up
            self._error(500, vertex=False, wrap=False, message=f"emulator error: {exc!r}")
            return
        rid = uuid.uuid4().hex
        model = body["model"]
        created = int(time.time())
        if not stream:
            self._respond_whole(
                P.completion_body(completion, rid=rid, model=model, created=created), rid, plan
            )
            return
        events = list(P.stream_events(completion, rid=rid, model=model, created=created))
        self._respond_stream(events, rid, plan)

    def _respond_whole(self, body: dict[str, Any], rid: str, plan: FaultPlan | None) -> None:
        kind = plan.kind if plan else None
        if kind == "drop":
            self._hang_up()
        elif kind == "malformed":
            self._send(200, b'{"id": "' + rid.encode() + b'", "object": "chat.comp', rid=rid)
        elif kind == "stream_error":
            message = plan.params.get("message") if plan else None
            self._send(500, P.mistral_error(500, message or "Internal server error"), rid=rid)
        else:
            if kind == "stall" and plan:
                time.sleep(float(plan.params.get("delay", 1.0)))
            self._send(200, body, rid=rid)

    def _respond_stream(self, events: list[bytes], rid: str, plan: FaultPlan | None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("x-request-id", rid)
        self.end_headers()
        write = self.wfile.write
        state = self.server.state
        fault_at = -1
        if plan is not None and plan.kind in ("drop", "malformed", "stream_error", "stall"):
            # never later than just before [DONE], so the fault always happens
            fault_at = min(int(plan.params.get("after_chunks", 1)), len(events) - 1)
        try:
            for i, event in enumerate(events):
                if i == fault_at and plan is not None:
                    if plan.kind == "drop":
                        self._hang_up()
                        return
                    if plan.kind == "malformed":
                        if plan.params.get("variant", "bad_json") == "bad_line":
                            bad = b"\x00\xff\xfe<html>garbage \x9c\x80 not an event\n\n"
                        else:
                            bad = b'data: {"id": \n\n'
                        write(b"%x\r\n%b\r\n" % (len(bad), bad))
                    elif plan.kind == "stream_error":
                        err = P.stream_error_event(
                            str(plan.params.get("message") or "Internal server error")
                        )
                        write(b"%x\r\n%b\r\n0\r\n\r\n" % (len(err), err))
                        return
                    elif plan.kind == "stall":
                        time.sleep(float(plan.params.get("delay", 1.0)))
                elif i > 0:
                    delay = state.token_delay
                    if delay > 0:
                        time.sleep(delay)
                write(b"%x\r\n%b\r\n" % (len(event), event))
            write(b"0\r\n\r\n")
        except OSError:
            self.close_connection = True

    # ---- control endpoints ---------------------------------------------------------------------

    def _control(self, path: str, raw: bytes) -> None:
        try:
            loopback = ipaddress.ip_address(self.client_address[0].split("%")[0]).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            self._send(403, {"error": "control endpoints are loopback-only"})
            return
        state = self.server.state
        try:
            data: Any = json.loads(raw) if raw else {}
        except ValueError:
            self._send(400, {"error": "body is not JSON"})
            return
        key = (self.command, path.rstrip("/"))
        if key == ("GET", "/_emulator/health"):
            self._send(200, {"status": "ok"})
        elif key == ("POST", "/_emulator/faults"):
            if not isinstance(data, dict) or "kind" not in data:
                self._send(400, {"error": 'expected {"kind": ..., "times": 1, ...params}'})
                return
            params = dict(data)
            kind = params.pop("kind")
            times = params.pop("times", 1)
            try:
                state.inject(kind, times, **params)
            except (ValueError, TypeError) as exc:
                self._send(400, {"error": str(exc)})
                return
            self._send(200, {"ok": True, "queued": len(state.faults)})
        elif key == ("GET", "/_emulator/faults"):
            with state.lock:
                plans = [p.as_dict() for p in state.faults]
            self._send(200, plans)
        elif key == ("DELETE", "/_emulator/faults"):
            state.clear_faults()
            self._send(200, {"ok": True})
        elif key == ("GET", "/_emulator/requests"):
            with state.lock:
                entries = list(state.log)
            self._send(200, entries)
        elif key == ("DELETE", "/_emulator/requests"):
            with state.lock:
                state.log.clear()
            self._send(200, {"ok": True})
        elif key == ("POST", "/_emulator/config") and isinstance(data, dict) and (
            "oauth_delay" in data and "token_delay" not in data
        ):
            delay = data.get("oauth_delay")
            if isinstance(delay, bool) or not isinstance(delay, (int, float)) or delay < 0:
                self._send(400, {"error": 'expected {"oauth_delay": <seconds >= 0>}'})
                return
            state.oauth_delay = float(delay)
            self._send(200, {"oauth_delay": state.oauth_delay})
        elif key == ("POST", "/_emulator/config"):
            delay = data.get("token_delay") if isinstance(data, dict) else None
            if isinstance(delay, bool) or not isinstance(delay, (int, float)) or delay < 0:
                self._send(400, {"error": 'expected {"token_delay": <seconds >= 0>}'})
                return
            state.token_delay = float(delay)
            self._send(200, {"token_delay": state.token_delay})
        elif key == ("GET", "/_emulator/config"):
            self._send(200, {"token_delay": state.token_delay})
        else:
            self._send(404, {"error": f"no control endpoint {self.command} {path}"})


def _jwt_claims(assertion: str) -> dict[str, Any]:
    """Claims of a JWT (signature not checked: the emulator trusts any key)."""
    parts = assertion.split(".")
    if len(parts) != 3:
        return {}
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, binascii.Error):
        return {}
    return claims if isinstance(claims, dict) else {}


class EmulatorHandle:
    """A running emulator: its URL, fault injection, request log and live settings."""

    def __init__(self, server: _Server, thread: threading.Thread, host: str) -> None:
        self._server = server
        self._thread = thread
        self._state = server.state
        self.host = host
        self.port: int = server.server_address[1]
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{self.port}"
        self._stopped = False

    def __str__(self) -> str:
        return self.url

    def __repr__(self) -> str:
        return f"<EmulatorHandle {self.url}{' stopped' if self._stopped else ''}>"

    def __enter__(self) -> EmulatorHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop serving and cut open connections (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        self._thread.join(timeout=5)

    def inject(self, kind: str, times: int = 1, **params: Any) -> None:
        """Queue a fault plan for the next ``times`` matching requests (FIFO).

        Kinds: status(status, retry_after, retry_after_ms, retry_after_date, message),
        slow_first_byte(delay), drop(after_chunks), malformed(after_chunks, variant),
        stream_error(after_chunks, message), stall(after_chunks, delay), wrong_content_type(),
        reject_token(token).  Each matching request uses up one application even when the
        fault does not fire (e.g. reject_token with a different bearer), so plans stay FIFO.
        Stream-shaped faults (drop/malformed/stream_error/stall) count SSE events from the
        first chunk and fire at the latest just before ``[DONE]``.
        """
        self._state.inject(kind, times, **params)

    def clear_faults(self) -> None:
        """Forget all queued fault plans."""
        self._state.clear_faults()

    @property
    def faults(self) -> list[dict[str, Any]]:
        """Queued fault plans (kind, remaining times, params)."""
        with self._state.lock:
            return [p.as_dict() for p in self._state.faults]

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Received API requests: dicts with method, path, headers (lower-case), body."""
        with self._state.lock:
            return list(self._state.log)

    def clear_requests(self) -> None:
        """Empty the request log."""
        with self._state.lock:
            self._state.log.clear()

    @property
    def token_requests(self) -> list[dict[str, Any]]:
        """Calls of the OAuth endpoint ``POST /token``: method, form fields, JWT claims and
        the token issued (absent when the call was refused)."""
        with self._state.lock:
            return [dict(e) for e in self._state.oauth_log]

    def clear_token_requests(self) -> None:
        """Empty the OAuth call log (issued token numbers keep counting up)."""
        with self._state.lock:
            self._state.oauth_log.clear()

    def set_oauth(self, *, delay: float | None = None, expires_in: int | None = None) -> None:
        """Pause of ``POST /token`` before it answers, and the ``expires_in`` it returns."""
        with self._state.lock:
            if delay is not None:
                if delay < 0:
                    raise ValueError("delay must be >= 0")
                self._state.oauth_delay = float(delay)
            if expires_in is not None:
                self._state.oauth_expires_in = int(expires_in)

    @property
    def connections_accepted(self) -> int:
        """TCP connections accepted since the start (shows whether clients keep them alive)."""
        with self._state.lock:
            return self._state.accepted

    @property
    def open_connections(self) -> int:
        """TCP connections currently open."""
        with self._server.conn_lock:
            return len(self._server.connections)

    @property
    def token_delay(self) -> float:
        """Seconds between streamed chunks."""
        return self._state.token_delay

    def set_token_delay(self, seconds: float) -> None:
        """Change the pause between streamed chunks (takes effect at once, also mid-stream)."""
        if seconds < 0:
            raise ValueError("token delay must be >= 0")
        self._state.token_delay = float(seconds)


def serve(host: str = "127.0.0.1", port: int = 0, token_delay: float = 0.0) -> EmulatorHandle:
    """Start the emulator in a daemon thread and return its handle (``port=0``: any free port)."""
    server = _Server((host, port), _State(token_delay=float(token_delay)))
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.1},
        name="mistral-emulator",
        daemon=True,
    )
    thread.start()
    return EmulatorHandle(server, thread, host)
