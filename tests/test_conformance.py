"""Wire conformance: for the same call, our clients send what the official SDK (mistralai 3.7)
sends — method, path, JSON body and the Authorization / Content-Type / Accept headers — as seen
in the emulator's request log."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from conftest import ACCESS_TOKEN, API_KEY, PROJECT, REGION
from mistral_magic.client import Mistral, MistralGCP
from mistral_magic.emulator import EmulatorHandle

pytest.importorskip("mistralai")
pytestmark = pytest.mark.usefixtures("loopback_only")

USER = {"role": "user", "content": "What's the weather in Paris?"}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"enum": ["C", "F"]}},
            "required": ["city"],
        },
    },
}
PERSON_SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "person",
        "schema": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
            "required": ["name", "age"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}
TOOL_TURN = [
    {"role": "system", "content": "You are terse."},
    USER,
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "id": "abcDEF123",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "abcDEF123", "name": "get_weather", "content": "21 C, sunny"},
]
PNG = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4"
    "DwABBAEAwS2OUAAAAABJRU5ErkJggg=="
)

CASES: dict[str, dict[str, Any]] = {
    "minimal": {},
    "sampling": {"temperature": 0.3, "top_p": 0.9, "max_tokens": 50, "random_seed": 42},
    "zero-temperature": {"temperature": 0, "max_tokens": 1},
    "stop-str": {"stop": "END"},
    "stop-list": {"stop": ["END", "\n\n"]},
    "min-tokens": {"min_tokens": 2, "max_tokens": 20},
    "penalties": {"presence_penalty": 0.5, "frequency_penalty": 0.25, "n": 1},
    "json-object": {"response_format": {"type": "json_object"}},
    "json-schema": {"response_format": PERSON_SCHEMA},
    "text-format": {"response_format": {"type": "text"}},
    "tools-auto": {"tools": [WEATHER_TOOL], "tool_choice": "auto"},
    "tools-any": {"tools": [WEATHER_TOOL], "tool_choice": "any"},
    "tools-none": {"tools": [WEATHER_TOOL], "tool_choice": "none"},
    "tools-required": {"tools": [WEATHER_TOOL], "tool_choice": "required"},
    "tools-named": {
        "tools": [WEATHER_TOOL],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    },
    "tools-no-parallel": {"tools": [WEATHER_TOOL], "parallel_tool_calls": False},
    "tool-turn": {"messages": TOOL_TURN, "tools": [WEATHER_TOOL]},
    "prediction": {"prediction": {"type": "content", "content": "It is sunny."}},
    "assistant-prefix": {
        "messages": [USER, {"role": "assistant", "content": "The weather", "prefix": True}]
    },
    "chunks": {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Describe this image."},
                    {"type": "image_url", "image_url": {"url": PNG}},
                ],
            }
        ]
    },
    "image-url-string": {
        "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": PNG}]}]
    },
    "unicode": {
        "messages": [{"role": "user", "content": 'Café, naïve, 東京, 🎨, \u2028 "quoted" \\ back'}]
    },
    "explicit-nulls": {"temperature": None, "max_tokens": None, "random_seed": None},
    "legacy-model": {"model": {"vertex": "mistral-large@2407", "mistral": "mistral-large-latest"}},
    "safe-prompt": {"safe_prompt": True, "_backends": ("mistral",)},
    "safe-prompt-false": {"safe_prompt": False, "_backends": ("mistral",)},
}

DEFAULT_MODEL = {"vertex": "mistral-small-2503", "mistral": "mistral-small-latest"}
COMPARED_HEADERS = ("authorization", "content-type", "accept")


def _params(name: str, backend: str) -> dict[str, Any] | None:
    case = copy.deepcopy(CASES[name])
    if backend not in case.pop("_backends", ("vertex", "mistral")):
        return None
    model = case.pop("model", None)
    case["model"] = model[backend] if isinstance(model, dict) else DEFAULT_MODEL[backend]
    case.setdefault("messages", [USER])
    return case


def _official(backend: str, url: str) -> Any:
    if backend == "vertex":
        from mistralai.gcp.client import MistralGCP as OfficialGCP

        return OfficialGCP(
            region=REGION, project_id=PROJECT, access_token=ACCESS_TOKEN, server_url=url
        )
    from mistralai.client import Mistral as OfficialMistral

    return OfficialMistral(api_key=API_KEY, server_url=url)


def _ours(backend: str, url: str) -> Any:
    if backend == "vertex":
        return MistralGCP(
            region=REGION, project_id=PROJECT, access_token=ACCESS_TOKEN, server_url=url
        )
    return Mistral(api_key=API_KEY, server_url=url)


def _call(client: Any, stream: bool, params: dict[str, Any]) -> None:
    """Make the call; what the service answers does not matter here, only what was sent."""
    try:
        if stream:
            for _ in client.chat.stream(**copy.deepcopy(params)):
                pass
        else:
            client.chat.complete(**copy.deepcopy(params))
    except Exception as exc:  # a 4xx from the emulator is still a request to compare
        if "validation" in type(exc).__name__.lower() and "Request" in type(exc).__name__:
            raise


def _sent(emulator: EmulatorHandle) -> dict[str, Any]:
    (entry,) = emulator.requests
    emulator.clear_requests()
    return {
        "method": entry["method"],
        "path": entry["path"],
        "body": entry["body"],
        "headers": {h: entry["headers"].get(h) for h in COMPARED_HEADERS},
    }


@pytest.fixture(scope="module")
def clients(emulator_server: EmulatorHandle) -> dict[str, tuple[Any, Any]]:
    url = emulator_server.url
    return {b: (_ours(b, url), _official(b, url)) for b in ("vertex", "mistral")}


#: (case, backend) pairs that exist: a case may be valid on one backend only (safe_prompt).
CASE_BACKENDS = [
    (case, backend)
    for case in CASES
    for backend in ("vertex", "mistral")
    if backend in CASES[case].get("_backends", ("vertex", "mistral"))
]


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize(("case", "backend"), CASE_BACKENDS)
def test_same_wire_as_official_sdk(
    case: str,
    backend: str,
    stream: bool,
    emulator: EmulatorHandle,
    clients: dict[str, tuple[Any, Any]],
) -> None:
    params = _params(case, backend)
    assert params is not None
    ours, official = clients[backend]
    _call(official, stream, params)
    expected = _sent(emulator)
    _call(ours, stream, params)
    got = _sent(emulator)
    assert got == expected
    assert got["body"]["stream"] is stream  # always sent


@pytest.mark.parametrize("backend", ["vertex", "mistral"])
def test_per_call_headers_like_official(
    backend: str, emulator: EmulatorHandle, clients: dict[str, tuple[Any, Any]]
) -> None:
    ours, official = clients[backend]
    params = _params("minimal", backend)
    assert params is not None
    for client in (official, ours):
        client.chat.complete(**params, http_headers={"X-Custom": "1", "Accept": "application/json"})
    theirs, mine = emulator.requests
    for name in ("x-custom", "accept", "authorization", "content-type"):
        assert mine["headers"].get(name) == theirs["headers"].get(name), name


def test_models_list_like_official(emulator: EmulatorHandle) -> None:
    from mistralai.client import Mistral as OfficialMistral

    official = OfficialMistral(api_key=API_KEY, server_url=emulator.url)
    theirs = official.models.list()
    ours = Mistral(api_key=API_KEY, server_url=emulator.url).models.list()
    first, second = emulator.requests
    assert (first["method"], first["path"]) == (second["method"], second["path"])
    for name in ("authorization", "accept"):
        assert first["headers"].get(name) == second["headers"].get(name)
    assert [m.id for m in theirs.data or []] == [m.id for m in ours.data]


def test_official_sdk_parses_what_the_emulator_streams(emulator: EmulatorHandle) -> None:
    """The emulator is a fair oracle: the SDK and our client read the same answer from it."""
    official = _official("vertex", emulator.url)
    ours = _ours("vertex", emulator.url)
    params = _params("sampling", "vertex")
    assert params is not None
    theirs = "".join(
        str(e.data.choices[0].delta.content or "") for e in official.chat.stream(**params)
    )
    mine = "".join(str(e.data.choices[0].delta.content or "") for e in ours.chat.stream(**params))
    assert theirs == mine
    assert official.chat.complete(**params).choices[0].message.content == mine
