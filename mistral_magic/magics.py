"""The ``%%mistral`` cell magic and the ``%mistral`` line magic.

The only module besides ``panel`` that imports IPython. A cell goes: parse the line (UsageError for
any mistake, before anything is sent) -> interpolate ``{name}`` -> resolve settings -> validate the
request -> run the turn through ``session`` while a view draws the stream -> bind the response to
``-o VAR`` and ``_mistral`` -> return it, so that the final answer is the cell's result.
"""

from __future__ import annotations

import json
import keyword
import re
import shlex
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import (
    Magics,
    line_cell_magic,
    magics_class,
    no_var_expand,
)
from IPython.core.magic_arguments import argument, magic_arguments
from IPython.display import DisplayHandle, display
from traitlets import Bool, Float, Int, Unicode

from . import _redact, backends
from . import config as settings_mod

# The client, models, session and tools pull in httpx and pydantic: they are imported at the
# first cell, not at ``%load_ext``, which must stay cheap.
if TYPE_CHECKING:
    from .client import Mistral, MistralGCP
    from .render import TerminalView
    from .session import ChatResult, TurnMeta, TurnRequest
    from .tools import ToolRegistry, ToolResult
    from .utils import RetryConfig

RESULT_VAR = settings_mod.RESULT_VAR
TOOL_CHOICES = settings_mod.TOOL_CHOICES
_SECRET_ON_LINE = re.compile(
    r"(--?(api[-_]?key|key|token|access[-_]?token|secret)\b)|"
    r"\b(api[-_]?key|access[-_]?token|token)\s*=|"
    r"\bya29\.[\w.-]+|\bBearer\s+\S+",
    re.IGNORECASE,
)
_KEY_LIKE = re.compile(r"^[A-Za-z0-9]{32}$")


class CellError(Exception):
    """A failed cell shown as one line (no Python traceback unless ``--debug``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = _redact.redact(message)

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[31mMistralError\x1b[0m: {self.message}"]


class GenerationInterrupted(KeyboardInterrupt):
    """Raised after an interrupt so Run-All stops; the partial answer is already bound."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[33mInterrupted\x1b[0m: {self.message}"]


# -- views ------------------------------------------------------------------------------------


class NotebookView:
    """Streams an answer into the cell's output: one live display, then the result.

    Follows the "commit pattern" (docs: jupyter.md §3.3): the live display is created blank
    (``{'text/plain': ''}``), updated with the Markdown of the answer's open block under a
    one-line note of how much came before (see ``render.LiveWindowView``; its ``render.Pacer``
    lets an update through only when new text has paid for it, so the bytes stay linear at any
    token rate; live updates carry an empty ``text/plain``, the text form goes once, in the
    result), and blanked at the end, while the magic returns the result as the cell's
    ``execute_result``. nbval sees the first state of a display, the saved notebook the last;
    both are then one blank display plus the final answer, whatever the token rate (one live
    display, never one per block, so their number cannot depend on timing). A ``retrying``
    note gets a status display that follows the same pattern.
    """

    def __init__(self, interval: float, *, live: bool = True) -> None:
        from .render import LiveWindowView

        self._handle: DisplayHandle | None = None
        self._live_view = LiveWindowView(self._publish, interval=interval)
        self._live = live
        self._status: DisplayHandle | None = None
        self._status_filled = False
        self.status_messages = 0

    @property
    def messages(self) -> int:
        """Display messages sent so far (creations included)."""
        return self._live_view.messages + self.status_messages

    def _publish(self, markdown: str) -> None:
        if self._handle is None:
            self._handle = display(BLANK, raw=True, display_id=True)
        assert self._handle is not None
        if markdown:
            bundle = {"text/markdown": _redact.redact(markdown), "text/plain": ""}
            self._handle.update(bundle, raw=True)
        else:
            self._handle.update(BLANK, raw=True)

    def start(self, meta: TurnMeta) -> None:
        self._live_view.start(meta)

    def delta(self, text: str) -> None:
        if self._live:
            self._live_view.delta(text)

    def tool_call(self, result: ToolResult) -> None:
        self._live_view.tool_call(result)

    def retrying(self, attempt: int, delay: float, reason: str) -> None:
        text = f"*{reason}: retrying in {delay:.1f} s (attempt {attempt})…*"
        if self._status is None:
            self._status = display(BLANK, raw=True, display_id=True)
            self.status_messages += 1
        assert self._status is not None
        self._status.update({"text/markdown": _redact.redact(text), "text/plain": ""}, raw=True)
        self.status_messages += 1
        self._status_filled = True

    def error(self, message: str) -> None:
        # Shown once, as the cell's one-line error; the partial answer is kept on screen by
        # ``commit_partial``.
        pass

    def done(self, result: ChatResult) -> None:
        pass

    def clear(self) -> None:
        """Blank the live displays (the returned result replaces them)."""
        self._live_view.clear()
        if self._status is not None and self._status_filled:
            self._status.update(BLANK, raw=True)
            self.status_messages += 1
            self._status_filled = False

    def commit_partial(self, result: ChatResult) -> None:
        """After an error or interrupt: keep what arrived on screen, as the result's display.

        The live display is blanked and the partial result (answer so far, tool calls, a note
        saying what happened, provenance metadata) is displayed in its place, so the saved
        notebook and nbval agree here too.
        """
        self.clear()
        if result.text or result.tool_results:
            data, metadata = result._repr_mimebundle_()
            display(data, metadata=metadata, raw=True)
            self.status_messages += 1


