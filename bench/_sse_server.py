"""A loopback HTTP server that answers every POST with one prebuilt SSE stream (benchmarks only).

Run as a subprocess so the client's CPU time is measured alone:
``python bench/_sse_server.py CHUNKS`` prints ``http://127.0.0.1:PORT`` and serves until killed.
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def build_stream(chunks: int) -> bytes:
    """``chunks`` content chunks shaped as Mistral's, then the usage chunk and ``[DONE]``."""
    head = {"id": "b" * 32, "object": "chat.completion.chunk", "created": 1764258570,
            "model": "mistral-small-2503"}
    events = [{**head, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                    "finish_reason": None}], "usage": None}]
    for i in range(chunks):
        events.append({**head, "choices": [{"index": 0, "delta": {"content": f" word{i % 97}"},
                                            "finish_reason": None}], "usage": None})
    events.append({**head, "choices": [{"index": 0, "delta": {"content": "."},
                                        "finish_reason": "stop"}],
                   "usage": {"prompt_tokens": 9, "completion_tokens": chunks + 1,
                             "total_tokens": chunks + 10}})
    body = b"".join(b"data: " + json.dumps(e, separators=(",", ":")).encode() + b"\n\n"
                    for e in events)
    return body + b"data: [DONE]\n\n"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    body = b""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    _Handler.body = build_stream(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
