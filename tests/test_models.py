"""Wire models: SDK-exact request bodies, strict request validation, tolerant responses."""

from __future__ import annotations

import json
from typing import Any

import pydantic
import pytest

from mistral_magic import models as m
from mistral_magic.errors import RequestValidationError

httpx2 = pytest.importorskip("httpx2")
gcp_client = pytest.importorskip("mistralai.gcp.client")
main_client = pytest.importorskip("mistralai.client")

USER = {"role": "user", "content": "hi"}
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
SCHEMA = {
    "type": "object",
    "properties": {"title": {"type": "string"}},
    "required": ["title"],
    "additionalProperties": False,
}

# ------------------------------------------------------------------ capturing the official SDK


def _sdk_bodies(backend: str, stream: bool, kwargs: dict[str, Any]) -> bytes:
    """The exact request body the official SDK 3.7.0 sends for ``kwargs``."""
    seen: list[bytes] = []

    def handler(request: Any) -> Any:
        seen.append(request.content)
        if stream:
            return httpx2.Response(
                200, headers={"content-type": "text/event-stream"}, content=b"data: [DONE]\n\n"
            )
        return httpx2.Response(
            200,
            json={"id": "x", "object": "chat.completion", "model": "m", "usage": {},
                  "created": 1, "choices": []},
        )

    http = httpx2.Client(transport=httpx2.MockTransport(handler))
    if backend == "vertex":
        client: Any = gcp_client.MistralGCP(access_token="t", project_id="p", client=http)
    else:
        client = main_client.Mistral(api_key="k", client=http)
    if stream:
        with client.chat.stream(**kwargs) as events:
            for _ in events:
                pass
    else:
        client.chat.complete(**kwargs)
    assert len(seen) == 1
    return seen[0]


CASES: dict[str, dict[str, Any]] = {
    "minimal": {"messages": [USER]},
    "all_scalars": {
        "messages": [USER],
        "temperature": 0.7,
        "top_p": 0.9,
        "max_tokens": 100,
        "min_tokens": 1,
        "stop": "END",
        "random_seed": 42,
        "metadata": {"a": 1, "b": "x"},
        "presence_penalty": 0.5,
        "frequency_penalty": -0.5,
        "n": 2,
        "parallel_tool_calls": False,
        "prompt_mode": "reasoning",
        "reasoning_effort": "high",
    },
    "integers_for_floats": {"messages": [USER], "temperature": 1, "top_p": 0},
    "nullable_nones": {
        "messages": [USER],
        "temperature": None,
        "top_p": None,
        "max_tokens": None,
        "min_tokens": None,
        "stop": None,
        "random_seed": None,
        "metadata": None,
        "tools": None,
        "presence_penalty": None,
        "frequency_penalty": None,
        "n": None,
        "prompt_mode": None,
        "reasoning_effort": None,
    },
    "non_nullable_nones": {
        "messages": [USER],
        "response_format": None,
        "tool_choice": None,
        "prediction": None,
        "parallel_tool_calls": None,
    },
    "stop_list": {"messages": [USER], "stop": ["\n\n", "END"]},
    "all_roles": {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {"id": "abcDEF123", "type": "function", "index": 0,
                     "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}},
                ],
            },
            {"role": "tool", "content": "sunny", "tool_call_id": "abcDEF123",
             "name": "get_weather"},
            {"role": "assistant", "content": "It is sunny."},
            {"role": "user", "content": "Thanks"},
        ],
    },
    "assistant_defaults": {
        "messages": [
            USER,
            {"role": "assistant",
             "tool_calls": [{"function": {"name": "f", "arguments": {"x": 1}}}]},
            {"role": "tool", "content": None, "name": None},
            {"role": "assistant", "content": None, "tool_calls": None},
            {"role": "assistant", "content": "Once upon", "prefix": True},
        ],
    },
    "chunks": {
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "sys"}]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": "https://example.com/a.png"},
                    {"type": "image_url",
                     "image_url": {"url": "data:image/png;base64,AAAA", "detail": "high"}},
                    {"type": "image_url", "image_url": {"url": "https://e.com/b.png"}},
                    {"type": "image_url",
                     "image_url": {"url": "https://e.com/c.png", "detail": None}},
                ],
            },
            {"role": "user", "content": None},
        ],
    },
    "tools_auto": {"messages": [USER], "tools": [TOOL], "tool_choice": "auto"},
    "tools_any": {"messages": [USER], "tools": [TOOL], "tool_choice": "any"},
    "tools_none": {"messages": [USER], "tools": [TOOL], "tool_choice": "none"},
    "tools_required": {"messages": [USER], "tools": [TOOL], "tool_choice": "required"},
    "tool_choice_object": {
        "messages": [USER],
        "tools": [
            {"function": {"name": "f", "parameters": {}, "strict": True}},
            {"type": "function", "function": {"name": "g", "parameters": {}, "description": None}},
        ],
        "tool_choice": {"type": "function", "function": {"name": "f"}},
    },
    "tool_choice_object_no_type": {
        "messages": [USER], "tools": [TOOL], "tool_choice": {"function": {"name": "get_weather"}},
    },
    "format_text": {"messages": [USER], "response_format": {"type": "text"}},
    "format_json_object": {"messages": [USER], "response_format": {"type": "json_object"}},
    "format_json_schema": {
        "messages": [USER],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "book", "schema": SCHEMA, "strict": True},
        },
    },
    "format_json_schema_nulls": {
        "messages": [USER],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "book", "schema": SCHEMA, "description": None,
                            "strict": None},
        },
    },
    "format_json_schema_described": {
        "messages": [USER],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "book", "schema": SCHEMA, "description": "A book"},
        },
    },
    "prediction": {"messages": [USER], "prediction": {"type": "content", "content": "abc"}},
    "prediction_defaults": {"messages": [USER], "prediction": {}},
    "unicode": {"messages": [{"role": "user", "content": "café ☕ 日本"}], "stop": "é"},
}