BLANK: dict[str, str] = {"text/plain": ""}


def stdout_view(*, footer: bool = True) -> TerminalView:
    """Terminal IPython: tokens go straight to stdout."""
    from .render import TerminalView

    def write(text: str) -> None:
        sys.stdout.write(_redact.redact(text))
        sys.stdout.flush()

    return TerminalView(write, footer=footer)


# -- the magics -------------------------------------------------------------------------------


@magics_class
class MistralMagics(Magics):
    """``%%mistral`` sends the cell to a Mistral model; ``%mistral`` manages settings."""

    backend = Unicode("", help="vertex, mistral or auto (empty: environment, then auto)").tag(
        config=True
    )
    model = Unicode("", help="default model id or alias (small, medium, large, codestral)").tag(
        config=True
    )
    region = Unicode("", help="Vertex AI region (default europe-west4)").tag(config=True)
    project = Unicode("", help="Google Cloud project id for Vertex AI").tag(config=True)
    server_url = Unicode("", help="replace the service's scheme and host").tag(config=True)
    update_interval = Float(
        0.1, help="seconds between live updates of a streaming answer (at most ~10 a second)"
    ).tag(config=True)
    stream = Bool(True, help="stream answers live (False: one display when done)").tag(config=True)
    stream_mode = Unicode(
        "auto", help="auto, display (rich output) or stdout (plain text, e.g. jupyter console)"
    ).tag(config=True)
    retries = Int(-1, help="retries on 429/5xx/connection errors (-1: the client's default)").tag(
        config=True
    )
    timeout = Float(0.0, help="request timeout in seconds (0: the client's default)").tag(
        config=True
    )
    max_tool_rounds = Int(8, help="tool-call rounds per cell before giving up").tag(config=True)
    footer = Bool(True, help="show model, usage and timings under each answer").tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self.session_settings: dict[str, str] = {}
        self.usage: dict[tuple[str, str], list[int]] = {}
        self._clients: dict[tuple[Any, ...], MistralGCP | Mistral] = {}
        self.emulator: Any = None
        self.last_result: ChatResult | None = None
        self._current_cell_id: str | None = None
        if shell is not None:
            # IPython passes the front end's cell id (JupyterLab's ``cellId`` metadata) to
            # pre_run_cell; the kernel's parent header is the fallback (see ``_cell_id``).
            shell.events.register("pre_run_cell", self._pre_run_cell)

    @property
    def _ns(self) -> dict[str, Any]:
        shell: Any = self.shell
        ns: dict[str, Any] = shell.user_ns
        return ns

    def _pre_run_cell(self, info: Any = None) -> None:
        value = getattr(info, "cell_id", None)
        self._current_cell_id = str(value) if value else None

    # -- settings -------------------------------------------------------------------------

    def _trait_settings(self) -> dict[str, str]:
        return {
            "backend": self.backend,
            "model": self.model,
            "region": self.region,
            "project": self.project,
            "server_url": self.server_url,
        }

    def settings(self, flags: Mapping[str, Any] | None = None) -> settings_mod.Settings:
        """Effective settings for one cell (flag > session > config > env > default)."""
        from .errors import ConfigError

        try:
            return settings_mod.resolve(
                flags=flags, session=self.session_settings, config=self._trait_settings()
            )
        except ConfigError as exc:
            raise UsageError(str(exc)) from None

    def client_for(self, settings: settings_mod.Settings) -> MistralGCP | Mistral:
        """One pooled client per distinct endpoint and credentials, reused across cells."""
        from .client import Mistral, MistralGCP

        timeout_ms = int(self.timeout * 1000) if self.timeout > 0 else None
        local = settings.uses_local_server
        key = (
            settings.backend,
            settings["server_url"],
            settings["region"],
            settings["project"],
            settings["api_key"],
            settings["access_token"],
            timeout_ms,
        )
        client = self._clients.get(key)
        if client is not None:
            return client
        if settings.backend == "mistral":
            api_key = settings["api_key"] or (settings_mod.EMULATOR_TOKEN if local else None)
            client = Mistral(
                api_key=api_key, server_url=settings["server_url"], timeout_ms=timeout_ms
            )
        else:
            token = settings["access_token"] or (settings_mod.EMULATOR_TOKEN if local else None)
            project = settings["project"] or (settings_mod.EMULATOR_PROJECT if local else None)
            client = MistralGCP(
                region=settings["region"] or backends.DEFAULT_REGION,
                project_id=project,
                access_token=token,
                server_url=settings["server_url"],
                timeout_ms=timeout_ms,
            )
        self._clients[key] = client
        return client

    # -- %%mistral ------------------------------------------------------------------------

    @no_var_expand
    @magic_arguments()
    @argument("-m", "--model", help="model id or alias: small, medium, large, codestral")
    @argument("-t", "--temperature", type=float, help="sampling temperature, 0 to 1.5")
    @argument("--top-p", type=float, help="nucleus sampling, 0 to 1")
    @argument("--max-tokens", type=int, help="most tokens to generate")
    @argument("--min-tokens", type=int, help="fewest tokens to generate")
    @argument("--stop", action="append", help="stop sequence (repeatable)")
    @argument("--seed", type=int, help="random_seed, for reproducible answers")
    @argument("--json", action="store_true", help="answer as a JSON object (.parsed holds it)")
    @argument("--schema", help="pydantic model or JSON-schema dict from the namespace")
    @argument("--tools", help="comma-separated functions (or tool dicts) from the namespace")
    @argument("--tool-choice", help="auto, none, any, required, or a tool's name")
    @argument("--system", help="system prompt")
    @argument("-o", "--out", help="variable to bind the response to (always also _mistral)")
    @argument("--no-stream", action="store_true", help="wait for the whole answer")
    @argument("--chat", nargs="?", const="default", help="continue the named conversation")
    @argument("--backend", choices=["vertex", "mistral"], help="which service to call")
    @argument("--dry-run", action="store_true", help="show the exact request and send nothing")
    @argument("--retries", type=int, help="retries on 429, 5xx and connection errors")
    @argument("--no-interpolate", action="store_true", help="send {braces} exactly as written")
    @argument("--debug", action="store_true", help="show full Python tracebacks")
    @argument("command", nargs="*", help="line form: config, models, history, reset, usage, "
              "emulator, panel")
    @line_cell_magic
    def mistral(self, line: str, cell: str | None = None) -> Any:
        """Send the cell to a Mistral model and stream the answer; or manage settings.

        Cell: ``%%mistral [options]`` then the prompt. ``{name}`` inserts a notebook variable;
        other braces stay as written (``{{`` for a literal brace). The response is bound to
        ``-o VAR`` and to ``_mistral``.

        Line: ``%mistral config [key=value ...]``, ``%mistral models``, ``%mistral history
        [NAME]``, ``%mistral reset [NAME]``, ``%mistral usage``, ``%mistral emulator
        [start|stop]``, ``%mistral panel``.
        """
        self._refuse_secrets(line)
        if cell is None:
            return self._line(line)
        args = self._parse(line)
        if args.command:
            raise UsageError(
                f"unexpected argument {args.command[0]!r} on the %%mistral line "
                "(quote values with spaces; the prompt goes in the cell body)"
            )
        try:
            return self._cell(args, cell)
        except (UsageError, CellError, GenerationInterrupted):
            raise
        except Exception as exc:
            from .errors import MistralError

            if args.debug:
                raise
            if isinstance(exc, MistralError):
                raise CellError(str(exc)) from None
            raise

    def _parse(self, line: str) -> Any:
        # Shell-style (POSIX) splitting, so quotes group words and are removed.
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"cannot parse the magic line: {exc}") from None
        return self.mistral.parser.parse_args(words)

    def _refuse_secrets(self, line: str) -> None:
        try:
            words = shlex.split(line)
        except ValueError:
            words = line.split()
        if _SECRET_ON_LINE.search(line) or any(_KEY_LIKE.match(w) for w in words):
            raise UsageError(
                "refusing a credential on the magic line (it would be saved in the notebook): "
                "set MISTRAL_API_KEY or GOOGLE_OAUTH_ACCESS_TOKEN in the environment, or use "
                "Application Default Credentials for Vertex AI"
            )

    def _build(self, args: Any, cell: str) -> tuple[TurnRequest, settings_mod.Settings, Any]:
        """Turn the parsed line and body into a validated request; raise UsageError on mistakes."""
        from .prompt import PromptError, interpolate
        from .session import TurnRequest, conversations, turn_key

        body = cell.strip("\n")
        if args.out is not None and (not args.out.isidentifier() or keyword.iskeyword(args.out)):
            raise UsageError(f"-o/--out {args.out!r}: expected a Python variable name")
        if not body.strip():
            raise UsageError("the cell is empty: write the prompt below the %%mistral line")
        if not args.no_interpolate:
            try:
                body = interpolate(body, self._ns)
            except PromptError as exc:
                raise UsageError(str(exc)) from None
        _check_encodable(body, "the prompt")
        if args.system:
            _check_encodable(args.system, "--system")
        settings = self.settings({"backend": args.backend, "model": args.model})
        backend = settings.backend
        model = backends.resolve_model(settings["model"], backend)
        params: dict[str, Any] = {"model": model}
        for name, value in (
            ("temperature", args.temperature),
            ("top_p", args.top_p),
            ("max_tokens", args.max_tokens),
            ("min_tokens", args.min_tokens),
            ("random_seed", args.seed),
        ):
            if value is not None:
                params[name] = value
        if args.stop:
            params["stop"] = args.stop if len(args.stop) > 1 else args.stop[0]
        schema = None
        if args.json and args.schema:
            raise UsageError("use either --json or --schema, not both")
        if args.json:
            params["response_format"] = {"type": "json_object"}
        if args.schema:
            schema, params["response_format"] = self._schema(args.schema)
        tools = None
        if args.tools:
            tools = self._tools(args.tools)
        if args.tool_choice:
            params["tool_choice"] = self._tool_choice(args.tool_choice, tools)
        conversation = conversations.get(args.chat) if args.chat else None
        system = args.system
        history: list[dict[str, Any]] = []
        key = None
        if conversation is not None:
            if system:
                conversation.system = system
            system = conversation.system
            key = turn_key(
                self._current_cell_id or _cell_id(self.shell), f"{line_of(args)}\n{cell}"
            )
            history = conversation.history_before(key)
        request = TurnRequest(
            user_content=body,
            params=params,
            system=system,
            history=history,
            tools=tools,
            stream=self.stream and not args.no_stream,
            schema=schema,
            want_json=bool(args.json),
            max_tool_rounds=self.max_tool_rounds,
            backend=backend,
            region=settings["region"] if backend == "vertex" else None,
        )
        self._validate(request, backend)
        return request, settings, (conversation, key)

    def _validate(self, request: TurnRequest, backend: str) -> None:
        from .errors import RequestValidationError
        from .models import build_request

        params = dict(request.params)
        params["messages"] = request.initial_messages()
        if request.tools is not None and request.tools.specs:
            params["tools"] = request.tools.specs
        try:
            build_request(stream=request.stream, backend=backend, **params)  # type: ignore[arg-type]
        except RequestValidationError as exc:
            raise UsageError(_option_message(str(exc))) from None

    def _schema(self, name: str) -> tuple[Any, dict[str, Any]]:
        from .session import schema_response_format

        value = _lookup(self._ns, name, "--schema")
        try:
            return value, schema_response_format(value, name)
        except TypeError as exc:
            raise UsageError(f"--schema {name}: {exc}") from None

    def _tools(self, names: str) -> ToolRegistry:
        from .tools import ToolError, ToolRegistry

        items = []
        for raw in names.split(","):
            name = raw.strip()
            if not name:
                continue
            value = _lookup(self._ns, name, "--tools")
            if not callable(value) and not isinstance(value, dict):
                raise UsageError(
                    f"--tools {name}: not a function or a tool dict (it is {type(value).__name__})"
                )
            items.append(value)
        if not items:
            raise UsageError("--tools needs at least one function name")
        try:
            return ToolRegistry(items)
        except ToolError as exc:
            raise UsageError(f"--tools: {exc}") from None

    def _tool_choice(self, choice: str, tools: ToolRegistry | None) -> Any:
        if choice in TOOL_CHOICES:
            return choice
        if tools is not None and choice in tools.names:
            return {"type": "function", "function": {"name": choice}}
        allowed = ", ".join([*TOOL_CHOICES, *(tools.names if tools else [])])
        raise UsageError(f"--tool-choice {choice!r}: use one of {allowed}")

    def _retry_config(self, retries: int | None) -> RetryConfig | None:
        from .utils import BackoffStrategy, RetryConfig

        count = retries if retries is not None else (self.retries if self.retries >= 0 else None)
        if count is None:
            return None
        if count < 0:
            raise UsageError("--retries must be 0 or more")
        return RetryConfig(
            "backoff",
            BackoffStrategy(500, 8000, 2.0, 120_000),
            True,
            max_attempts=count + 1,
        )

    def _cell(self, args: Any, cell: str) -> Any:
        from .errors import ConfigError
        from .session import TurnFailed, TurnInterrupted, run_turn

        request, settings, (conversation, key) = self._build(args, cell)
        retry = self._retry_config(args.retries)
        if retry is not None:
            request.params["retries"] = retry
        if args.dry_run:
            return self._dry_run(request, settings)
        try:
            client = self.client_for(settings)
            client._tokens()  # credentials problems surface here, before anything is drawn
        except ConfigError as exc:
            raise UsageError(_credentials_message(str(exc), settings)) from None
        view = self._view(live=request.stream)
        try:
            result = run_turn(client, request, view)
        except TurnInterrupted as stop:
            self._finish(stop.result, args, conversation, key, request, settings)
            if isinstance(view, NotebookView):
                view.commit_partial(stop.result)
            raise GenerationInterrupted(
                f"partial answer ({stop.result.usage.completion_tokens or len(stop.result.text)} "
                f"{'tokens' if stop.result.usage.completion_tokens else 'characters'}) kept in "
                f"{args.out or RESULT_VAR} with finish_reason={stop.result.finish_reason!r}"
            ) from None
        except TurnFailed as failed:
            self._finish(failed.result, args, conversation, key, request, settings)
            if isinstance(view, NotebookView):
                view.commit_partial(failed.result)
            kept = (
                f"; the partial answer is kept in {args.out or RESULT_VAR}"
                if failed.result.text
                else ""
            )
            if args.debug:
                raise failed.error from None
            message = str(failed.error)
            if kept and message.endswith("the partial answer is kept"):
                message, kept = message + kept.split("is kept", 1)[1], ""
            raise CellError(f"{message}{kept}") from None
        self._finish(result, args, conversation, key, request, settings)
        if isinstance(view, NotebookView):
            view.clear()
            return result
        return None

    def _finish(
        self,
        result: ChatResult,
        args: Any,
        conversation: Any,
        key: str | None,
        request: TurnRequest,
        settings: settings_mod.Settings,
    ) -> None:
        result._meta.backend = settings.backend
        result._show_footer = self.footer
        ns = self._ns
        ns[RESULT_VAR] = result
        if args.out:
            ns[args.out] = result
        self.last_result = result
        if conversation is not None and key is not None and not result.error:
            conversation.record(key, result.messages)
        model = result.model or request.params["model"]
        totals = self.usage.setdefault((model, settings.backend), [0, 0, 0])
        totals[0] += 1
        totals[1] += result.usage.prompt_tokens
        totals[2] += result.usage.completion_tokens

    def _view(self, *, live: bool = True) -> NotebookView | TerminalView:
        """Rich output (a notebook) or plain stdout (terminal IPython, ``stream_mode='stdout'``)."""
        if self.is_terminal():
            return stdout_view(footer=self.footer)
        return NotebookView(self.update_interval, live=live)

    def is_terminal(self) -> bool:
        """True when answers go to stdout as plain text (terminal IPython or forced)."""
        mode = self.stream_mode
        if mode == "stdout":
            return True
        if mode == "display":
            return False
        shell: Any = self.shell
        return "text/markdown" not in shell.display_formatter.active_types

    def _dry_run(self, request: TurnRequest, settings: settings_mod.Settings) -> Any:
        from .models import build_request

        backend = settings.backend
        params = dict(request.params)
        params.pop("retries", None)
        params["messages"] = request.initial_messages()
        if request.tools is not None:
            params["tools"] = request.tools.specs
        wire = build_request(stream=request.stream, backend=backend, **params).to_wire()
        if backend == "vertex":
            region = settings["region"] or backends.DEFAULT_REGION
            url = backends.vertex_base_url(region, settings["server_url"]) + backends.vertex_path(
                settings["project"] or "PROJECT_ID", region, wire["model"], stream=request.stream
            )
        else:
            url = backends.mistral_base_url(settings["server_url"]) + backends.CHAT_COMPLETIONS_PATH
        text = _redact.redact(json.dumps(wire, indent=2, ensure_ascii=False))
        accept = "text/event-stream" if request.stream else "application/json"
        head = (
            f"POST {url}\nAuthorization: Bearer ***\nContent-Type: application/json\n"
            f"Accept: {accept}\n\n"
        )
        md = f"**Dry run — nothing was sent** ({backend})\n\n```http\n{head}{text}\n```"
        display({"text/markdown": md, "text/plain": head + text}, raw=True)
        return None

    # -- %mistral -------------------------------------------------------------------------

    def _line(self, line: str) -> Any:
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"cannot parse the magic line: {exc}") from None
        if not words:
            return self._config([])
        command, rest = words[0], words[1:]
        handlers: dict[str, Callable[[list[str]], Any]] = {
            "config": self._config,
            "models": self._models,
            "history": self._history,
            "reset": self._reset,
            "usage": self._usage,
            "emulator": self._emulator,
            "panel": self._panel,
        }
        handler = handlers.get(command)
        if handler is None:
            raise UsageError(
                f"unknown command {command!r}: use one of {', '.join(handlers)} "
                "(or %%mistral as a cell magic to send a prompt)"
            )
        return handler(rest)

    def _config(self, rest: list[str]) -> Any:
        for item in rest:
            if "=" not in item:
                raise UsageError(f"expected key=value, got {item!r}")
            name, value = item.split("=", 1)
            name = name.strip().replace("-", "_")
            settable = [n for n in settings_mod.SETTINGS_HELP if n not in settings_mod.SECRETS]
            if name in settings_mod.SECRETS:
                raise UsageError(
                    f"{name} is read from the environment only "
                    f"({settings_mod.ENV_VARS[name]}), never typed in a notebook"
                )
            if name not in settable:
                raise UsageError(
                    f"unknown setting {name!r}: use one of {', '.join(settable)}"
                )
            if name == "backend" and value not in ("vertex", "mistral", "auto", ""):
                raise UsageError("backend must be vertex, mistral or auto")
            if value:
                self.session_settings[name] = value
            else:
                self.session_settings.pop(name, None)
        settings = self.settings()
        rows = settings.table()
        model_id = backends.resolve_model(settings["model"], settings.backend)
        is_alias = (settings["model"] or "").lower() in backends.MODEL_ALIASES
        rows.append(
            ("model id", model_id, "alias of model" if is_alias else settings.source("model"))
        )
        md = "| setting | value | from |\n|---|---|---|\n" + "\n".join(
            f"| {n} | `{v}` | {s} |" for n, v, s in rows
        )
        plain = "\n".join(f"{n:<13} {v:<40} ({s})" for n, v, s in rows)
        display({"text/markdown": md, "text/plain": plain}, raw=True)
        return None

    def _models(self, rest: list[str]) -> Any:
        from .errors import MistralError

        settings = self.settings()
        if settings.backend == "mistral":
            try:
                listing = self.client_for(settings).models.list()  # type: ignore[union-attr]
            except MistralError as exc:
                raise CellError(str(exc)) from None
            ids = [card.id for card in listing.data]
        else:
            ids = list(backends.VERTEX_MODELS)
        aliases = {v[settings.backend]: k for k, v in backends.MODEL_ALIASES.items()}
        lines = [f"{i}" + (f"  (alias: {aliases[i]})" if i in aliases else "") for i in ids]
        text = f"Models on {settings.backend}:\n" + "\n".join(f"  {line}" for line in lines)
        md = "\n".join(f"- `{line}`" for line in lines)
        display({"text/plain": text, "text/markdown": md}, raw=True)
        return None

    def _history(self, rest: list[str]) -> Any:
        from .session import conversations

        name = rest[0] if rest else "default"
        if name not in conversations:
            raise UsageError(
                f"no conversation named {name!r} "
                f"(known: {', '.join(conversations.names()) or 'none'})"
            )
        from .render import conversation_markdown

        md = conversation_markdown(conversations.get(name).messages())
        display({"text/markdown": md, "text/plain": md}, raw=True)
        return None

    def _reset(self, rest: list[str]) -> Any:
        from .session import conversations

        conversations.reset(rest[0] if rest else None)
        print("conversation reset" if rest else "all conversations reset")  # noqa: T201
        return None

    def _usage(self, rest: list[str]) -> Any:
        if not self.usage:
            print("no requests yet in this session")  # noqa: T201
            return None
        rows = sorted(self.usage.items())
        head = "| model | backend | calls | tokens in | tokens out |\n|---|---|---|---|---|\n"
        md = head + "\n".join(
            f"| {m} | {b} | {c} | {i} | {o} |" for (m, b), (c, i, o) in rows
        )
        plain = "\n".join(f"{m} ({b}): {c} calls, {i} in, {o} out" for (m, b), (c, i, o) in rows)
        display({"text/markdown": md, "text/plain": plain}, raw=True)
        return None

    def _emulator(self, rest: list[str]) -> Any:
        action = rest[0] if rest else "start"
        if action == "stop":
            if self.emulator is not None:
                self.emulator.stop()
                self.emulator = None
            self.session_settings.pop("server_url", None)
            print("emulator stopped; settings point at the real service again")  # noqa: T201
            return None
        if action != "start":
            raise UsageError("use %mistral emulator start|stop")
        if self.emulator is None:
            from .emulator import serve

            self.emulator = serve()
        self.session_settings["server_url"] = self.emulator.url
        print(  # noqa: T201
            "Mistral emulator running offline; %%mistral now talks to it "
            "(`%mistral emulator stop` to go back)"
        )
        return self.emulator

    def _panel(self, rest: list[str]) -> Any:
        from .panel import ChatPanel

        return ChatPanel(magics=self)


