"""Offline emulator of Mistral's chat-completion API (Vertex rawPredict routes and api.mistral.ai).

An independent oracle: standard library only, nothing imported from the rest of
``mistral_magic``.  Payloads are built from plain dicts following ``reference/mistral-api.md``.

>>> from mistral_magic.emulator import serve
>>> with serve() as emulator:                     # doctest: +SKIP
...     emulator.inject("status", status=429, retry_after=1)
...     ...  # point a client at emulator.url

``POST /token`` is a Google-style OAuth token endpoint (refresh-token and JWT-bearer grants,
tokens ``emu-token-N``) so that google-auth credentials can be refreshed offline; point a
credentials file's ``token_uri`` at ``<url>/token``.

Run standalone with ``python -m mistral_magic.emulator [--host] [--port] [--token-delay]``.
"""

from ._server import FAULT_PARAMS, EmulatorHandle, serve

__all__ = ["FAULT_PARAMS", "EmulatorHandle", "serve"]
