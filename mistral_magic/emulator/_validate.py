"""Request validation the way the service does it (pydantic-style 422 ``detail`` items).

Field sets follow the OpenAPI specs plus what the 3.7.0 SDK sends (``min_tokens``, ``top_k``,
logprobs family, ``reasoning_effort``, ``guardrails``); ``safe_prompt``, ``prompt_cache_key`` and
``service_tier`` exist only on api.mistral.ai, so Vertex answers them with ``extra_forbidden``.
"""

from __future__ import annotations

from typing import Any

Detail = dict[str, Any]

COMMON_FIELDS = frozenset(
    {
        "model", "messages", "temperature", "top_p", "max_tokens", "stream", "stop",
        "random_seed", "metadata", "response_format", "tools", "tool_choice",
        "presence_penalty", "frequency_penalty", "n", "prediction", "parallel_tool_calls",
        "prompt_mode", "min_tokens", "repetition_penalty", "top_k", "logprobs", "top_logprobs",
        "prompt_logprobs", "top_prompt_logprobs", "reasoning_effort", "guardrails",
    }
)  # fmt: skip
MISTRAL_ONLY_FIELDS = frozenset({"safe_prompt", "prompt_cache_key", "service_tier"})

_ROLE_FIELDS = {
    "system": {"role", "content"},
    "user": {"role", "content"},
    "assistant": {"role", "content", "tool_calls", "prefix"},
    "tool": {"role", "content", "tool_call_id", "name"},
}
_CHUNK_TYPES = {
    "text", "image_url", "reference", "thinking", "document_url", "file", "input_audio",
    "tool_reference",
}  # fmt: skip
_TOOL_CHOICES = ("auto", "none", "any", "required")
_REASONING = ("none", "minimal", "low", "medium", "high", "xhigh", "max")


class RequestError(Exception):
    """A request the service refuses with 400 ``invalid_request_error`` (not a schema error)."""


def _item(
    kind: str, loc: list[Any], msg: str, value: Any, ctx: dict[str, Any] | None = None
) -> Detail:
    item: Detail = {"type": kind, "loc": loc, "msg": msg, "input": value}
    if ctx is not None:
        item["ctx"] = ctx
    return item


def _literal_msg(options: tuple[str, ...]) -> str:
    quoted = [f"'{o}'" for o in options]
    return ", ".join(quoted[:-1]) + " or " + quoted[-1] if len(quoted) > 1 else quoted[0]