def _ours(backend: str, stream: bool, kwargs: dict[str, Any]) -> bytes:
    request = m.build_request(stream=stream, backend=backend, **kwargs)  # type: ignore[arg-type]
    assert isinstance(request, m.ChatCompletionStreamRequest if stream else m.ChatCompletionRequest)
    return json.dumps(request.to_wire(), separators=(",", ":")).encode()


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_body_matches_official_gcp_sdk(case: str, stream: bool) -> None:
    kwargs = {"model": "mistral-small-2503", **CASES[case]}
    sdk = _sdk_bodies("vertex", stream, kwargs)
    ours = _ours("vertex", stream, kwargs)
    assert json.loads(ours) == json.loads(sdk)
    assert ours == sdk  # same key order and separators too: byte-identical


@pytest.mark.parametrize(
    "extra", [{}, {"safe_prompt": True}, {"safe_prompt": False}], ids=["none", "true", "false"]
)
@pytest.mark.parametrize("case", ["minimal", "all_scalars", "all_roles", "format_json_schema"])
def test_body_matches_official_main_sdk(case: str, extra: dict[str, Any]) -> None:
    kwargs = {"model": "mistral-small-latest", **CASES[case], **extra}
    for stream in (False, True):
        sdk = _sdk_bodies("mistral", stream, kwargs)
        ours = _ours("mistral", stream, kwargs)
        assert json.loads(ours) == json.loads(sdk)


