"""Repository-level pytest configuration for the notebook tests (nbval).

nbval starts a kernel for each notebook with the environment of this pytest process (fixtures
never run for notebook cells, so ``pytest_configure`` is the place to act). The tutorials start
the bundled emulator themselves (``%mistral emulator``), so they need no server from here; what
they need is an environment that doesn't point them elsewhere: a developer's ``MISTRAL_API_KEY``
would switch the backend to api.mistral.ai and change every stored footer, and
``MISTRAL_MAGIC_*`` / ``GOOGLE_*`` settings would change ``%mistral config``. Those variables are
removed for the session (and restored at the end), the same as ``scripts/refresh_notebooks.py``
does when it regenerates the stored outputs.
"""

from __future__ import annotations

import os

import pytest

_ENV_PREFIXES = ("MISTRAL_", "GOOGLE_")  # MISTRAL_ also covers MISTRAL_MAGIC_*
_ENV_NAMES = ("CLOUD_ML_REGION",)
_saved: dict[str, str] = {}


def pytest_configure(config: pytest.Config) -> None:
    for name in list(os.environ):
        if name.startswith(_ENV_PREFIXES) or name in _ENV_NAMES:
            _saved[name] = os.environ.pop(name)


def pytest_unconfigure(config: pytest.Config) -> None:
    os.environ.update(_saved)
    _saved.clear()