def line_of(args: Any) -> str:
    """The options of a parsed line, normalised (part of a conversation turn's source key)."""
    skip = {"debug", "dry_run"}
    return " ".join(f"{k}={v}" for k, v in sorted(vars(args).items()) if k not in skip)


def _cell_id(shell: Any) -> str | None:
    """The notebook cell id from the kernel's current request (JupyterLab sends ``cellId``)."""
    kernel = getattr(shell, "kernel", None)
    if kernel is None:
        return None
    try:
        if hasattr(kernel, "get_parent"):  # ipykernel >= 6
            parent = kernel.get_parent("shell")
        else:
            parent = getattr(kernel, "_parent_header", None)
    except Exception:  # an unusual kernel: fall back to the source hash
        return None
    metadata = (parent or {}).get("metadata") or {}
    value = metadata.get("cellId") or metadata.get("cell_id")
    return str(value) if value else None


def _lookup(namespace: Mapping[str, Any], name: str, option: str) -> Any:
    if not name.isidentifier():
        raise UsageError(f"{option} {name!r}: expected a variable name")
    if name not in namespace:
        raise UsageError(f"{option} {name}: no variable of that name in the notebook")
    return namespace[name]


def _check_encodable(text: str, what: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise UsageError(
            f"{what} contains a character that cannot be sent (lone surrogate at position "
            f"{exc.start})"
        ) from None


_FLAG_NAMES = {
    "temperature": "-t/--temperature",
    "top_p": "--top-p",
    "max_tokens": "--max-tokens",
    "min_tokens": "--min-tokens",
    "random_seed": "--seed",
}


def _option_message(message: str) -> str:
    for field, flag in _FLAG_NAMES.items():
        if message.startswith(field):
            return f"{flag}: {message}"
    return message


def _credentials_message(message: str, settings: settings_mod.Settings) -> str:
    """One message: with the backend chosen automatically, say how to set up either service."""
    if settings.source("backend").startswith("auto") and "credentials" in message:
        return settings_mod.NO_CREDENTIALS_HELP
    return f"{message}; `%mistral emulator` runs everything offline"