def test_sdk_model_objects_are_accepted_and_serialise_identically() -> None:
    gm = gcp_client.models
    sdk_kwargs: dict[str, Any] = {
        "model": "mistral-small-2503",
        "messages": [
            gm.SystemMessage(content="sys"),
            gm.UserMessage(content=[gm.TextChunk(text="a"),
                                    gm.ImageURLChunk(image_url=gm.ImageURL(url="https://x"))]),
            gm.AssistantMessage(content=None, tool_calls=[
                gm.ToolCall(function=gm.FunctionCall(name="f", arguments="{}"))]),
            gm.ToolMessage(content="r", tool_call_id="abc"),
        ],
        "tools": [gm.Tool(function=gm.Function(name="f", parameters={}))],
        "tool_choice": gm.ToolChoice(function=gm.FunctionName(name="f")),
        "response_format": gm.ResponseFormat(
            type="json_schema", json_schema=gm.JSONSchema(name="n", schema_definition=SCHEMA)
        ),
        "prediction": gm.Prediction(content="p"),
    }
    sdk = _sdk_bodies("vertex", False, sdk_kwargs)
    assert json.loads(_ours("vertex", False, sdk_kwargs)) == json.loads(sdk)


def test_our_model_objects_serialise_like_dicts() -> None:
    as_models = m.build_request(
        stream=False,
        backend="vertex",
        model="mistral-small-2503",
        messages=[
            m.SystemMessage(content="sys"),
            m.UserMessage(content=[m.TextChunk(text="a"), m.ImageURLChunk(image_url="https://x")]),
            m.AssistantMessage(tool_calls=[m.ToolCall(function=m.FunctionCall(name="f",
                                                                              arguments="{}"))]),
            m.ToolMessage(content="r", tool_call_id="abc"),
        ],
        tools=[m.Tool(function=m.Function(name="f", parameters={}))],
        tool_choice=m.ToolChoice(function=m.FunctionName(name="f")),
        response_format=m.ResponseFormat(
            type="json_schema", json_schema=m.JSONSchema(name="n", schema_definition=SCHEMA)
        ),
        prediction=m.Prediction(content="p"),
    )
    as_dicts = m.build_request(
        stream=False,
        backend="vertex",
        model="mistral-small-2503",
        messages=[
            {"role": "system", "content": "sys"},
            {"role": "user", "content": [{"type": "text", "text": "a"},
                                         {"type": "image_url", "image_url": "https://x"}]},
            {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "content": "r", "tool_call_id": "abc"},
        ],
        tools=[{"function": {"name": "f", "parameters": {}}}],
        tool_choice={"type": "function", "function": {"name": "f"}},
        response_format={"type": "json_schema", "json_schema": {"name": "n", "schema": SCHEMA}},
        prediction={"content": "p"},
    )
    assert as_models.to_wire() == as_dicts.to_wire()
    assert as_dicts.to_wire()["response_format"]["json_schema"]["schema"] == SCHEMA


def test_json_schema_attribute_and_alias() -> None:
    schema = m.JSONSchema(name="n", schema=SCHEMA)
    assert schema.schema_definition == SCHEMA
    assert m.JSONSchema(name="n", schema_definition=SCHEMA).to_wire() == {"name": "n",
                                                                          "schema": SCHEMA}


def test_conveniences_string_response_format_and_prediction() -> None:
    request = m.build_request(
        stream=False, backend="vertex", model="x", messages=[USER],
        response_format="json_object", prediction="expected",
    )
    wire = request.to_wire()
    assert wire["response_format"] == {"type": "json_object"}
    assert wire["prediction"] == {"type": "content", "content": "expected"}


def test_unset_sentinel_is_dropped_and_stream_flag_wins() -> None:
    request = m.build_request(
        stream=True, backend="mistral", model="x", messages=[USER],
        temperature=m.UNSET, safe_prompt=m.UNSET,
    )
    assert request.to_wire() == {"model": "x", "messages": [USER | {}], "stream": True}
    assert isinstance(request, m.ChatCompletionStreamRequest)