class _Checker:
    def __init__(self) -> None:
        self.errors: list[Detail] = []

    def add(
        self, kind: str, loc: list[Any], msg: str, value: Any, ctx: dict[str, Any] | None = None
    ) -> None:
        self.errors.append(_item(kind, loc, msg, value, ctx))

    def number(
        self,
        loc: list[Any],
        value: Any,
        *,
        integer: bool = False,
        ge: float | None = None,
        le: float | None = None,
        nullable: bool = True,
    ) -> None:
        if value is None:
            if not nullable:
                self.add("float_type", loc, "Input should be a valid number", value)
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            if integer:
                self.add("int_type", loc, "Input should be a valid integer", value)
            else:
                self.add("float_type", loc, "Input should be a valid number", value)
            return
        if integer and isinstance(value, float) and not value.is_integer():
            self.add(
                "int_from_float",
                loc,
                "Input should be a valid integer, got a number with a fractional part",
                value,
            )
            return
        if ge is not None and value < ge:
            shown = int(ge) if float(ge).is_integer() else ge
            self.add(
                "greater_than_equal", loc, f"Input should be greater than or equal to {shown}",
                value, {"ge": shown},
            )  # fmt: skip
        if le is not None and value > le:
            shown = int(le) if float(le).is_integer() else le
            self.add(
                "less_than_equal", loc, f"Input should be less than or equal to {shown}",
                value, {"le": shown},
            )  # fmt: skip

    def boolean(self, loc: list[Any], value: Any, nullable: bool = False) -> None:
        if value is None and nullable:
            return
        if not isinstance(value, bool):
            self.add("bool_type", loc, "Input should be a valid boolean", value)

    def string(self, loc: list[Any], value: Any, nullable: bool = False) -> bool:
        if value is None and nullable:
            return True
        if not isinstance(value, str):
            self.add("string_type", loc, "Input should be a valid string", value)
            return False
        return True

    def mapping(self, loc: list[Any], value: Any, nullable: bool = False) -> bool:
        if value is None and nullable:
            return False
        if not isinstance(value, dict):
            self.add("dict_type", loc, "Input should be a valid dictionary", value)
            return False
        return True

    def extras(
        self, loc: list[Any], value: dict[str, Any], allowed: set[str] | frozenset[str]
    ) -> None:
        for key, item in value.items():
            if key not in allowed:
                self.add("extra_forbidden", [*loc, key], "Extra inputs are not permitted", item)

    def literal(self, loc: list[Any], value: Any, options: tuple[str, ...]) -> None:
        if value not in options:
            self.add(
                "literal_error", loc, f"Input should be {_literal_msg(options)}", value,
                {"expected": _literal_msg(options)},
            )  # fmt: skip

    # ---- composite fields ------------------------------------------------------------------

    def content(self, loc: list[Any], value: Any, nullable: bool) -> None:
        if value is None:
            if not nullable:
                self.add("string_type", loc, "Input should be a valid string", value)
            return
        if isinstance(value, str):
            return
        if not isinstance(value, list):
            self.add("string_type", loc, "Input should be a valid string", value)
            return
        for i, chunk in enumerate(value):
            cloc = [*loc, i]
            if not isinstance(chunk, dict):
                self.add("model_attributes_type", cloc, "Input should be a valid dictionary", chunk)
                continue
            kind = chunk.get("type")
            if kind not in _CHUNK_TYPES:
                self.add(
                    "union_tag_invalid", cloc,
                    f"Input tag '{kind}' found using 'type' does not match any expected tag",
                    chunk, {"discriminator": "'type'", "tag": str(kind)},
                )  # fmt: skip
            elif kind == "text":
                self.string([*cloc, "text", "text"], chunk.get("text"))
            elif kind == "image_url":
                image = chunk.get("image_url")
                if not isinstance(image, str) and not (
                    isinstance(image, dict) and isinstance(image.get("url"), str)
                ):
                    self.add(
                        "string_type",
                        [*cloc, "image_url", "image_url"],
                        "Input should be a valid string",
                        image,
                    )

    def tool_calls(self, loc: list[Any], value: Any) -> None:
        if value is None:
            return
        if not isinstance(value, list):
            self.add("list_type", loc, "Input should be a valid list", value)
            return
        for i, call in enumerate(value):
            cloc = [*loc, i]
            if not self.mapping(cloc, call):
                continue
            self.extras(cloc, call, {"id", "type", "function", "index"})
            if "id" in call:
                self.string([*cloc, "id"], call["id"])
            function = call.get("function")
            if function is None:
                self.add("missing", [*cloc, "function"], "Field required", call)
            elif self.mapping([*cloc, "function"], function):
                self.extras([*cloc, "function"], function, {"name", "arguments"})
                self.string([*cloc, "function", "name"], function.get("name"))
                args = function.get("arguments")
                if not isinstance(args, (str, dict)):
                    self.add(
                        "string_type",
                        [*cloc, "function", "arguments"],
                        "Input should be a valid string",
                        args,
                    )

    def messages(self, value: Any, body: dict[str, Any]) -> None:
        loc: list[Any] = ["body", "messages"]
        if "messages" not in body:
            self.add("missing", loc, "Field required", body)
            return
        if not isinstance(value, list):
            self.add("list_type", loc, "Input should be a valid list", value)
            return
        if not value:
            self.add(
                "too_short", loc, "List should have at least 1 item after validation, not 0", value,
                {"field_type": "List", "min_length": 1, "actual_length": 0},
            )  # fmt: skip
            return
        tags = "'system', 'user', 'assistant', 'tool'"
        for i, message in enumerate(value):
            mloc = [*loc, i]
            if not isinstance(message, dict):
                self.add(
                    "model_attributes_type",
                    mloc,
                    "Input should be a valid dictionary or object to extract fields from",
                    message,
                )
                continue
            role = message.get("role")
            if "role" not in message:
                self.add(
                    "union_tag_not_found", mloc, "Unable to extract tag using discriminator 'role'",
                    message, {"discriminator": "'role'"},
                )  # fmt: skip
                continue
            if role not in _ROLE_FIELDS:
                self.add(
                    "union_tag_invalid", mloc,
                    f"Input tag '{role}' found using 'role' does not match any of the "
                    f"expected tags: {tags}",
                    message, {"discriminator": "'role'", "tag": str(role), "expected_tags": tags},
                )  # fmt: skip
                continue
            rloc = [*mloc, role]
            self.extras(rloc, message, _ROLE_FIELDS[role])
            if role in ("system", "user", "tool") and "content" not in message:
                self.add("missing", [*rloc, "content"], "Field required", message)
            else:
                self.content([*rloc, "content"], message.get("content"), nullable=role != "system")
            if role == "assistant":
                self.tool_calls([*rloc, "tool_calls"], message.get("tool_calls"))
                if "prefix" in message:
                    self.boolean([*rloc, "prefix"], message["prefix"])
                if message.get("content") is None and not message.get("tool_calls"):
                    self.add(
                        "value_error", rloc,
                        "Value error, Assistant message must have either content or "
                        "tool_calls, but not none.",
                        message, {"error": {}},
                    )  # fmt: skip
            if role == "tool":
                self.string([*rloc, "tool_call_id"], message.get("tool_call_id"), nullable=True)
                self.string([*rloc, "name"], message.get("name"), nullable=True)

    def tools(self, value: Any) -> None:
        loc: list[Any] = ["body", "tools"]
        if value is None:
            return
        if not isinstance(value, list):
            self.add("list_type", loc, "Input should be a valid list", value)
            return
        for i, tool in enumerate(value):
            tloc = [*loc, i]
            if not self.mapping(tloc, tool):
                continue
            self.extras(tloc, tool, {"type", "function"})
            if "type" in tool:
                self.literal([*tloc, "type"], tool["type"], ("function",))
            function = tool.get("function")
            floc = [*tloc, "function"]
            if function is None:
                self.add("missing", floc, "Field required", tool)
                continue
            if not self.mapping(floc, function):
                continue
            self.extras(floc, function, {"name", "description", "strict", "parameters"})
            if "name" not in function:
                self.add("missing", [*floc, "name"], "Field required", function)
            else:
                self.string([*floc, "name"], function["name"])
            if "parameters" not in function:
                self.add("missing", [*floc, "parameters"], "Field required", function)
            else:
                self.mapping([*floc, "parameters"], function["parameters"])
            if "description" in function:
                self.string([*floc, "description"], function["description"])
            if "strict" in function:
                self.boolean([*floc, "strict"], function["strict"])

    def tool_choice(self, value: Any) -> None:
        loc: list[Any] = ["body", "tool_choice"]
        if isinstance(value, str):
            if value not in _TOOL_CHOICES:
                self.add(
                    "enum", loc, f"Input should be {_literal_msg(_TOOL_CHOICES)}", value,
                    {"expected": _literal_msg(_TOOL_CHOICES)},
                )  # fmt: skip
            return
        if not isinstance(value, dict):
            self.add(
                "model_type",
                loc,
                "Input should be a valid dictionary or instance of ToolChoice",
                value,
            )
            return
        self.extras(loc, value, {"type", "function"})
        if "type" in value:
            self.literal([*loc, "type"], value["type"], ("function",))
        function = value.get("function")
        if function is None:
            self.add("missing", [*loc, "function"], "Field required", value)
        elif self.mapping([*loc, "function"], function):
            self.extras([*loc, "function"], function, {"name"})
            if "name" not in function:
                self.add("missing", [*loc, "function", "name"], "Field required", function)
            else:
                self.string([*loc, "function", "name"], function["name"])

    def response_format(self, value: Any) -> None:
        loc: list[Any] = ["body", "response_format"]
        if not self.mapping(loc, value):
            return
        self.extras(loc, value, {"type", "json_schema"})
        kind = value.get("type", "text")
        self.literal([*loc, "type"], kind, ("text", "json_object", "json_schema"))
        schema = value.get("json_schema")
        sloc = [*loc, "json_schema"]
        if schema is not None and self.mapping(sloc, schema):
            self.extras(sloc, schema, {"name", "description", "schema", "strict"})
            for key in ("name", "schema"):
                if key not in schema:
                    self.add("missing", [*sloc, key], "Field required", schema)
            if "name" in schema:
                self.string([*sloc, "name"], schema["name"])
            if "schema" in schema:
                self.mapping([*sloc, "schema"], schema["schema"])
            if "description" in schema:
                self.string([*sloc, "description"], schema["description"], nullable=True)
            if "strict" in schema:
                self.boolean([*sloc, "strict"], schema["strict"])
        if kind == "json_schema" and schema is None:
            self.add(
                "value_error", loc,
                "Value error, json_schema is required when type is 'json_schema'",
                value,
                {"error": {}},
            )  # fmt: skip

    def stop(self, value: Any) -> None:
        loc: list[Any] = ["body", "stop"]
        if value is None or isinstance(value, str):
            return
        if not isinstance(value, list):
            self.add("string_type", [*loc, "str"], "Input should be a valid string", value)
            self.add("list_type", [*loc, "list[str]"], "Input should be a valid list", value)
            return
        for i, item in enumerate(value):
            self.string([*loc, "list[str]", i], item)

    def prediction(self, value: Any) -> None:
        loc: list[Any] = ["body", "prediction"]
        if not self.mapping(loc, value):
            return
        self.extras(loc, value, {"type", "content"})
        if "type" in value:
            self.literal([*loc, "type"], value["type"], ("content",))
        if "content" in value:
            self.string([*loc, "content"], value["content"])


