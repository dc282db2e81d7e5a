"""The emulator over real loopback HTTP: routes, validation, the fake model, faults, controls.

Schema checks use ``jsonschema`` (part of the test extra via ``mistralai``'s dependencies; it
should be listed in the ``test`` extra explicitly).
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest

from mistral_magic.emulator import EmulatorHandle, serve

VERTEX_BASE = "/v1/projects/p/locations/europe-west4/publishers/mistralai/models"
VERTEX_MODEL = "mistral-small-2503"
MISTRAL_MODEL = "mistral-small-latest"
AUTH = {"Authorization": "Bearer test-key"}

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
        },
    },
}
STOCK_TOOL = {
    "type": "function",
    "function": {
        "name": "get_stock_price",
        "description": "Look up the latest stock price of a ticker symbol",
        "parameters": {
            "type": "object",
            "properties": {"ticker": {"type": "string"}},
            "required": ["ticker"],
        },
    },
}


# ---------------------------------------------------------------------------------------------
# helpers


def vertex_path(model: str = VERTEX_MODEL, stream: bool = False) -> str:
    return f"{VERTEX_BASE}/{model}:{'streamRawPredict' if stream else 'rawPredict'}"


def chat_body(text: str = "What is the capital of France?", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": MISTRAL_MODEL, "messages": [{"role": "user", "content": text}]}
    body.update(extra)
    return body


def parse_sse(raw: bytes) -> list[Any]:
    """Tiny SSE parser: the decoded ``data`` of each event; ``"[DONE]"`` kept as a string."""
    events: list[Any] = []
    for block in re.split(r"\r?\n\r?\n", raw.decode("utf-8")):
        data = [line[5:].lstrip(" ") for line in block.splitlines() if line.startswith("data:")]
        if not data:
            continue
        payload = "\n".join(data)
        events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


def stream_text(events: list[Any], index: int = 0) -> str:
    parts = []
    for event in events:
        if event == "[DONE]":
            continue
        for choice in event["choices"]:
            if choice["index"] == index and choice["delta"].get("content"):
                parts.append(choice["delta"]["content"])
    return "".join(parts)


@pytest.fixture
def client(emulator: EmulatorHandle) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator.url, headers=AUTH, timeout=30) as c:
        yield c


def complete(client: httpx.Client, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/chat/completions", json=chat_body(**body))
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def stream(client: httpx.Client, path: str = "/v1/chat/completions", **body: Any) -> list[Any]:
    payload = chat_body(**body)
    if path == "/v1/chat/completions":
        payload["stream"] = True
    response = client.post(path, json=payload)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return parse_sse(response.content)


def text_of(client: httpx.Client, **body: Any) -> str:
    content: str = complete(client, **body)["choices"][0]["message"]["content"]
    return content


# ---------------------------------------------------------------------------------------------
# routes and shapes


def test_handle_basics(emulator: EmulatorHandle) -> None:
    assert str(emulator) == emulator.url
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", emulator.url)


@pytest.mark.parametrize("route", ["vertex", "mistral"])
def test_complete_shape(client: httpx.Client, route: str) -> None:
    path = vertex_path() if route == "vertex" else "/v1/chat/completions"
    body = chat_body(model=VERTEX_MODEL if route == "vertex" else MISTRAL_MODEL, stream=False)
    response = client.post(path, json=body)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    data = response.json()
    assert re.fullmatch(r"[0-9a-f]{32}", data["id"])
    assert response.headers["x-request-id"] == data["id"]
    assert data["object"] == "chat.completion"
    assert data["model"] == body["model"]
    assert isinstance(data["created"], int)
    choice = data["choices"][0]
    assert choice["index"] == 0
    assert choice["finish_reason"] == "stop"
    message = choice["message"]
    assert message["role"] == "assistant"
    assert message["tool_calls"] is None
    assert message["prefix"] is False
    assert "capital of France" in message["content"]
    usage = data["usage"]
    assert usage["prompt_tokens"] == 6  # "What is the capital of France?" in word pieces
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


@pytest.mark.parametrize("route", ["vertex", "mistral"])
def test_stream_shape(client: httpx.Client, route: str) -> None:
    if route == "vertex":
        path = vertex_path(stream=True)
        events = stream(client, path, model=VERTEX_MODEL, stream=True)
        whole = client.post(vertex_path(), json=chat_body(model=VERTEX_MODEL, stream=False))
    else:
        events = stream(client)
        whole = client.post("/v1/chat/completions", json=chat_body(stream=False))
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[0]["object"] == "chat.completion.chunk"
    assert len({c["id"] for c in chunks}) == 1
    for chunk in chunks[:-1]:
        assert chunk["choices"][0]["finish_reason"] is None
        assert chunk["usage"] is None
    last = chunks[-1]
    assert last["choices"][0]["finish_reason"] == "stop"
    assert last["usage"]["completion_tokens"] == len(chunks) - 1  # one chunk per token
    # the same request gives the same text, streamed or not
    assert stream_text(events) == whole.json()["choices"][0]["message"]["content"]


def test_stream_is_chunked_and_keep_alive(emulator: EmulatorHandle) -> None:
    with httpx.Client(base_url=emulator.url, headers=AUTH) as c:
        for _ in range(3):
            with c.stream("POST", "/v1/chat/completions", json=chat_body(stream=True)) as r:
                assert r.headers["transfer-encoding"] == "chunked"
                assert r.headers["x-request-id"]
                r.read()
    assert len(emulator.requests) == 3


def test_vertex_path_decides_streaming(client: httpx.Client) -> None:
    body = chat_body(model=VERTEX_MODEL, stream=True)
    response = client.post(vertex_path(stream=False), json=body)
    assert response.headers["content-type"] == "application/json"
    body["stream"] = False
    response = client.post(vertex_path(stream=True), json=body)
    assert response.headers["content-type"].startswith("text/event-stream")


@pytest.mark.parametrize("model", ["mistral-large@2407", "codestral-2", "mistral-medium-3"])
def test_vertex_models(client: httpx.Client, model: str) -> None:
    response = client.post(vertex_path(model), json=chat_body(model=model.split("@")[0]))
    assert response.status_code == 200


def test_n_choices(client: httpx.Client) -> None:
    data = complete(client, n=3, random_seed=1)
    assert [c["index"] for c in data["choices"]] == [0, 1, 2]
    texts = {c["message"]["content"] for c in data["choices"]}
    assert len(texts) == 3
    events = stream(client, n=2, random_seed=1)
    assert stream_text(events, 0) == data["choices"][0]["message"]["content"]
    assert stream_text(events, 1)


def test_models_list(client: httpx.Client) -> None:
    response = client.get("/v1/models")
    assert response.status_code == 200
    data = response.json()
    assert data["object"] == "list"
    ids = {card["id"] for card in data["data"]}
    assert {"mistral-small-latest", "codestral-latest", "mistral-large-2411"} <= ids
    card = data["data"][0]
    keys = {"object", "created", "owned_by", "type", "name", "description", "max_context_length"}
    keys |= {"aliases", "deprecation", "default_model_temperature", "capabilities"}
    assert keys <= set(card)
    assert card["type"] == "base"
    assert card["capabilities"]["completion_chat"] is True
    assert client.get("/v1/models", headers={"Authorization": "Bearer"}).status_code == 401


def test_request_log(client: httpx.Client, emulator: EmulatorHandle) -> None:
    client.post("/v1/chat/completions", json=chat_body(temperature=0.2), headers={"X-Custom": "1"})
    (entry,) = emulator.requests
    assert entry["method"] == "POST"
    assert entry["path"] == "/v1/chat/completions"
    assert entry["headers"]["authorization"] == "Bearer test-key"
    assert entry["headers"]["x-custom"] == "1"
    assert entry["body"]["temperature"] == 0.2
    emulator.clear_requests()
    assert emulator.requests == []


# ---------------------------------------------------------------------------------------------
# auth, validation, unknown models


@pytest.mark.parametrize("header", [None, "Bearer", "Basic abc"])
def test_401_mistral(emulator: EmulatorHandle, header: str | None) -> None:
    headers = {"Authorization": header} if header is not None else {}
    r = httpx.post(f"{emulator.url}/v1/chat/completions", json=chat_body(), headers=headers)
    assert r.status_code == 401
    assert r.json()["object"] == "error"


def test_401_vertex(emulator: EmulatorHandle) -> None:
    r = httpx.post(emulator.url + vertex_path(), json=chat_body(model=VERTEX_MODEL))
    assert r.status_code == 401
    assert r.json()["error"]["status"] == "UNAUTHENTICATED"
    r = httpx.post(emulator.url + vertex_path(stream=True), json=chat_body(model=VERTEX_MODEL))
    assert r.status_code == 401
    body = r.json()
    assert isinstance(body, list) and body[0]["error"]["code"] == 401


def test_422_extra_field(client: httpx.Client) -> None:
    r = client.post("/v1/chat/completions", json=chat_body(max_completion_tokens=32000))
    assert r.status_code == 422
    assert r.json() == {
        "detail": [
            {
                "type": "extra_forbidden",
                "loc": ["body", "max_completion_tokens"],
                "msg": "Extra inputs are not permitted",
                "input": 32000,
            }
        ]
    }


@pytest.mark.parametrize(
    ("field", "value", "kind"),
    [
        ("temperature", 1.6, "less_than_equal"),
        ("temperature", -0.1, "greater_than_equal"),
        ("top_p", 1.5, "less_than_equal"),
        ("max_tokens", -1, "greater_than_equal"),
        ("min_tokens", -1, "greater_than_equal"),
        ("random_seed", -5, "greater_than_equal"),
        ("n", 0, "greater_than_equal"),
        ("presence_penalty", 2.5, "less_than_equal"),
        ("frequency_penalty", -3, "greater_than_equal"),
        ("max_tokens", "ten", "int_type"),
        ("max_tokens", 1.5, "int_from_float"),
        ("temperature", "hot", "float_type"),
        ("stream", "yes", "bool_type"),
        ("tool_choice", "sometimes", "enum"),
        ("response_format", {"type": "xml"}, "literal_error"),
        ("stop", 5, "string_type"),
    ],
)
def test_422_type_and_range(client: httpx.Client, field: str, value: Any, kind: str) -> None:
    r = client.post("/v1/chat/completions", json=chat_body(**{field: value}))
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert detail[0]["type"] == kind
    assert detail[0]["loc"][:2] == ["body", field]
    assert isinstance(detail[0]["msg"], str)


@pytest.mark.parametrize(
    ("messages", "kind"),
    [
        ([], "too_short"),
        ([{"role": "robot", "content": "x"}], "union_tag_invalid"),
        ([{"content": "x"}], "union_tag_not_found"),
        ([{"role": "user", "content": "x"}, {"role": "assistant"}], "value_error"),
        ([{"role": "user", "content": "x", "name": "bob"}], "extra_forbidden"),
        ([{"role": "system"}], "missing"),
    ],
)
def test_422_messages(client: httpx.Client, messages: list[Any], kind: str) -> None:
    r = client.post("/v1/chat/completions", json={"model": MISTRAL_MODEL, "messages": messages})
    assert r.status_code == 422
    assert r.json()["detail"][0]["type"] == kind


def test_422_missing_fields_and_bad_json(client: httpx.Client) -> None:
    r = client.post("/v1/chat/completions", json={})
    kinds = {(d["type"], d["loc"][1]) for d in r.json()["detail"]}
    assert kinds == {("missing", "model"), ("missing", "messages")}
    r = client.post("/v1/chat/completions", content=b"{not json")
    assert r.status_code == 422
    assert r.json()["detail"][0]["type"] == "json_invalid"


def test_safe_prompt_only_on_mistral(client: httpx.Client) -> None:
    r = client.post(vertex_path(), json=chat_body(model=VERTEX_MODEL, safe_prompt=True))
    assert r.status_code == 422
    assert r.json()["detail"][0]["type"] == "extra_forbidden"
    assert r.json()["detail"][0]["loc"] == ["body", "safe_prompt"]
    assert client.post("/v1/chat/completions", json=chat_body(safe_prompt=True)).status_code == 200


def test_400_request_errors(client: httpx.Client) -> None:
    r = client.post(
        "/v1/chat/completions",
        json=chat_body(tools=[WEATHER_TOOL], tool_choice={"function": {"name": "nope"}}),
    )
    assert r.status_code == 400
    assert r.json()["type"] == "invalid_request_error"
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    r = client.post("/v1/chat/completions", json={"model": MISTRAL_MODEL, "messages": messages})
    assert r.status_code == 400


def test_404_model_vertex(client: httpx.Client) -> None:
    r = client.post(vertex_path("gpt-4"), json=chat_body(model="gpt-4"))
    assert r.status_code == 404
    assert r.json() == {
        "error": {
            "code": 404,
            "message": "Publisher Model `projects/p/locations/europe-west4/publishers/mistralai"
            "/models/gpt-4` not found.",
            "status": "NOT_FOUND",
        }
    }
    r = client.post(vertex_path("gpt-4", stream=True), json=chat_body(model="gpt-4"))
    assert r.status_code == 404 and r.json()[0]["error"]["status"] == "NOT_FOUND"


def test_404_model_mistral(client: httpx.Client) -> None:
    r = client.post("/v1/chat/completions", json=chat_body(model="gpt-4"))
    assert r.status_code == 404
    assert r.json() == {
        "object": "error",
        "message": "Invalid model: gpt-4",
        "type": "invalid_model",
        "param": None,
        "code": "1500",
    }


def test_unknown_path_and_method(client: httpx.Client) -> None:
    assert client.get("/v2/nothing").status_code == 404
    assert client.get("/v1/chat/completions").status_code == 405


# ---------------------------------------------------------------------------------------------
# the fake model


def test_determinism_and_seeds(client: httpx.Client) -> None:
    a = text_of(client, random_seed=7)
    assert text_of(client, random_seed=7) == a
    assert text_of(client, random_seed=8) != a
    assert text_of(client) == text_of(client)  # no seed: derived from the request


def test_code_block_when_asked(client: httpx.Client) -> None:
    text = text_of(client, text="Write a Python function that reverses a list")
    assert "```python\n" in text and text.rstrip().endswith((".", "!")) and "\n```" in text


def test_max_tokens_length(client: httpx.Client) -> None:
    data = complete(client, max_tokens=5)
    assert data["choices"][0]["finish_reason"] == "length"
    assert data["usage"]["completion_tokens"] == 5
    events = stream(client, max_tokens=5)
    assert events[-2]["choices"][0]["finish_reason"] == "length"
    assert len(events) == 1 + 5 + 1  # role chunk, 5 tokens, [DONE]


@pytest.mark.parametrize("stop", ["the", ["zzz", "."]])
def test_stop(client: httpx.Client, stop: Any) -> None:
    full = text_of(client, random_seed=3)
    data = complete(client, random_seed=3, stop=stop)
    text = data["choices"][0]["message"]["content"]
    first = min(full.find(s) for s in ([stop] if isinstance(stop, str) else stop) if s in full)
    assert text == full[:first]
    assert data["choices"][0]["finish_reason"] == "stop"


def test_min_tokens_long_answer(client: httpx.Client) -> None:
    data = complete(client, min_tokens=3000)
    assert data["usage"]["completion_tokens"] >= 3000
    data = complete(client, min_tokens=20000, max_tokens=20000)
    assert data["usage"]["completion_tokens"] == 20000
    events = stream(client, min_tokens=20000, max_tokens=20000)
    assert len(events) == 20002
    assert events[-2]["usage"]["completion_tokens"] == 20000


def test_prefix(client: httpx.Client) -> None:
    messages = [
        {"role": "user", "content": "Tell me a story"},
        {"role": "assistant", "content": "Once upon a time", "prefix": True},
    ]
    r = client.post("/v1/chat/completions", json={"model": MISTRAL_MODEL, "messages": messages})
    assert r.json()["choices"][0]["message"]["content"].startswith("Once upon a time ")


def test_json_object(client: httpx.Client) -> None:
    fmt = {"type": "json_object"}
    text = text_of(client, text="Give me facts about Paris as JSON", response_format=fmt)
    assert isinstance(json.loads(text), dict)
    events = stream(client, text="Give me facts about Paris as JSON", response_format=fmt)
    assert json.loads(stream_text(events)) == json.loads(text)
    assert len(events) > 5  # tokenized like prose


def _pydantic_schema() -> dict[str, Any]:
    pydantic = pytest.importorskip("pydantic")
    from datetime import date, datetime
    from typing import Literal, Optional

    class Address(pydantic.BaseModel):  # type: ignore[name-defined,misc]
        city: str
        zip_code: Optional[str] = None  # noqa: UP045 - the nullable anyOf is the point

    class Person(pydantic.BaseModel):  # type: ignore[name-defined,misc]
        name: str
        age: int = pydantic.Field(ge=18, le=30)
        score: float = pydantic.Field(gt=0, lt=1)
        born: date
        seen: datetime
        role: Literal["admin", "user"]
        active: bool
        tags: list[str] = pydantic.Field(min_length=3, max_length=4)
        home: Address
        previous: list[Address]
        nickname: Optional[str]  # noqa: UP045
        friend: Optional[Person] = None  # noqa: UP045 - recursive $ref

    schema: dict[str, Any] = Person.model_json_schema()
    return schema


@pytest.mark.parametrize("route", ["complete", "stream"])
def test_json_schema_instance(client: httpx.Client, route: str) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = _pydantic_schema()
    fmt = {
        "type": "json_schema",
        "json_schema": {"name": "person", "schema": schema, "strict": True},
    }
    prompt = "Describe Ada Lovelace from London"
    if route == "complete":
        text = text_of(client, text=prompt, response_format=fmt)
    else:
        text = stream_text(stream(client, text=prompt, response_format=fmt))
    value = json.loads(text)
    jsonschema.validate(value, schema, format_checker=jsonschema.FormatChecker())
    assert value["home"]["city"] in ("Ada Lovelace", "London")


def test_json_schema_keywords(client: httpx.Client) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = {
        "type": "object",
        "definitions": {"Color": {"enum": ["red", "green"]}},
        "properties": {
            "const": {"const": 42},
            "either": {
                "oneOf": [{"type": "integer", "minimum": 5, "maximum": 5}, {"type": "string"}]
            },
            "color": {"$ref": "#/definitions/Color"},
            "email": {"type": "string", "format": "email"},
            "nothing": {"type": "null"},
            "grid": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
            "short": {"type": "string", "maxLength": 2},
            "multi": {"type": ["integer", "null"], "exclusiveMinimum": 0, "exclusiveMaximum": 2},
        },
        "required": ["const"],
        "additionalProperties": False,
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    value = json.loads(text_of(client, response_format=fmt))
    jsonschema.validate(value, schema, format_checker=jsonschema.FormatChecker())
    assert value["const"] == 42 and value["either"] == 5 and value["multi"] == 1


# ---------------------------------------------------------------------------------------------
# tools


def _tool_call_message(data: dict[str, Any]) -> dict[str, Any]:
    choice = data["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    message: dict[str, Any] = choice["message"]
    for call in message["tool_calls"]:
        assert re.fullmatch(r"[A-Za-z0-9]{9}", call["id"])
        assert call["type"] == "function"
        assert isinstance(call["function"]["arguments"], str)
    return message


@pytest.mark.parametrize(
    "choice", ["any", "required", {"type": "function", "function": {"name": "get_weather"}}]
)
def test_forced_tool_call(client: httpx.Client, choice: Any) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    data = complete(
        client, text="Is it sunny in Lisbon today?", tools=[WEATHER_TOOL], tool_choice=choice
    )
    message = _tool_call_message(data)
    (call,) = message["tool_calls"]
    assert call["function"]["name"] == "get_weather"
    args = json.loads(call["function"]["arguments"])
    jsonschema.validate(args, WEATHER_TOOL["function"]["parameters"])  # type: ignore[index]
    assert args["city"] == "Lisbon"


def test_auto_tool_choice(client: httpx.Client) -> None:
    tools = [STOCK_TOOL, WEATHER_TOOL]
    data = complete(client, text="What's the weather like in Rome?", tools=tools)
    (call,) = _tool_call_message(data)["tool_calls"]
    assert call["function"]["name"] == "get_weather"
    data = complete(client, text="Tell me a joke about cats", tools=tools, tool_choice="auto")
    assert data["choices"][0]["finish_reason"] == "stop"
    assert data["choices"][0]["message"]["tool_calls"] is None
    data = complete(
        client, text="What's the weather like in Rome?", tools=tools, tool_choice="none"
    )
    assert data["choices"][0]["finish_reason"] == "stop"


def test_parallel_tool_calls(client: httpx.Client) -> None:
    text = "Compare the weather in Paris and London"
    data = complete(client, text=text, tools=[WEATHER_TOOL], tool_choice="any")
    calls = _tool_call_message(data)["tool_calls"]
    assert [json.loads(c["function"]["arguments"])["city"] for c in calls] == ["Paris", "London"]
    assert [c["index"] for c in calls] == [0, 1]
    data = complete(
        client, text=text, tools=[WEATHER_TOOL], tool_choice="any", parallel_tool_calls=False
    )
    assert len(_tool_call_message(data)["tool_calls"]) == 1


def test_tool_call_stream(client: httpx.Client) -> None:
    events = stream(client, text="Weather in Oslo?", tools=[WEATHER_TOOL], tool_choice="any")
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    last = events[-2]
    assert last["choices"][0]["finish_reason"] == "tool_calls"
    (call,) = last["choices"][0]["delta"]["tool_calls"]
    assert call["function"]["name"] == "get_weather" and call["index"] == 0
    assert json.loads(call["function"]["arguments"])["city"] == "Oslo"
    assert last["usage"]["completion_tokens"] > 0


def test_answer_after_tool_result(client: httpx.Client) -> None:
    messages = [
        {"role": "user", "content": "Weather in Oslo?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "abcDEF123",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                }
            ],
            "prefix": False,
        },
        {"role": "tool", "tool_call_id": "abcDEF123", "content": '{"temp": -3}'},
    ]
    body = {
        "model": MISTRAL_MODEL,
        "messages": messages,
        "tools": [WEATHER_TOOL],
        "tool_choice": "any",
    }
    r = client.post("/v1/chat/completions", json=body)
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert 'According to get_weather: {"temp": -3}' in choice["message"]["content"]


# ---------------------------------------------------------------------------------------------
# faults


def test_status_fault_mistral(client: httpx.Client, emulator: EmulatorHandle) -> None:
    emulator.inject("status", status=429, retry_after=2)
    r = client.post("/v1/chat/completions", json=chat_body())
    assert r.status_code == 429
    assert r.headers["retry-after"] == "2"
    assert r.json() == {
        "object": "error",
        "message": "Requests rate limit exceeded",
        "type": "rate_limited",
        "param": None,
        "code": "1300",
    }
    assert client.post("/v1/chat/completions", json=chat_body()).status_code == 200


def test_status_fault_vertex(client: httpx.Client, emulator: EmulatorHandle) -> None:
    emulator.inject("status", times=2, status=429, retry_after_ms=150)
    emulator.inject("status", status=403)
    emulator.inject("status", status=503, retry_after=1, retry_after_date=True)
    body = chat_body(model=VERTEX_MODEL)
    r = client.post(vertex_path(), json=body)
    assert (r.status_code, r.json()["error"]["status"]) == (429, "RESOURCE_EXHAUSTED")
    assert r.headers["retry-after-ms"] == "150"
    r = client.post(vertex_path(stream=True), json=body)
    assert r.status_code == 429 and r.json()[0]["error"]["code"] == 429  # wrapped on streaming
    r = client.post(vertex_path(), json=body)
    assert (r.status_code, r.json()["error"]["status"]) == (403, "PERMISSION_DENIED")
    r = client.post(vertex_path(), json=body)
    assert (r.status_code, r.json()["error"]["status"]) == (503, "UNAVAILABLE")
    assert parsedate_to_datetime(r.headers["retry-after"]).tzinfo is not None
    assert client.post(vertex_path(), json=body).status_code == 200


@pytest.mark.parametrize("status", [500, 502, 504, 401])
def test_status_fault_styles(client: httpx.Client, emulator: EmulatorHandle, status: int) -> None:
    emulator.inject("status", status=status)
    r = client.post("/v1/chat/completions", json=chat_body())
    assert r.status_code == status and r.json()["object"] == "error"
    emulator.inject("status", status=status)
    r = client.post(vertex_path(), json=chat_body(model=VERTEX_MODEL))
    assert r.status_code == status and r.json()["error"]["code"] == status


def test_status_fault_on_models(client: httpx.Client, emulator: EmulatorHandle) -> None:
    emulator.inject("status", status=500)
    assert client.get("/v1/models").status_code == 500
    assert client.get("/v1/models").status_code == 200


def test_slow_first_byte(client: httpx.Client, emulator: EmulatorHandle) -> None:
    emulator.inject("slow_first_byte", delay=0.3)
    start = time.monotonic()
    assert client.post("/v1/chat/completions", json=chat_body()).status_code == 200
    assert time.monotonic() - start >= 0.3
    emulator.inject("slow_first_byte", delay=2)
    with pytest.raises(httpx.ReadTimeout):
        client.post("/v1/chat/completions", json=chat_body(), timeout=0.2)


def test_drop_mid_stream(client: httpx.Client, emulator: EmulatorHandle) -> None:
    emulator.inject("drop", after_chunks=3)
    received = b""
    with (
        pytest.raises(httpx.RemoteProtocolError),
        client.stream("POST", "/v1/chat/completions", json=chat_body(stream=True)) as r,
    ):
        assert r.status_code == 200
        for part in r.iter_bytes():
            received += part
    events = parse_sse(received)
    assert len(events) == 3 and "[DONE]" not in events
    assert client.post("/v1/chat/completions", json=chat_body()).status_code == 200


def test_drop_non_stream(client: httpx.Client, emulator: EmulatorHandle) -> None:
    emulator.inject("drop")
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/v1/chat/completions", json=chat_body())


def test_malformed_bad_json(client: httpx.Client, emulator: EmulatorHandle) -> None:
    emulator.inject("malformed", after_chunks=2, variant="bad_json")
    r = client.post("/v1/chat/completions", json=chat_body(stream=True))
    blocks = r.content.split(b"\n\n")
    assert blocks[2] == b'data: {"id": '
    with pytest.raises(json.JSONDecodeError):
        parse_sse(r.content)
    emulator.inject("malformed")
    r = client.post("/v1/chat/completions", json=chat_body())
    with pytest.raises(json.JSONDecodeError):
        r.json()


def test_malformed_bad_line(client: httpx.Client, emulator: EmulatorHandle) -> None:
    emulator.inject("malformed", after_chunks=1, variant="bad_line")
    r = client.post("/v1/chat/completions", json=chat_body(stream=True))
    bad = r.content.split(b"\n\n")[1]
    assert not bad.startswith(b"data:") and b"\xff" in bad


def test_stream_error(client: httpx.Client, emulator: EmulatorHandle) -> None:
    emulator.inject("stream_error", after_chunks=2, message="boom")
    events = parse_sse(client.post("/v1/chat/completions", json=chat_body(stream=True)).content)
    assert len(events) == 3
    assert events[-1] == {
        "object": "error",
        "message": "boom",
        "type": "internal_error",
        "param": None,
        "code": "3000",
    }


def test_stall(client: httpx.Client, emulator: EmulatorHandle) -> None:
    emulator.inject("stall", after_chunks=2, delay=2)
    with (
        pytest.raises(httpx.ReadTimeout),
        client.stream(
            "POST", "/v1/chat/completions", json=chat_body(stream=True), timeout=0.3
        ) as r,
    ):
        r.read()
    emulator.inject("stall", after_chunks=2, delay=0.2)
    start = time.monotonic()
    events = stream(client)
    assert events[-1] == "[DONE]" and time.monotonic() - start >= 0.2


def test_wrong_content_type(client: httpx.Client, emulator: EmulatorHandle) -> None:
    emulator.inject("wrong_content_type")
    r = client.post("/v1/chat/completions", json=chat_body(stream=True))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")


def test_reject_token(client: httpx.Client, emulator: EmulatorHandle) -> None:
    emulator.inject("reject_token", times=2, token="old-token")
    r = client.post(
        vertex_path(),
        json=chat_body(model=VERTEX_MODEL),
        headers={"Authorization": "Bearer old-token"},
    )
    assert r.status_code == 401 and r.json()["error"]["status"] == "UNAUTHENTICATED"
    r = client.post(
        vertex_path(), json=chat_body(model=VERTEX_MODEL), headers={"Authorization": "Bearer new"}
    )
    assert r.status_code == 200
    assert emulator.faults == []


def test_faults_fifo_and_clear(client: httpx.Client, emulator: EmulatorHandle) -> None:
    emulator.inject("status", status=500)
    emulator.inject("status", status=502)
    assert [f["status"] for f in emulator.faults] == [500, 502]
    assert client.post("/v1/chat/completions", json=chat_body()).status_code == 500
    emulator.clear_faults()
    assert client.post("/v1/chat/completions", json=chat_body()).status_code == 200
    with pytest.raises(ValueError):
        emulator.inject("explode")
    with pytest.raises(ValueError):
        emulator.inject("status", bogus=1)


def test_token_delay(client: httpx.Client, emulator: EmulatorHandle) -> None:
    emulator.set_token_delay(0.01)
    assert emulator.token_delay == 0.01
    start = time.monotonic()
    events = stream(client, max_tokens=10)
    assert len(events) == 12 and time.monotonic() - start >= 0.1


# ---------------------------------------------------------------------------------------------
# control endpoints, concurrency, CLI


def test_control_endpoints(emulator: EmulatorHandle) -> None:
    with httpx.Client(base_url=emulator.url) as c:
        assert c.get("/_emulator/health").json() == {"status": "ok"}
        assert (
            c.post(
                "/_emulator/faults", json={"kind": "status", "status": 503, "times": 2}
            ).status_code
            == 200
        )
        assert c.get("/_emulator/faults").json() == [{"kind": "status", "times": 2, "status": 503}]
        assert c.post("/_emulator/faults", json={"kind": "nope"}).status_code == 400
        r = c.post("/v1/chat/completions", json=chat_body(), headers=AUTH)
        assert r.status_code == 503
        assert c.delete("/_emulator/faults").status_code == 200
        assert c.post("/v1/chat/completions", json=chat_body(), headers=AUTH).status_code == 200
        log = c.get("/_emulator/requests").json()
        assert [e["path"] for e in log] == ["/v1/chat/completions"] * 2
        assert log[0]["body"]["model"] == MISTRAL_MODEL
        assert c.delete("/_emulator/requests").status_code == 200
        assert c.get("/_emulator/requests").json() == []
        assert c.post("/_emulator/config", json={"token_delay": 0.05}).json() == {
            "token_delay": 0.05
        }
        assert emulator.token_delay == 0.05
        assert c.post("/_emulator/config", json={"token_delay": -1}).status_code == 400


def test_concurrent_streams(emulator: EmulatorHandle) -> None:
    emulator.set_token_delay(0.002)
    results: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        try:
            with httpx.Client(base_url=emulator.url, headers=AUTH, timeout=60) as c:
                events = stream(c, text=f"Question number {i}", max_tokens=40)
            with lock:
                results.append(stream_text(events))
        except BaseException as exc:  # pragma: no cover - reported below
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    assert len(results) == 50 and all(results)


def test_serve_context_manager_stops() -> None:
    with serve() as handle:
        url = handle.url
        assert httpx.get(url + "/_emulator/health").status_code == 200
    with pytest.raises(httpx.TransportError):
        httpx.get(url + "/_emulator/health", timeout=2)
    handle.stop()  # idempotent


def test_emulator_is_independent() -> None:
    code = (
        "import sys, mistral_magic.emulator; "
        "print(sorted(m for m in sys.modules if m.startswith('mistral_magic')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = ast.literal_eval(out.stdout)
    assert {m for m in loaded if not m.startswith("mistral_magic.emulator")} <= {
        "mistral_magic",
        "mistral_magic._version",
    }


def test_cli_startup() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "mistral_magic.emulator", "--port", "0", "--token-delay", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.match(
            r"Mistral emulator listening on (http://127\.0\.0\.1:\d+) \(Ctrl-C to stop\)", line
        )
        assert match, line
        assert httpx.get(match.group(1) + "/_emulator/health", timeout=10).json() == {
            "status": "ok"
        }
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# ---------------------------------------------------------------------------------------------
# conformance: the official SDK parses everything the emulator sends


def _sdk_cases() -> list[dict[str, Any]]:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "authors": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["name", "authors"],
        "additionalProperties": False,
    }
    return [
        {},
        {"response_format": {"type": "json_object"}},
        {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "book", "schema": schema, "strict": True},
            }
        },
        {"tools": [WEATHER_TOOL], "tool_choice": "any"},
        {"max_tokens": 3, "n": 2},
    ]


def _check_sdk(chat: Any, model: str) -> None:
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    for kwargs in _sdk_cases():
        response = chat.complete(model=model, messages=messages, **kwargs)
        choice = response.choices[0]
        if "tools" in kwargs:
            assert choice.finish_reason == "tool_calls"
            assert choice.message.tool_calls[0].function.name == "get_weather"
        elif "response_format" in kwargs:
            json.loads(choice.message.content)
        assert response.usage.total_tokens > 0
        text = ""
        finish = None
        calls = []
        with chat.stream(model=model, messages=messages, **kwargs) as events:
            for event in events:
                for c in event.data.choices:
                    if c.index == 0 and isinstance(c.delta.content, str):
                        text += c.delta.content
                    if c.delta.tool_calls:
                        calls.extend(c.delta.tool_calls)
                    if c.index == 0 and c.finish_reason is not None:
                        finish = c.finish_reason
        assert finish == choice.finish_reason
        if "tools" in kwargs:
            assert calls[0].function.name == "get_weather"
        else:
            assert text == choice.message.content


def test_sdk_conformance_gcp(emulator: EmulatorHandle) -> None:
    pytest.importorskip("mistralai")
    from mistralai.gcp.client import MistralGCP

    sdk = MistralGCP(access_token="t", project_id="p", server_url=emulator.url)
    _check_sdk(sdk.chat, VERTEX_MODEL)
    paths = {e["path"].rsplit(":", 1)[-1] for e in emulator.requests}
    assert paths == {"rawPredict", "streamRawPredict"}


def test_sdk_conformance_mistral(emulator: EmulatorHandle) -> None:
    pytest.importorskip("mistralai")
    from mistralai.client import Mistral

    sdk = Mistral(api_key="k", server_url=emulator.url)
    _check_sdk(sdk.chat, MISTRAL_MODEL)
    models = sdk.models.list()
    assert any(getattr(m, "id", None) == MISTRAL_MODEL for m in models.data or [])
    assert emulator.requests[0]["headers"]["authorization"] == "Bearer k"