def test_response_message_can_be_sent_back() -> None:
    response = m.ChatCompletionResponse.model_validate(
        {
            "id": "1", "object": "chat.completion", "model": "m", "created": 1,
            "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": "", "prefix": False, "reasoning": "kept",
                "tool_calls": [{"id": "D681PevKs", "type": "function", "index": 0,
                                "function": {"name": "f", "arguments": "{}"}}]}}],
        }
    )
    message = response.choices[0].message
    assert message is not None and message.model_extra == {"reasoning": "kept"}
    request = m.build_request(stream=False, backend="vertex", model="x",
                              messages=[USER, message, {"role": "tool", "content": "ok"}])
    sent = request.to_wire()["messages"][1]
    assert "reasoning" not in sent  # unknown response keys never go back on the wire
    assert sent["tool_calls"][0]["id"] == "D681PevKs"


# ------------------------------------------------------------------ validation errors


def _problem(**kwargs: Any) -> RequestValidationError:
    args: dict[str, Any] = {"model": "m", "messages": [USER], **kwargs}
    with pytest.raises(RequestValidationError) as info:
        m.build_request(stream=False, backend="mistral", **args)
    return info.value


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"temperature": 2.0}, "temperature must be between 0 and 1.5 (got 2.0)"),
        ({"temperature": -0.1}, "temperature must be between 0 and 1.5 (got -0.1)"),
        ({"top_p": 1.5}, "top_p must be between 0 and 1 (got 1.5)"),
        ({"max_tokens": -1}, "max_tokens must be >= 0 (got -1)"),
        ({"min_tokens": -1}, "min_tokens must be >= 0 (got -1)"),
        ({"random_seed": -5}, "random_seed must be >= 0 (got -5)"),
        ({"n": 0}, "n must be >= 1 (got 0)"),
        ({"presence_penalty": 3}, "presence_penalty must be between -2 and 2 (got 3)"),
        ({"frequency_penalty": -2.5}, "frequency_penalty must be between -2 and 2 (got -2.5)"),
        ({"temperature": "hot"}, "temperature must be a number (got 'hot')"),
        ({"stop": 3}, "stop must be a string or a list of strings (got 3)"),
        ({"tool_choice": "sometimes"}, "tool_choice must be 'auto', 'none', 'any', 'required'"),
        ({"tool_choice": {"type": "function", "function": {}}},
         "tool_choice.function.name is required"),
        ({"max_completion_tokens": 5}, "max_completion_tokens is an OpenAI parameter"),
        ({"temprature": 0.5}, "temprature is not a parameter of the chat API (did you mean "
                              "temperature?)"),
        ({"messages": [{"role": "bot", "content": "x"}]},
         "messages[0].role must be one of 'system', 'user', 'assistant', 'tool' (got 'bot')"),
        ({"messages": [{"content": "x"}]}, "messages[0].role is required"),
        ({"messages": [USER, {"role": "user", "content": 5}]},
         "messages[1].content must be a string, None or a list of content chunks (got 5)"),
        ({"messages": [{"role": "user"}]}, "messages[0].content is required"),
        ({"messages": [{"role": "system", "content": None}]},
         "messages[0].content must be a string, None or a list"),
        ({"messages": [{"role": "user", "content": [{"type": "text"}]}]},
         "messages[0].content[0].text is required"),
        ({"messages": [{"role": "assistant", "content": "x", "tool_call": []}]},
         "messages[0].tool_call is not an accepted field (did you mean tool_calls?)"),
        ({"messages": [{"role": "user", "content": "x", "name": "bob"}]},
         "messages[0].name is not an accepted field"),
        ({"messages": "hello"}, "messages must be a list of messages"),
        ({"response_format": {"type": "xml"}}, "response_format.type must be"),
        ({"response_format": "json_schema"},
         "json_schema is required when type is 'json_schema'"),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}},
         "response_format.json_schema.schema is required"),
        ({"tools": [{"type": "function", "function": {"name": "f"}}]},
         "tools[0].function.parameters is required"),
        ({"prompt_mode": "fast"}, "prompt_mode must be 'reasoning' (got 'fast')"),
        ({"model": None}, "model must be a string (got None)"),
    ],
)
def test_validation_error_lines(kwargs: dict[str, Any], expected: str) -> None:
    exc = _problem(**kwargs)
    text = str(exc)
    assert expected in text
    assert "\n" not in text
    assert "pydantic" not in text and "errors.pydantic.dev" not in text
    assert len(exc.problems) == 1, exc.problems
    assert isinstance(exc, ValueError)


