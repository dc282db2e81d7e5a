"""The chat panel: an ipywidgets front door over the same ``session`` and ``render`` layers.

``%mistral panel`` (or ``mistral_magic.ChatPanel()``) shows controls for every request
parameter, a prompt box, and a transcript that streams each answer live. Send schedules the turn
as an asyncio task on the kernel's running loop, so the cell returns at once and Stop (a comm
message) can cancel the task. The task writes only to widget traits, never to cell output; after
each turn it refreshes a static Markdown transcript (a display handle created when the panel was
displayed), so a notebook saved without widget state still shows the conversation.

Everything the user or the model wrote is HTML-escaped before it reaches a widget: the panel
turns Markdown into HTML with its own small converter, which emits only its own tags.

Keyboard: Enter in the one-line prompt box sends (the ``Text`` widget's submit event). The
multi-line box (the toggle left of it) sends with the button only: ipywidgets' ``Textarea``
reports no key events to the kernel, and JupyterLab runs no scripts from widget HTML.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import inspect
import keyword
import re
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, cast

import ipywidgets as W
from IPython.display import display

from . import backends
from ._mdhtml import markdown_html, neutralize_html
from .config import RESULT_VAR, TOOL_CHOICES
from .errors import MistralError, RequestValidationError
from .models import build_request
from .render import MarkdownBlocksView, conversation_markdown, footer_text
from .session import (
    ChatResult,
    Conversation,
    TurnFailed,
    TurnInterrupted,
    TurnMeta,
    TurnRequest,
    content_text,
    conversations,
    run_turn_async,
    schema_response_format,
)
from .tools import ToolError, ToolRegistry, ToolResult

__all__ = ["ChatPanel", "markdown_html"]

FORMAT_TEXT = "text"
FORMAT_JSON = "JSON object"
_SCHEMA_PREFIX = "schema: "

# -- the panel --------------------------------------------------------------------------------

_CSS = """<style>
.mm-panel { max-width: 1000px; }
.mm-panel .widget-html-content { line-height: 1.45; }
/* Live, the static transcript displayed right after the panel would repeat the conversation:
   hide it. Viewers without the widget (GitHub, nbviewer, exports) never load this rule. */
