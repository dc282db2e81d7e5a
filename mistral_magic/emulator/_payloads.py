"""Wire payloads built from plain dicts (reference §3, §4, §5.2, §7): bodies and SSE bytes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from json.encoder import encode_basestring
from typing import Any

from ._model import Completion

VERTEX_MODELS = (
    "mistral-small-2503", "mistral-medium-3", "mistral-large-2411", "codestral-2501",
    "codestral-2", "mistral-nemo-2407", "mistral-large@2407", "mistral-nemo@2407",
    "codestral@2405",
)  # fmt: skip

# id -> (name/alias target, description, context length, capabilities overrides)
_MISTRAL_CARDS: dict[str, tuple[str, str, int, dict[str, bool]]] = {
    "mistral-small-latest": (
        "mistral-small-2503",
        "Small, fast multimodal model.",
        131072,
        {"vision": True},
    ),
    "mistral-medium-latest": (
        "mistral-medium-2508",
        "Frontier-class multimodal model.",
        131072,
        {"vision": True},
    ),
    "mistral-large-latest": ("mistral-large-2411", "Top-tier large model.", 131072, {}),
    "codestral-latest": (
        "codestral-2508",
        "Model for code generation.",
        256000,
        {"completion_fim": True},
    ),
    "ministral-8b-latest": ("ministral-8b-2410", "Edge model, 8B.", 131072, {}),
    "ministral-3b-latest": ("ministral-3b-2410", "Edge model, 3B.", 131072, {}),
    "magistral-medium-latest": (
        "magistral-medium-2509",
        "Reasoning model.",
        131072,
        {"vision": True},
    ),
    "magistral-small-latest": (
        "magistral-small-2509",
        "Small reasoning model.",
        131072,
        {"vision": True},
    ),
    "open-mistral-nemo": ("open-mistral-nemo-2407", "Open 12B model.", 131072, {}),
    "pixtral-large-latest": ("pixtral-large-2411", "Large vision model.", 131072, {"vision": True}),
    "mistral-small-2503": (
        "mistral-small-2503",
        "Small, fast multimodal model.",
        131072,
        {"vision": True},
    ),
    "mistral-medium-2508": (
        "mistral-medium-2508",
        "Frontier-class multimodal model.",
        131072,
        {"vision": True},
    ),
    "mistral-large-2411": ("mistral-large-2411", "Top-tier large model.", 131072, {}),
    "codestral-2501": (
        "codestral-2501",
        "Model for code generation.",
        256000,
        {"completion_fim": True},
    ),
    "codestral-2508": (
        "codestral-2508",
        "Model for code generation.",
        256000,
        {"completion_fim": True},
    ),
}
MISTRAL_MODELS = tuple(_MISTRAL_CARDS)

_GOOGLE_STATUS = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: (
        "UNAUTHENTICATED",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
        "cookie or other valid authentication credential.",
    ),
    403: ("PERMISSION_DENIED", "Permission 'aiplatform.endpoints.predict' denied on resource."),
    404: ("NOT_FOUND", "Requested entity was not found."),
    409: ("ABORTED", "The operation was aborted."),
    429: (
        "RESOURCE_EXHAUSTED",
        "Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model "
        "with base model: mistral. Please submit a quota increase request.",
    ),
    500: ("INTERNAL", "Internal error encountered."),
    501: ("NOT_IMPLEMENTED", "Operation is not implemented."),
    502: ("UNAVAILABLE", "Bad gateway."),
    503: ("UNAVAILABLE", "The service is currently unavailable."),
    504: ("DEADLINE_EXCEEDED", "The request timed out."),
}
_MISTRAL_STATUS = {
    400: ("invalid_request_error", "Bad request", None),
    401: ("unauthorized", "Unauthorized", None),
    403: ("forbidden", "Forbidden", None),
    404: ("not_found", "Not found", None),
    429: ("rate_limited", "Requests rate limit exceeded", "1300"),
    500: ("internal_error", "Internal server error", "3000"),
    502: ("bad_gateway", "Bad gateway", None),
    503: ("service_unavailable", "Service unavailable", None),
    504: ("gateway_timeout", "Gateway timeout", None),
}


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON, the way the service sends it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def google_error(status: int, message: str | None = None, *, wrap: bool = False) -> Any:
    """Google front-end error body; ``wrap`` for streamRawPredict (one-element array)."""
    code, default = _GOOGLE_STATUS.get(
        status, ("UNKNOWN" if status < 500 else "INTERNAL", "Error.")
    )
    body = {"error": {"code": status, "message": message or default, "status": code}}
    return [body] if wrap else body


def mistral_error(
    status: int, message: str | None = None, *, kind: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """Mistral error body ``{"object":"error",...}`` (422 gets a ``detail`` list instead)."""
    if status == 422:
        return {
            "detail": [
                {
                    "type": "value_error",
                    "loc": ["body"],
                    "msg": message or "Unprocessable entity",
                    "input": None,
                }
            ]
        }
    default_kind, default_msg, default_code = _MISTRAL_STATUS.get(
        status, ("internal_error" if status >= 500 else "invalid_request_error", "Error", None)
    )
    return {
        "object": "error",
        "message": message or default_msg,
        "type": kind or default_kind,
        "param": None,
        "code": code if code is not None else default_code,
    }


def stream_error_event(message: str) -> bytes:
    """An error object inside an SSE stream."""
    body = {
        "object": "error",
        "message": message,
        "type": "internal_error",
        "param": None,
        "code": "3000",
    }
    return b"data: " + dumps(body) + b"\n\n"


def usage(completion: Completion) -> dict[str, int]:
    """The ``usage`` object of a completion."""
    return {
        "prompt_tokens": completion.prompt_tokens,
        "completion_tokens": completion.completion_tokens,
        "total_tokens": completion.prompt_tokens + completion.completion_tokens,
    }


def completion_body(
    completion: Completion, *, rid: str, model: str, created: int
) -> dict[str, Any]:
    """The non-streaming ``chat.completion`` response."""
    return {
        "id": rid,
        "object": "chat.completion",
        "model": model,
        "created": created,
        "usage": usage(completion),
        "choices": [
            {
                "index": i,
                "message": {
                    "role": "assistant",
                    "content": choice.content,
                    "tool_calls": choice.tool_calls,
                    "prefix": False,
                },
                "finish_reason": choice.finish_reason,
            }
            for i, choice in enumerate(completion.choices)
        ],
    }


def stream_events(completion: Completion, *, rid: str, model: str, created: int) -> Iterator[bytes]:
    """SSE events (``data: ...``), pre-encoded from string templates for speed, ending in [DONE]."""
    head = (
        f'data: {{"id":"{rid}","object":"chat.completion.chunk","created":{created},'
        f'"model":{encode_basestring(model)},"choices":[{{"index":'
    )
    null_tail = ',"finish_reason":null}],"usage":null}\n\n'
    last_choice = len(completion.choices) - 1
    usage_json = dumps(usage(completion)).decode()
    for i, choice in enumerate(completion.choices):
        prefix = f'{head}{i},"delta":'
        yield (prefix + '{"role":"assistant","content":""}' + null_tail).encode()
        end_usage = usage_json if i == last_choice else "null"
        end_tail = f',"finish_reason":"{choice.finish_reason}"}}],"usage":{end_usage}}}\n\n'
        if choice.tool_calls:
            calls = dumps(choice.tool_calls).decode()
            yield (prefix + '{"tool_calls":' + calls + "}" + end_tail).encode()
            continue
        tokens = choice.tokens
        if not tokens:
            yield (prefix + '{"content":""}' + end_tail).encode()
            continue
        for tok in tokens[:-1]:
            yield (prefix + '{"content":' + encode_basestring(tok) + "}" + null_tail).encode()
        yield (prefix + '{"content":' + encode_basestring(tokens[-1]) + "}" + end_tail).encode()
    yield b"data: [DONE]\n\n"


def model_list(created: int) -> dict[str, Any]:
    """``GET /v1/models`` body (reference §7)."""
    data = []
    for model_id, (name, description, context, caps) in _MISTRAL_CARDS.items():
        capabilities = {
            "completion_chat": True, "function_calling": True, "completion_fim": False,
            "fine_tuning": False, "vision": False, "ocr": False, "classification": False,
            "moderation": False, "audio": False, "audio_transcription": False,
        }  # fmt: skip
        capabilities.update(caps)
        aliases = sorted(
            {m for m, card in _MISTRAL_CARDS.items() if card[0] == name} | {name} - {model_id}
        )
        data.append(
            {
                "id": model_id,
                "object": "model",
                "created": created,
                "owned_by": "mistralai",
                "type": "base",
                "name": name,
                "description": description,
                "max_context_length": context,
                "aliases": aliases,
                "deprecation": None,
                "deprecation_replacement_model": None,
                "default_model_temperature": 0.7 if model_id.startswith("magistral") else 0.3,
                "capabilities": capabilities,
            }
        )
    return {"object": "list", "data": data}