def test_validation_error_keeps_pydantic_cause_and_lists_every_problem() -> None:
    exc = _problem(temperature=9, top_p=-1, bogus=1)
    assert isinstance(exc.__cause__, pydantic.ValidationError)
    assert len(exc.problems) == 3
    assert str(exc).count(";") == 2


def test_missing_model_and_messages() -> None:
    with pytest.raises(RequestValidationError) as info:
        m.build_request(stream=False, backend="vertex")
    assert info.value.problems == ["model is required", "messages is required"]


def test_safe_prompt_rejected_on_vertex_only() -> None:
    with pytest.raises(RequestValidationError, match="Vertex"):
        m.build_request(stream=False, backend="vertex", model="x", messages=[USER],
                        safe_prompt=True)
    with pytest.raises(RequestValidationError, match="safe_prompt"):
        m.build_request(stream=True, backend="vertex", model="x", messages=[USER],
                        safe_prompt=False)
    # None means "not set" for this non-nullable field, as in the SDK: nothing is sent.
    unset = m.build_request(stream=False, backend="vertex", model="x", messages=[USER],
                            safe_prompt=None)
    assert "safe_prompt" not in unset.to_wire()
    ok = m.build_request(stream=False, backend="mistral", model="x", messages=[USER],
                         safe_prompt=True)
    assert ok.to_wire()["safe_prompt"] is True


def test_direct_construction_of_request_models_is_strict() -> None:
    with pytest.raises(pydantic.ValidationError):
        m.UserMessage(content="x", bogus=1)  # type: ignore[call-arg]
    with pytest.raises(pydantic.ValidationError):
        m.ChatCompletionRequest(model="x", messages=[], temperature=3)


def test_unknown_content_chunks_pass_through() -> None:
    chunk = {"type": "document_url", "document_url": "https://x/doc.pdf"}
    request = m.build_request(stream=False, backend="mistral", model="x",
                              messages=[{"role": "user", "content": [chunk]}])
    assert request.to_wire()["messages"][0]["content"] == [chunk]


# ------------------------------------------------------------------ responses


def _completion(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "cmpl-1", "object": "chat.completion", "model": "mistral-small-2503",
        "created": 1702256327,
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "Hello", "prefix": False}}],
    }
    body.update(overrides)
    return body


def test_completion_response_parses() -> None:
    response = m.ChatCompletionResponse.model_validate_json(json.dumps(_completion()))
    assert response.choices[0].message is not None
    assert response.choices[0].message.content == "Hello"
    assert response.usage.total_tokens == 15


@pytest.mark.parametrize("key", ["id", "object", "model", "usage", "created", "choices"])
def test_completion_response_requires_what_the_sdk_requires(key: str) -> None:
    body = _completion()
    del body[key]
    with pytest.raises(pydantic.ValidationError):
        m.ChatCompletionResponse.model_validate(body)