.jp-OutputArea-child:has(.mm-panel) + .jp-OutputArea-child { display: none; }
.mm-panel .mm-title { font-weight: 600; font-size: 1.1em; }
.mm-panel .mm-transcript { border: 1px solid var(--jp-border-color2, #ddd); border-radius: 6px;
  padding: 6px 10px; min-height: 40px; }
.mm-panel .mm-turn { margin: 4px 0 10px 0; }
.mm-panel .mm-user { background: var(--jp-layout-color2, #f3f3f3); border-radius: 6px;
  padding: 4px 10px; white-space: pre-wrap; }
.mm-panel .mm-role { font-weight: 600; color: var(--jp-ui-font-color2, #555); }
.mm-panel .mm-answer { padding: 2px 10px; }
.mm-panel .mm-md p { margin: 4px 0; }
.mm-panel .mm-md h1, .mm-panel .mm-md h2, .mm-panel .mm-md h3 { font-size: 1.1em; margin: 6px 0; }
.mm-panel .mm-md pre { background: var(--jp-cell-editor-background, #f7f7f7); padding: 6px;
  border-radius: 4px; overflow-x: auto; }
.mm-panel .mm-md table { border-collapse: collapse; }
.mm-panel .mm-md th, .mm-panel .mm-md td { border: 1px solid var(--jp-border-color2, #ccc);
  padding: 2px 6px; }
.mm-panel .mm-tool { font-size: 0.92em; }
.mm-panel .mm-tool pre { margin: 2px 0; white-space: pre-wrap; }
.mm-panel .mm-error { color: var(--jp-error-color1, #c00); }
.mm-panel .mm-hint { color: var(--jp-ui-font-color2, #555); }
.mm-panel .mm-usage { color: var(--jp-ui-font-color2, #777); font-size: 0.85em; }
.mm-panel .mm-stopped { color: var(--jp-warn-color1, #b60); font-weight: 600; }
.mm-panel .mm-invalid { color: var(--jp-error-color1, #c00); }
.mm-panel .mm-status-line { color: var(--jp-ui-font-color2, #555); }
</style>"""


def _html(value: str, *classes: str) -> Any:
    widget = W.HTML(value=value)
    for cls in classes:
        widget.add_class(cls)
    return widget


def _num(text: str, kind: type[int] | type[float], name: str) -> int | float | None:
    text = text.strip()
    if not text:
        return None
    try:
        return kind(text)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise _Invalid(f"{name}: {text!r} is not {what}") from None


def _stops(text: str) -> list[str]:
    """One stop sequence per line; ``\\n`` and ``\\t`` in a line stand for those characters."""
    return [
        line.replace("\\n", "\n").replace("\\t", "\t") for line in text.split("\n") if line.strip()
    ]


class _Invalid(ValueError):
    """A control holds a value that cannot be sent; the message says which and why."""


class _TurnView:
    """The session observer for one turn: answer blocks, tool calls and errors as widgets.

    Markdown blocks finished by :class:`MarkdownBlocksView` are frozen into HTML widgets (one
    per block, or several per widget when the stream is fast); only the open widget is
    updated, paced by ``render.Pacer``, so each update sends a few hundred bytes whatever the
    length of the conversation and the bytes stay linear in the answer at any token rate.
    """

    def __init__(self, panel: ChatPanel, box: Any, interval: float) -> None:
        self.panel = panel
        self.box = box
        self.interval = interval
        self.meta: TurnMeta | None = None
        self.updates = 0
        self._blocks: dict[int, Any] = {}
        self._segment = MarkdownBlocksView(self._publish, interval=interval)

    def _publish(self, index: int, markdown: str, final: bool) -> None:
        value = f'<div class="mm-md">{markdown_html(markdown)}</div>'
        widget = self._blocks.get(index)
        if widget is None:
            if not markdown.strip():
                return
            widget = _html(value, "mm-block")
            self._blocks[index] = widget
            self.box.children = (*self.box.children, widget)
        elif widget.value != value:
            widget.value = value
        self.updates += 1

    def _close_segment(self) -> None:
        self._segment.done(None)
        self._blocks = {}
        self._segment = MarkdownBlocksView(self._publish, interval=self.interval)

    def poll(self) -> None:
        self._segment.poll()

    def append(self, widget: Any) -> None:
        self.box.children = (*self.box.children, widget)

    # TurnObserver
    def start(self, meta: TurnMeta) -> None:
        self.meta = meta
        self.panel._set_status("generating…")

    def delta(self, text: str) -> None:
        self._segment.delta(text)

    def tool_call(self, result: ToolResult) -> None:
        self._close_segment()
        self.append(_html(_tool_html(result), "mm-tool"))
        self.panel._set_status("generating…")

    def retrying(self, attempt: int, delay: float, reason: str) -> None:
        self.panel._set_status(f"{reason}: retrying in {delay:.1f} s (attempt {attempt})…")

    def error(self, message: str) -> None:
        self._close_segment()

    def done(self, result: ChatResult) -> None:
        self._close_segment()


def _tool_html(result: ToolResult) -> str:
    import json

    args = json.dumps(result.arguments, ensure_ascii=False, indent=2)
    content = result.content if len(result.content) <= 4000 else result.content[:4000] + "…"
    outcome = "ok" if result.ok else "error"
    call = ", ".join(
        f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in result.arguments.items()
    )
    call = call if len(call) <= 120 else call[:119] + "…"
    return (
        f"<details><summary>🔧 <code>{html.escape(result.name)}({html.escape(call)})</code> → "
        f"{outcome} · {result.duration_s:.2f} s</summary>"
        f"<div>arguments</div><pre>{html.escape(args)}</pre>"
        f"<div>result</div><pre>{html.escape(content)}</pre></details>"
    )


def _message_html(message: Mapping[str, Any]) -> tuple[str, str]:
    """(css class, html) for one stored message of a conversation."""
    role = str(message.get("role", ""))
    text = content_text(message.get("content"))
    if role == "user":
        return "mm-user", f'<span class="mm-role">You</span>\n{html.escape(text)}'
    if role == "tool":
        name = html.escape(str(message.get("name") or "tool"))
        return "mm-tool", (
            f"<details><summary>🔧 result of <code>{name}</code></summary>"
            f"<pre>{html.escape(text)}</pre></details>"
        )
    calls = ""
    for call in message.get("tool_calls") or []:
        function = call.get("function", {}) if isinstance(call, Mapping) else {}
        args = function.get("arguments", "")
        calls += (
            f'<div class="mm-tool">🔧 <code>{html.escape(str(function.get("name", "?")))}'
            f"({html.escape(str(args)[:200])})</code></div>"
        )
    return "mm-block", f'<div class="mm-md">{markdown_html(text)}</div>{calls}'


class ChatPanel:
    """An ipywidgets chat panel sharing settings and conversations with ``%%mistral``.

    ``panel.submit(prompt)`` sends like the Send button; ``await panel.wait()`` returns the
    turn's :class:`~mistral_magic.session.ChatResult`; ``panel.messages`` is the conversation.
    """

    def __init__(
        self,
        magics: Any = None,
        *,
        conversation: str = "default",
        namespace: dict[str, Any] | None = None,
        update_interval: float | None = None,
    ) -> None:
        self.magics = magics if magics is not None else _find_magics()
        shell = getattr(self.magics, "shell", None)
        self.namespace: dict[str, Any] = (
            namespace if namespace is not None else shell.user_ns if shell is not None else {}
        )
        self.update_interval = (
            update_interval
            if update_interval is not None
            else float(getattr(self.magics, "update_interval", 0.1) or 0.1)
        )
        self.last_result: ChatResult | None = None
        self._task: asyncio.Task[ChatResult | None] | None = None
        self._models_task: asyncio.Task[None] | None = None
        self._mirrors: list[Any] = []
        self._shown_keys: list[str] = []
        self._build_widgets(conversation)
        self.refresh()
        self._validate_settings()

    # -- widgets ----------------------------------------------------------------------------

    def _build_widgets(self, conversation: str) -> None:
        settings = self._settings(None)
        backend: backends.Backend = settings.backend if settings is not None else "vertex"
        model = backends.resolve_model(settings["model"] if settings else None, backend)
        wide = W.Layout(width="auto")
        style = {"description_width": "110px"}

        self.backend_w = W.Dropdown(
            options=list(backends.BACKENDS),
            value=backend,
            description="Backend",
            style={"description_width": "60px"},
            layout=W.Layout(width="170px"),
        )
        self.model_w = W.Combobox(
            options=self._fallback_models(backend),
            value=model,
            description="Model",
            placeholder="model id or alias",
            ensure_option=False,
            continuous_update=False,
            style={"description_width": "50px"},
            layout=W.Layout(width="260px"),
        )
        self.conversation_w = W.Combobox(
            options=[conversation],
            value=conversation,
            description="Chat",
            placeholder="conversation name",
            ensure_option=False,
            continuous_update=False,
            style={"description_width": "40px"},
            layout=W.Layout(width="200px"),
            tooltip="the same conversations as %%mistral --chat NAME",
        )
        self.refresh_w = W.Button(
            icon="refresh",
            tooltip="reload conversations, functions and models from the notebook",
            layout=W.Layout(width="36px"),
        )
        self.temperature_w = W.Text(
            description="temperature", placeholder="default (0–1.5)", style=style, layout=wide
        )
        self.top_p_w = W.Text(
            description="top_p", placeholder="default (0–1)", style=style, layout=wide
        )
        self.max_tokens_w = W.Text(
            description="max_tokens", placeholder="default", style=style, layout=wide
        )
        self.min_tokens_w = W.Text(
            description="min_tokens", placeholder="default", style=style, layout=wide
        )
        self.seed_w = W.Text(
            description="random_seed", placeholder="none", style=style, layout=wide
        )
        self.stop_w = W.Textarea(
            description="stop",
            placeholder="one sequence per line (\\n = newline)",
            rows=2,
            style=style,
            layout=wide,
        )
        self.format_w = W.Dropdown(
            options=[FORMAT_TEXT, FORMAT_JSON],
            value=FORMAT_TEXT,
            description="response",
            style=style,
            layout=wide,
        )
        self.tools_w = W.SelectMultiple(
            options=[], description="tools", rows=3, style=style, layout=wide
        )
        self.tool_choice_w = W.Dropdown(
            options=[("(default)", ""), *((c, c) for c in TOOL_CHOICES)],
            value="",
            description="tool_choice",
            style=style,
            layout=wide,
        )
        self.system_w = W.Textarea(
            description="system prompt",
            placeholder="none",
            rows=2,
            style=style,
            layout=W.Layout(width="auto", grid_area="system"),
        )
        grid = W.GridBox(
            [
                self.temperature_w,
                self.top_p_w,
                self.max_tokens_w,
                self.min_tokens_w,
                self.seed_w,
                self.format_w,
                self.tools_w,
                self.tool_choice_w,
                self.stop_w,
                self.system_w,
            ],
            layout=W.Layout(
                grid_template_columns="repeat(2, minmax(0, 1fr))", grid_gap="4px 12px", width="auto"
            ),
        )
        self.settings_w = W.Accordion(children=[grid], titles=("Settings",), selected_index=None)

        self.transcript_w = W.VBox(layout=W.Layout(width="auto"))
        self.transcript_w.add_class("mm-transcript")
        self.message_w = _html("", "mm-message")
        self.prompt_w = W.Text(
            placeholder="Ask Mistral… (Enter sends)", layout=W.Layout(flex="1 1 auto", width="auto")
        )
        self.prompt_w.add_class("mm-prompt")
        self.prompt_area_w = W.Textarea(
            placeholder="Ask Mistral… (multi-line: click Send)",
            rows=4,
            layout=W.Layout(flex="1 1 auto", width="auto", display="none"),
        )
        self.prompt_area_w.add_class("mm-prompt-area")
        self.multiline_w = W.ToggleButton(
            value=False,
            icon="align-left",
            tooltip="multi-line prompt (Enter adds a line; send with the button)",
            layout=W.Layout(width="36px"),
        )
        self.send_w = W.Button(
            description="Send",
            button_style="primary",
            icon="paper-plane",
            tooltip="send the prompt (Enter in the one-line box)",
            layout=W.Layout(width="90px"),
        )
        self.send_w.add_class("mm-send")
        self.stop_button = W.Button(
            description="Stop",
            icon="stop",
            disabled=True,
            tooltip="stop generating; the partial answer is kept",
            layout=W.Layout(width="80px"),
        )
        self.stop_button.add_class("mm-stop")
        self.clear_w = W.Button(
            description="Clear",
            icon="trash",
            tooltip="forget this conversation",
            layout=W.Layout(width="80px"),
        )
        self.clear_w.add_class("mm-clear")
        self.bind_w = W.Text(
            value="",
            description="bind to",
            placeholder="variable (also _mistral)",
            style={"description_width": "55px"},
            layout=W.Layout(width="260px"),
        )
        self.status_w = _html("ready", "mm-status-line")

        header = W.HBox(
            [
                _html(_CSS + '<span class="mm-title">Mistral chat</span>'),
                self.conversation_w,
                self.backend_w,
                self.model_w,
                self.refresh_w,
            ],
            layout=W.Layout(align_items="center", flex_flow="row wrap"),
        )
        prompt_row = W.HBox(
            [
                self.multiline_w,
                self.prompt_w,
                self.prompt_area_w,
                self.send_w,
                self.stop_button,
                self.clear_w,
            ],
            layout=W.Layout(width="auto"),
        )
        footer = W.HBox(
            [self.status_w, self.bind_w],
            layout=W.Layout(justify_content="space-between", align_items="center"),
        )
        self.widget = W.VBox(
            [header, self.settings_w, self.transcript_w, self.message_w, prompt_row, footer],
            layout=W.Layout(width="auto"),
        )
        self.widget.add_class("mm-panel")

        self.send_w.on_click(lambda _: self.send())
        self.stop_button.on_click(lambda _: self.stop())
        self.clear_w.on_click(lambda _: self.clear())
        self.refresh_w.on_click(lambda _: self.refresh())
        self.prompt_w.on_msg(self._on_prompt_msg)
        self.multiline_w.observe(self._on_multiline, names="value")
        self.backend_w.observe(self._on_backend, names="value")
        self.conversation_w.observe(lambda _: self._show_conversation(), names="value")
        self.tools_w.observe(self._on_tools, names="value")
        for control in (
            self.model_w,
            self.temperature_w,
            self.top_p_w,
            self.max_tokens_w,
            self.min_tokens_w,
            self.seed_w,
            self.stop_w,
            self.format_w,
            self.tool_choice_w,
            self.bind_w,
            self.tools_w,
        ):
            control.observe(lambda _: self._validate_settings(), names="value")

    # -- state ------------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """True while a turn is running."""
        return self._task is not None and not self._task.done()

    @property
    def conversation(self) -> Conversation:
        """The selected conversation (shared with ``%%mistral --chat NAME``)."""
        return conversations.get(self.conversation_name)

    @property
    def conversation_name(self) -> str:
        return str(self.conversation_w.value).strip() or "default"

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The conversation's messages, system prompt first."""
        name = self.conversation_name
        return conversations.get(name).messages() if name in conversations else []

    @property
    def prompt(self) -> str:
        return str(self.prompt_area_w.value if self.multiline_w.value else self.prompt_w.value)

    @prompt.setter
    def prompt(self, value: str) -> None:
        if self.multiline_w.value:
            self.prompt_area_w.value = value
        else:
            self.prompt_w.value = value

    @property
    def transcript_html(self) -> str:
        """The transcript as one HTML string (each widget as a ``div`` with its classes)."""
        return _widget_html(self.transcript_w)

    def __repr__(self) -> str:
        return (
            f"MistralChatPanel(model={str(self.model_w.value)!r}, "
            f"conversation={self.conversation_name!r})"
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        data: dict[str, Any] = dict(
            self.widget._repr_mimebundle_(include=include, exclude=exclude) or {}
        )
        data["text/plain"] = repr(self)
        return data

    def _ipython_display_(self) -> None:
        """Show the widget, then the static transcript that is refreshed after each turn."""
        display(self._repr_mimebundle_(), raw=True)  # type: ignore[no-untyped-call]
        self._mirrors.append(
            display(self._mirror_bundle(), raw=True, display_id=True)  # type: ignore[no-untyped-call]
        )

    # -- settings and validation --------------------------------------------------------------

    def _settings(self, backend: str | None) -> Any:
        flags = {"backend": backend} if backend else None
        try:
            return self.magics.settings(flags)
        except Exception:
            return None

    @staticmethod
    def _fallback_models(backend: str) -> list[str]:
        if backend == "vertex":
            return list(backends.VERTEX_MODELS)
        return [alias["mistral"] for alias in backends.MODEL_ALIASES.values()]

    def _on_backend(self, change: Mapping[str, Any]) -> None:
        old, new = change["old"], change["new"]
        current = str(self.model_w.value).strip()
        aliases = {ids[old]: name for name, ids in backends.MODEL_ALIASES.items()}
        self.model_w.options = self._fallback_models(new)
        if current in aliases:
            self.model_w.value = backends.MODEL_ALIASES[aliases[current]][new]
        self._load_models()
        self._validate_settings()

    def _load_models(self) -> None:
        """Fill the model list from the backend (api.mistral.ai's /v1/models; Vertex AI has
        no list endpoint, so its known models)."""
        if self.backend_w.value != "mistral":
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self._models_task is not None and not self._models_task.done():
            self._models_task.cancel()
        self._models_task = loop.create_task(self._fetch_models())

    async def _fetch_models(self) -> None:
        try:
            settings = self.magics.settings({"backend": "mistral"})
            listing = await self.magics.client_for(settings).models.list_async()
            ids = [card.id for card in listing.data]
        except Exception as exc:  # keep the known ids; say why the list is short
            self._set_status(f"model list unavailable: {html.escape(str(exc)[:200])}")
            return
        if ids and self.backend_w.value == "mistral":
            self.model_w.options = ids

    def _on_tools(self, change: Mapping[str, Any]) -> None:
        current = self.tool_choice_w.value
        options: list[Any] = [("(default)", ""), *((c, c) for c in (*TOOL_CHOICES, *change["new"]))]
        self.tool_choice_w.options = options
        self.tool_choice_w.value = current if current in ("", *TOOL_CHOICES, *change["new"]) else ""

    def _on_multiline(self, change: Mapping[str, Any]) -> None:
        if change["new"]:
            self.prompt_area_w.value = self.prompt_w.value
            self.prompt_w.layout.display = "none"
            self.prompt_area_w.layout.display = None
        else:
            self.prompt_w.value = self.prompt_area_w.value
            self.prompt_area_w.layout.display = "none"
            self.prompt_w.layout.display = None

    def _on_prompt_msg(self, widget: Any, content: Mapping[str, Any], buffers: Any) -> None:
        if content.get("event") == "submit":
            self.send()

    def refresh(self) -> None:
        """Reload conversation names, the namespace's schemas and functions, and the models."""
        names = sorted({*conversations.names(), "default", self.conversation_name})
        self.conversation_w.options = names
        hidden = getattr(getattr(self.magics, "shell", None), "user_ns_hidden", None) or ()
        schemas, functions = _namespace_choices(self.namespace, hidden)
        fmt = self.format_w.value
        self.format_w.options = [FORMAT_TEXT, FORMAT_JSON, *(_SCHEMA_PREFIX + s for s in schemas)]
        self.format_w.value = fmt if fmt in self.format_w.options else FORMAT_TEXT
        chosen = tuple(t for t in self.tools_w.value if t in functions)
        self.tools_w.options = functions
        self.tools_w.value = chosen
        self._load_models()
        self._show_conversation()

    def _params(self) -> tuple[dict[str, Any], Any, ToolRegistry | None, bool]:
        """Request parameters from the controls; raise :class:`_Invalid` with a message."""
        model = str(self.model_w.value).strip()
        if not model:
            raise _Invalid("model: choose or type a model id")
        backend = self.backend_w.value
        params: dict[str, Any] = {
            "model": backends.resolve_model(model, cast(backends.Backend, backend))
        }
        for name, widget, kind in (
            ("temperature", self.temperature_w, float),
            ("top_p", self.top_p_w, float),
            ("max_tokens", self.max_tokens_w, int),
            ("min_tokens", self.min_tokens_w, int),
            ("random_seed", self.seed_w, int),
        ):
            value = _num(str(widget.value), kind, name)
            if value is not None:
                params[name] = value
        stops = _stops(str(self.stop_w.value))
        if stops:
            params["stop"] = stops if len(stops) > 1 else stops[0]
        schema: Any = None
        want_json = False
        fmt = str(self.format_w.value)
        if fmt == FORMAT_JSON:
            params["response_format"] = {"type": "json_object"}
            want_json = True
        elif fmt.startswith(_SCHEMA_PREFIX):
            schema, params["response_format"] = self._schema(fmt[len(_SCHEMA_PREFIX) :])
        tools = None
        if self.tools_w.value:
            try:
                tools = ToolRegistry([self._lookup(name) for name in self.tools_w.value])
            except ToolError as exc:
                raise _Invalid(f"tools: {exc}") from None
        choice = str(self.tool_choice_w.value)
        if choice:
            if choice in TOOL_CHOICES:
                params["tool_choice"] = choice
            elif tools is not None and choice in tools.names:
                params["tool_choice"] = {"type": "function", "function": {"name": choice}}
            else:
                raise _Invalid(f"tool_choice: {choice!r} is not one of the chosen tools")
        var = str(self.bind_w.value).strip()
        if var and (not var.isidentifier() or keyword.iskeyword(var)):
            raise _Invalid(f"bind to: {var!r} is not a valid variable name")
        return params, schema, tools, want_json

    def _lookup(self, name: str) -> Any:
        if name not in self.namespace:
            raise _Invalid(f"{name}: no longer defined in the notebook (click ↻)")
        return self.namespace[name]

    def _schema(self, name: str) -> tuple[Any, dict[str, Any]]:
        """The pydantic model ``name`` and its ``json_schema`` response format (as ``--schema``)."""
        model = self._lookup(name)
        try:
            return model, schema_response_format(model, name)
        except Exception as exc:
            raise _Invalid(f"response format: {name} has no usable JSON schema: {exc}") from None

    def _request(self, prompt: str) -> TurnRequest:
        """A validated request for ``prompt`` (build_request's checks); raise :class:`_Invalid`."""
        params, schema, tools, want_json = self._params()
        backend = self.backend_w.value
        system = str(self.system_w.value).strip() or None
        conversation = self.conversation_name
        history = (
            conversations.get(conversation).history_before(None)
            if conversation in conversations
            else []
        )
        settings = self._settings(backend)
        request = TurnRequest(
            user_content=prompt,
            params=params,
            system=system,
            history=history,
            tools=tools,
            stream=True,
            schema=schema,
            want_json=want_json,
            max_tool_rounds=int(getattr(self.magics, "max_tool_rounds", 8) or 8),
            backend=backend,
            region=(settings["region"] if settings is not None and backend == "vertex" else None),
        )
        check = dict(params)
        check["messages"] = request.initial_messages()
        if tools is not None and tools.specs:
            check["tools"] = tools.specs
        try:
            build_request(stream=True, backend=backend, **check)
        except RequestValidationError as exc:
            raise _Invalid(str(exc)) from None
        return request

    def _validate_settings(self) -> bool:
        """Check the controls now, so a bad value shows before anything is sent."""
        try:
            self._request("ok")
        except _Invalid as exc:
            self._show_message(str(exc))
            return False
        self._show_message("")
        return True

    def _show_message(self, text: str) -> None:
        self.message_w.value = (
            f'<div class="mm-invalid">⚠ {html.escape(text)}</div>' if text else ""
        )

    @property
    def invalid_message(self) -> str:
        """The validation message shown in the panel ("" when everything is valid)."""
        return html.unescape(re.sub(r"<[^>]+>", "", self.message_w.value)).lstrip("⚠ ").strip()

    def _set_status(self, text: str) -> None:
        self.status_w.value = html.escape(text)

    def _set_busy(self, busy: bool) -> None:
        self.send_w.disabled = busy
        self.stop_button.disabled = not busy
        self.prompt_w.disabled = busy
        self.prompt_area_w.disabled = busy
        for widget in (self.backend_w, self.model_w, self.conversation_w):
            widget.disabled = busy

    # -- actions -------------------------------------------------------------------------------

    def send(self) -> asyncio.Task[ChatResult | None] | None:
        """Start a turn with the prompt box's text; None (with a message) when refused."""
        if self.busy:
            self._show_message("a turn is already running: Stop it first")
            return None
        prompt = self.prompt
        if not prompt.strip():
            self._show_message("write a prompt first")
            return None
        try:
            request = self._request(prompt)
        except _Invalid as exc:
            self._show_message(str(exc))
            return None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._show_message(
                "no running event loop: use the panel in Jupyter, or `await panel.run(prompt)`"
            )
            return None
        try:
            settings = self.magics.settings({"backend": request.backend})
            client = self.magics.client_for(settings)
        except Exception as exc:
            self._show_message(str(exc))
            return None
        self._show_message("")
        self._set_busy(True)  # before any await: a second click finds the panel busy
        conversation = conversations.get(self.conversation_name)
        if self._shown_keys != [turn.key for turn in conversation.turns]:
            self._show_conversation()
        conversation.system = request.system
        key = f"panel:{uuid.uuid4().hex[:12]}"
        turn = W.VBox(layout=W.Layout(width="auto"))
        turn.add_class("mm-turn")
        answer = W.VBox(layout=W.Layout(width="auto"))
        answer.add_class("mm-answer")
        turn.children = (
            _html(f'<span class="mm-role">You</span>\n{html.escape(prompt)}', "mm-user"),
            answer,
        )
        self.transcript_w.children = (*self.transcript_w.children, turn)
        self.prompt = ""
        var = str(self.bind_w.value).strip()
        self._task = loop.create_task(
            self._run(client, request, turn, answer, conversation, key, var)
        )
        self._task.add_done_callback(self._on_task_done)
        return self._task

    def submit(self, prompt: str) -> asyncio.Task[ChatResult | None] | None:
        """Put ``prompt`` in the prompt box and Send it (for notebooks and tests)."""
        self.prompt = prompt
        return self.send()

    async def wait(self) -> ChatResult | None:
        """Wait for the running turn (if any) and return the last result."""
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        return self.last_result

    async def run(self, prompt: str) -> ChatResult | None:
        """``submit`` then ``wait``: ``result = await panel.run("...")``."""
        self.submit(prompt)
        return await self.wait()

    def stop(self) -> None:
        """Cancel the running turn; its partial answer is kept and marked stopped."""
        if self.busy and self._task is not None:
            self._set_status("stopping…")
            self._task.cancel()

    def clear(self) -> None:
        """Stop, then forget the selected conversation (also for ``%%mistral --chat``)."""
        self.stop()
        conversations.reset(self.conversation_name)
        self.transcript_w.children = ()
        self._shown_keys = []
        self._set_status("cleared")
        self._refresh_mirror()

    # -- the turn ------------------------------------------------------------------------------

    async def _tick(self, view: _TurnView) -> None:
        # Flushes text the coalescer holds back while the stream pauses.
        while True:
            await asyncio.sleep(self.update_interval)
            view.poll()

    async def _run(
        self,
        client: Any,
        request: TurnRequest,
        turn: Any,
        answer: Any,
        conversation: Conversation,
        key: str,
        var: str,
    ) -> ChatResult | None:
        view = _TurnView(self, answer, self.update_interval)
        ticker = asyncio.ensure_future(self._tick(view))
        result: ChatResult | None = None
        state = "done"
        started = time.monotonic()
        try:
            result = await run_turn_async(client, request, view)
        except TurnInterrupted as stopped:
            result, state = stopped.result, "stopped"
        except TurnFailed as failed:
            result, state = failed.result, "error"
            turn.children = (*turn.children, _html(_error_html(failed.error), "mm-error"))
        except (asyncio.CancelledError, KeyboardInterrupt):
            state = "stopped"
        except Exception as exc:  # a bug or a transport surprise: show it, keep the panel alive
            state = "error"
            turn.children = (*turn.children, _html(_error_html(exc), "mm-error"))
        finally:
            ticker.cancel()
        if result is not None:
            result._meta.backend = request.backend
            self._bind(result, var)
            if not result.error:
                messages = result.messages
                if result.text and (not messages or messages[-1].get("role") != "assistant"):
                    # a stopped turn: keep what the user saw as the answer in the history
                    messages.append({"role": "assistant", "content": result.text})
                conversation.record(key, messages)
                self._shown_keys.append(key)
            self._count_usage(result, request)
        if state == "stopped":
            partial = len(result.text) if result is not None else 0
            turn.children = (
                *turn.children,
                _html(
                    f"■ stopped — partial answer kept ({partial} characters)",
                    "mm-status",
                    "mm-stopped",
                ),
            )
        line = footer_text(result) if result is not None else f"{time.monotonic() - started:.1f} s"
        if state != "done":  # the stopped marker or the error already says how it ended
            line = re.sub(r" · finish: \S+$", "", line)
        if line:
            turn.children = (*turn.children, _html(html.escape(line), "mm-usage"))
        self._set_status(state if state != "done" or not var else f"done → {var}")
        self.conversation_w.options = sorted(
            {*conversations.names(), "default", self.conversation_name}
        )
        self._refresh_mirror()
        return result

    def _on_task_done(self, task: asyncio.Task[Any]) -> None:
        # Runs however the task ended (also after a kernel interrupt), so the panel never
        # stays disabled.
        self._set_busy(False)
        if not task.cancelled() and task.exception() is not None:
            self._set_status(f"error: {task.exception()!r}"[:300])
        if task.cancelled() and self.status_w.value in ("generating…", "stopping…"):
            self._set_status("stopped")

    def _bind(self, result: ChatResult, var: str) -> None:
        self.last_result = result
        self.namespace[RESULT_VAR] = result
        if var:
            self.namespace[var] = result
        if self.magics is not None and hasattr(self.magics, "last_result"):
            self.magics.last_result = result

    def _count_usage(self, result: ChatResult, request: TurnRequest) -> None:
        usage = getattr(self.magics, "usage", None)
        if not isinstance(usage, dict):
            return
        totals = usage.setdefault(
            (result.model or request.params["model"], request.backend), [0, 0, 0]
        )
        totals[0] += 1
        totals[1] += result.usage.prompt_tokens
        totals[2] += result.usage.completion_tokens

    # -- transcript of a stored conversation ---------------------------------------------------

    def _show_conversation(self) -> None:
        """Redraw the transcript from the selected conversation (e.g. after ``--chat`` cells)."""
        if self.busy:
            return
        name = self.conversation_name
        conversation = conversations.get(name) if name in conversations else Conversation(name)
        self.system_w.value = conversation.system or ""
        turns = []
        for stored in conversation.turns:
            box = W.VBox(layout=W.Layout(width="auto"))
            box.add_class("mm-turn")
            children = []
            answer: list[Any] = []
            for message in stored.messages:
                cls, value = _message_html(message)
                if cls == "mm-user":
                    children.append(_html(value, cls))
                else:
                    answer.append(_html(value, cls))
            holder = W.VBox(answer, layout=W.Layout(width="auto"))
            holder.add_class("mm-answer")
            box.children = (*children, holder)
            turns.append(box)
        self.transcript_w.children = tuple(turns)
        self._shown_keys = [turn.key for turn in conversation.turns]
        self._refresh_mirror()

    def _mirror_bundle(self) -> dict[str, str]:
        messages = [
            {**m, "content": neutralize_html(content_text(m.get("content")))}
            for m in self.messages
        ]
        head = f"*Mistral chat panel · conversation `{self.conversation_name}`*"
        body = conversation_markdown(messages) if messages else "*(no messages yet)*"
        text = f"{head}\n\n{body}"
        return {"text/markdown": text, "text/plain": text}

    def _refresh_mirror(self) -> None:
        if not self._mirrors:
            return
        bundle = self._mirror_bundle()
        for handle in self._mirrors:
            with contextlib.suppress(Exception):
                handle.update(bundle, raw=True)


def _error_html(exc: BaseException) -> str:
    if isinstance(exc, MistralError):
        text = html.escape(exc.message if exc.hint else str(exc))
        hint = f'<div class="mm-hint">{html.escape(exc.hint)}</div>' if exc.hint else ""
        return f"⚠ <b>{type(exc).__name__}</b>: {text}{hint}"
    return f"⚠ <b>{type(exc).__name__}</b>: {html.escape(str(exc))}"


def _widget_html(widget: Any) -> str:
    classes = " ".join(getattr(widget, "_dom_classes", ()))
    inner = (
        "".join(_widget_html(child) for child in widget.children)
        if hasattr(widget, "children")
        else str(getattr(widget, "value", ""))
    )
    return f'<div class="{classes}">{inner}</div>'


def _namespace_choices(
    namespace: Mapping[str, Any], hidden: Iterable[str] = ()
) -> tuple[list[str], list[str]]:
    """Names of pydantic models (schemas) and of functions (tools) the user defined or imported
    into ``namespace`` (IPython's own names, such as ``open``, are left out)."""
    import pydantic

    skip = set(hidden)
    schemas: list[str] = []
    functions: list[str] = []
    for name, value in list(namespace.items()):
        if name.startswith("_") or name in skip:
            continue
        if (
            isinstance(value, type)
            and issubclass(value, pydantic.BaseModel)
            and value is not pydantic.BaseModel
            and not value.__module__.startswith(("pydantic", "mistral_magic"))
        ):
            schemas.append(name)
        elif inspect.isfunction(value) and not value.__module__.startswith("IPython"):
            functions.append(name)
    return sorted(schemas), sorted(functions)


def _find_magics() -> Any:
    """The running shell's ``MistralMagics`` (loading the extension if needed), or a
    detached one outside IPython."""
    from .magics import MistralMagics

    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:  # pragma: no cover - IPython is a dependency
        shell = None
    if shell is not None:
        registry = shell.magics_manager.registry
        if "MistralMagics" not in registry:
            shell.register_magics(MistralMagics)
        return registry["MistralMagics"]
    return MistralMagics(shell=None)
