"""mistral_magic: Mistral models in Jupyter.

``%load_ext mistral_magic`` registers the ``%%mistral`` cell magic and the ``%mistral`` line
magic. Underneath is a client for Mistral's chat API on Google Cloud Vertex AI (``MistralGCP``)
and on api.mistral.ai (``Mistral``) with the official SDK's call surface, and an offline emulator
(``python -m mistral_magic.emulator``).

Names are imported on first use, so ``import mistral_magic`` stays cheap: neither google-auth,
ipywidgets nor IPython is imported until needed.
"""

from __future__ import annotations

import contextlib
import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .client import Mistral, MistralGCP
    from .errors import (
        APIConnectionError,
        APIError,
        APITimeoutError,
        ConfigError,
        HTTPValidationError,
        MistralError,
        RequestValidationError,
        ResponseValidationError,
        SDKError,
        StreamError,
    )
    from .models import (
        AssistantMessage,
        ChatCompletionResponse,
        CompletionEvent,
        SystemMessage,
        ToolMessage,
        UserMessage,
    )
    from .panel import ChatPanel
    from .session import ChatResult
    from .utils import BackoffStrategy, RetryConfig

_LAZY = {
    "Mistral": "client",
    "MistralGCP": "client",
    "APIConnectionError": "errors",
    "APIError": "errors",
    "APITimeoutError": "errors",
    "ConfigError": "errors",
    "HTTPValidationError": "errors",
    "MistralError": "errors",
    "RequestValidationError": "errors",
    "ResponseValidationError": "errors",
    "SDKError": "errors",
    "StreamError": "errors",
    "AssistantMessage": "models",
    "ChatCompletionResponse": "models",
    "CompletionEvent": "models",
    "SystemMessage": "models",
    "ToolMessage": "models",
    "UserMessage": "models",
    "ChatPanel": "panel",
    "ChatResult": "session",
    "BackoffStrategy": "utils",
    "RetryConfig": "utils",
}

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AssistantMessage",
    "BackoffStrategy",
    "ChatCompletionResponse",
    "ChatPanel",
    "ChatResult",
    "CompletionEvent",
    "ConfigError",
    "HTTPValidationError",
    "Mistral",
    "MistralError",
    "MistralGCP",
    "RequestValidationError",
    "ResponseValidationError",
    "RetryConfig",
    "SDKError",
    "StreamError",
    "SystemMessage",
    "ToolMessage",
    "UserMessage",
    "__version__",
    "load_ipython_extension",
    "unload_ipython_extension",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mistral_magic' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext mistral_magic``: register ``%%mistral`` and ``%mistral``."""
    from .magics import MistralMagics

    ipython.register_magics(MistralMagics)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext mistral_magic``: remove the magics and close their clients."""
    manager = ipython.magics_manager
    for kind in ("line", "cell"):
        manager.magics[kind].pop("mistral", None)
    for instance in list(manager.registry.values()):
        if type(instance).__name__ == "MistralMagics":
            callback = getattr(instance, "_pre_run_cell", None)
            if callback is not None:
                with contextlib.suppress(ValueError):
                    ipython.events.unregister("pre_run_cell", callback)
            for client in instance._clients.values():
                client.close()
            if instance.emulator is not None:
                instance.emulator.stop()
    manager.registry.pop("MistralMagics", None)