def test_completion_response_is_tolerant() -> None:
    body = _completion(
        extra_top="kept",
        usage={"prompt_tokens": 1, "num_cached_tokens": 0,
               "prompt_tokens_details": {"cached_tokens": 0}},
        choices=[
            {"index": 0, "finish_reason": "brand_new_reason", "message": {
                "role": "assistant",
                "content": [{"type": "thinking", "thinking": [{"type": "text", "text": "hm"}]},
                            {"type": "text", "text": "answer"},
                            {"type": "text", "text": "x", "new_key": 1}],
                "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}]}},
        ],
    )
    response = m.ChatCompletionResponse.model_validate(body)
    assert response.model_extra == {"extra_top": "kept"}
    assert response.usage.total_tokens == 0 and response.usage.completion_tokens == 0
    assert response.usage.model_extra is not None
    assert response.usage.model_extra["num_cached_tokens"] == 0
    choice = response.choices[0]
    assert choice.finish_reason == "brand_new_reason"
    assert choice.message is not None and isinstance(choice.message.content, list)
    thinking, text, extended = choice.message.content
    assert isinstance(thinking, dict) and thinking["type"] == "thinking"
    assert isinstance(text, m.TextChunk) and text.text == "answer"
    assert isinstance(extended, m.TextChunk) and extended.model_extra == {"new_key": 1}
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.function.arguments == {"a": 1} and call.id == "null" and call.index == 0


def test_usage_nulls_read_as_zero() -> None:
    usage = m.UsageInfo.model_validate({"prompt_tokens": None, "total_tokens": 3})
    assert usage.prompt_tokens == 0 and usage.total_tokens == 3


CHUNK = (
    '{"id":"5906","object":"chat.completion.chunk","created":1764258570,'
    '"model":"mistral-large-latest","choices":[{"index":0,"delta":{"role":"assistant",'
    '"content":""},"finish_reason":null}],"usage":null}'
)


def test_chunk_fast_path_and_event_shape() -> None:
    chunk = m.CompletionChunk.model_validate_json(CHUNK)
    event = m.CompletionEvent(data=chunk)
    assert event.data.choices[0].delta.content == ""
    assert event.data.choices[0].delta.role == "assistant"
    assert event.data.usage is None and event.data.created == 1764258570


@pytest.mark.parametrize(
    "payload",
    [
        '{"id":"i","model":"m","choices":[{"index":0,"delta":{"role":null,"content":"x"},'
        '"finish_reason":null}]}',
        '{"id":"i","model":"m","choices":[]}',
        '{"id":"i","model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],'
        '"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}',
        '{"id":"i","model":"m","choices":[{"index":0,"delta":{"content":"x"}}]}',
        '{"id":"i","model":"m","object":"chat.completion.chunk","created":1,"new":1,'
        '"choices":[{"index":0,"delta":{"content":[{"type":"text","text":"a"},'
        '{"type":"thinking","thinking":[]}],"new":2},"finish_reason":"weird","logprobs":null}]}',
        '{"id":"i","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"id":"abcDEF123",'
        '"function":{"name":"get_weather","arguments":"{\\"city\\": \\"Paris\\"}"},"index":0}]},'
        '"finish_reason":"tool_calls"}]}',
    ],
    ids=["role_null_no_object", "no_choices", "usage", "no_finish_key", "unknowns", "tool_call"],
)
def test_chunk_tolerance(payload: str) -> None:
    chunk = m.CompletionChunk.model_validate_json(payload)
    assert chunk.id == "i"


def test_error_object_is_not_a_chunk() -> None:
    with pytest.raises(pydantic.ValidationError):
        m.CompletionChunk.model_validate_json('{"object":"error","message":"boom"}')


def test_model_list_is_tolerant() -> None:
    listing = m.ModelList.model_validate(
        {"object": "list", "data": [
            {"id": "mistral-small-latest", "object": "model", "created": 1,
             "owned_by": "mistralai", "type": "base", "name": "mistral-small-2506",
             "max_context_length": 131072, "aliases": ["mistral-small-2506"],
             "deprecation": None, "default_model_temperature": 0.3,
             "capabilities": {"completion_chat": True, "vision": True, "new_cap": True}},
            {"id": "ft:x", "type": "fine-tuned", "job": "j", "root": "r", "archived": False,
             "capabilities": {}},
            {"id": "bare"},
        ]}
    )
    assert [card.id for card in listing.data] == ["mistral-small-latest", "ft:x", "bare"]
    assert listing.data[0].capabilities.vision is True
    assert listing.data[1].type == "fine-tuned" and listing.data[2].capabilities.vision is False
    assert m.ModelList.model_validate({}).data == []


def test_public_names_exist() -> None:
    for name in m.__all__:
        assert hasattr(m, name), name
    assert m.__all__ == sorted(m.__all__, key=lambda s: (s != "UNSET", s))
