"""Who we talk to: URL shapes of Vertex AI and api.mistral.ai, and model aliases per backend.

Pure functions and constants; no I/O.
"""

from __future__ import annotations

from typing import Final, Literal
from urllib.parse import quote, urlsplit

Backend = Literal["vertex", "mistral"]
BACKENDS: Final[tuple[Backend, ...]] = ("vertex", "mistral")

DEFAULT_REGION: Final = "europe-west4"
MISTRAL_SERVER_URL: Final = "https://api.mistral.ai"
CLOUD_PLATFORM_SCOPE: Final = "https://www.googleapis.com/auth/cloud-platform"

#: Alias -> model id, per backend. Vertex ids are the Model Garden publisher ids.
MODEL_ALIASES: Final[dict[str, dict[Backend, str]]] = {
    "small": {"vertex": "mistral-small-2503", "mistral": "mistral-small-latest"},
    "medium": {"vertex": "mistral-medium-3", "mistral": "mistral-medium-latest"},
    "large": {"vertex": "mistral-large-2411", "mistral": "mistral-large-latest"},
    "codestral": {"vertex": "codestral-2501", "mistral": "codestral-latest"},
}
DEFAULT_MODEL_ALIAS: Final = "small"

#: Chat models Mistral publishes on Vertex AI Model Garden (there is no list endpoint there).
VERTEX_MODELS: Final[tuple[str, ...]] = (
    "mistral-small-2503",
    "mistral-medium-3",
    "mistral-large-2411",
    "codestral-2501",
    "codestral-2",
    "mistral-nemo-2407",
    "mistral-large@2407",
    "mistral-nemo@2407",
    "codestral@2405",
)


#: The current id of each alias on Vertex: what a 404 suggests.
CURRENT_VERTEX_MODELS: Final[tuple[str, ...]] = tuple(
    ids["vertex"] for ids in MODEL_ALIASES.values()
)


def resolve_model(model: str | None, backend: Backend) -> str:
    """Return the model id for ``backend``: aliases resolve, anything else passes through."""
    name = (model or DEFAULT_MODEL_ALIAS).strip()
    alias = MODEL_ALIASES.get(name.lower())
    return alias[backend] if alias else name


def vertex_base_url(region: str, server_url: str | None = None) -> str:
    """Scheme and host for Vertex; ``server_url`` replaces only those, never the path."""
    if server_url:
        parts = urlsplit(server_url)
        return f"{parts.scheme}://{parts.netloc}"
    return f"https://{region}-aiplatform.googleapis.com"


def vertex_path(project_id: str, region: str, model: str, *, stream: bool) -> str:
    """Path of the rawPredict (or streamRawPredict) method for ``model``.

    ``@`` stays literal: legacy ids such as ``mistral-large@2407`` are sent as written.
    """
    method = "streamRawPredict" if stream else "rawPredict"
    safe_model = quote(model, safe="@.-_")
    return (
        f"/v1/projects/{quote(project_id, safe='')}/locations/{quote(region, safe='')}"
        f"/publishers/mistralai/models/{safe_model}:{method}"
    )


def mistral_base_url(server_url: str | None = None) -> str:
    """Base URL for api.mistral.ai (or a replacement such as the emulator), no trailing slash."""
    return (server_url or MISTRAL_SERVER_URL).rstrip("/")


CHAT_COMPLETIONS_PATH: Final = "/v1/chat/completions"
MODELS_PATH: Final = "/v1/models"
