"""``python -m mistral_magic.emulator``: serve the emulator until Ctrl-C."""

from __future__ import annotations

import argparse
import threading

from ._server import serve


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, serve, and block until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m mistral_magic.emulator",
        description="Offline emulator of Mistral's chat API (Vertex AI and api.mistral.ai).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=8000, help="port (0 = any free port; default 8000)"
    )
    parser.add_argument(
        "--token-delay",
        type=float,
        default=0.02,
        help="seconds between streamed chunks (default 0.02)",
    )
    args = parser.parse_args(argv)
    handle = serve(args.host, args.port, token_delay=args.token_delay)
    print(f"Mistral emulator listening on {handle.url} (Ctrl-C to stop)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        handle.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