def validate(body: Any, *, vertex: bool) -> list[Detail]:
    """Return the 422 ``detail`` items for a chat request body (empty list = valid)."""
    check = _Checker()
    if not isinstance(body, dict):
        check.add(
            "model_attributes_type", ["body"],
            "Input should be a valid dictionary or object to extract fields from", body,
        )  # fmt: skip
        return check.errors
    allowed = COMMON_FIELDS if vertex else COMMON_FIELDS | MISTRAL_ONLY_FIELDS
    check.extras(["body"], body, allowed)
    if "model" not in body:
        check.add("missing", ["body", "model"], "Field required", body)
    else:
        check.string(["body", "model"], body["model"])
    check.messages(body.get("messages"), body)
    number_fields: dict[str, dict[str, Any]] = {
        "temperature": {"ge": 0, "le": 1.5},
        "top_p": {"ge": 0, "le": 1},
        "max_tokens": {"integer": True, "ge": 0},
        "min_tokens": {"integer": True, "ge": 0},
        "random_seed": {"integer": True, "ge": 0},
        "n": {"integer": True, "ge": 1},
        "presence_penalty": {"ge": -2, "le": 2},
        "frequency_penalty": {"ge": -2, "le": 2},
        "repetition_penalty": {},
        "top_k": {"integer": True, "ge": 0},
        "top_logprobs": {"integer": True, "ge": 0},
        "top_prompt_logprobs": {"integer": True, "ge": 0},
    }
    for name, rules in number_fields.items():
        if name in body:
            check.number(["body", name], body[name], **rules)
    for name in ("stream", "parallel_tool_calls"):
        if name in body:
            check.boolean(["body", name], body[name])
    for name in ("logprobs", "prompt_logprobs"):
        if name in body:
            check.boolean(["body", name], body[name], nullable=True)
    if not vertex and "safe_prompt" in body:
        check.boolean(["body", "safe_prompt"], body["safe_prompt"])
    if "metadata" in body:
        check.mapping(["body", "metadata"], body["metadata"], nullable=True)
    if "stop" in body:
        check.stop(body["stop"])
    if "response_format" in body and body["response_format"] is not None:
        check.response_format(body["response_format"])
    if "tools" in body:
        check.tools(body["tools"])
    if "tool_choice" in body and body["tool_choice"] is not None:
        check.tool_choice(body["tool_choice"])
    if "prediction" in body and body["prediction"] is not None:
        check.prediction(body["prediction"])
    if "prompt_mode" in body:
        check.string(["body", "prompt_mode"], body["prompt_mode"], nullable=True)
    if body.get("reasoning_effort") is not None:
        check.literal(["body", "reasoning_effort"], body["reasoning_effort"], _REASONING)
    if body.get("guardrails") is not None and not isinstance(body["guardrails"], list):
        check.add(
            "list_type", ["body", "guardrails"], "Input should be a valid list", body["guardrails"]
        )
    if "prompt_cache_key" in body and not vertex:
        check.string(["body", "prompt_cache_key"], body["prompt_cache_key"], nullable=True)
    if body.get("service_tier") is not None and not vertex:
        check.literal(["body", "service_tier"], body["service_tier"], ("auto", "standard_only"))
    return check.errors


def check_semantics(body: dict[str, Any]) -> None:
    """Raise :class:`RequestError` for well-typed requests the service still refuses (400)."""
    messages: list[dict[str, Any]] = body["messages"]
    for message in messages[:-1]:
        if message.get("role") == "assistant" and message.get("prefix"):
            raise RequestError(
                "Prefix is only allowed on the last message, as an assistant message."
            )
    last = messages[-1]
    role = last.get("role")
    if role == "system" or (role == "assistant" and not last.get("prefix")):
        raise RequestError(
            "Expected last role User or Tool (or Assistant with prefix True) for serving"
            f" but got {role}"
        )
    tools = body.get("tools") or []
    names = {str((t.get("function") or {}).get("name")) for t in tools if isinstance(t, dict)}
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        wanted = str((choice.get("function") or {}).get("name"))
        if wanted not in names:
            raise RequestError(f"Tool choice function '{wanted}' is not in the list of tools.")
    elif choice in ("any", "required") and not names:
        raise RequestError(f"Tool choice '{choice}' requires at least one tool.")
