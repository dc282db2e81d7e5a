"""Import layering, checked in fresh interpreters: heavy or UI dependencies load only when
needed, and the emulator stays independent of the package it emulates a service for."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import mistral_magic

_PROBE = """
import json, sys
{imports}
mods = sorted(sys.modules)
print(json.dumps(mods))
"""


def loaded_after(*imports: str) -> set[str]:
    code = _PROBE.format(imports="\n".join(imports))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


def _has(mods: set[str], package: str) -> bool:
    return any(m == package or m.startswith(package + ".") for m in mods)


def test_import_package_is_light() -> None:
    mods = loaded_after("import mistral_magic")
    for heavy in ("google.auth", "ipywidgets", "IPython", "httpx", "pydantic"):
        assert not _has(mods, heavy), heavy


@pytest.mark.parametrize(
    "module", ["mistral_magic.client", "mistral_magic.session", "mistral_magic.streaming"]
)
def test_client_and_session_do_not_import_ui(module: str) -> None:
    mods = loaded_after(f"import {module}")
    assert not _has(mods, "IPython")
    assert not _has(mods, "ipywidgets")
    assert not _has(mods, "google.auth")  # only when ADC is actually needed


def test_emulator_is_standalone() -> None:
    mods = loaded_after("import mistral_magic.emulator")
    ours = {m for m in mods if m.startswith("mistral_magic.")}
    assert all(
        m.startswith("mistral_magic.emulator") or m == "mistral_magic._version" for m in ours
    ), ours
    # only the standard library (and the package's own top module, which is lazy)
    assert not _has(mods, "httpx") and not _has(mods, "pydantic")


def test_emulator_sources_import_nothing_else_from_the_package() -> None:
    import ast
    import pathlib

    root = pathlib.Path(mistral_magic.__file__).parent / "emulator"
    for path in root.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                if node.level >= 2 or (node.module or "").startswith("mistral_magic"):
                    mod = node.module or ""
                    assert mod.startswith("mistral_magic.emulator"), (path.name, mod)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    name = alias.name
                    assert not name.startswith("mistral_magic") or name.startswith(
                        "mistral_magic.emulator"
                    ), (path.name, name)


def test_all_is_sorted_and_resolves() -> None:
    names = mistral_magic.__all__
    assert list(names) == sorted(names)
    assert len(set(names)) == len(names)
    for name in names:
        assert getattr(mistral_magic, name) is not None, name
    assert set(names) <= set(dir(mistral_magic))


def test_lazy_names_resolve_in_a_fresh_interpreter() -> None:
    mods = loaded_after(
        "import mistral_magic",
        "from mistral_magic import Mistral, MistralGCP, RetryConfig, SDKError",
    )
    assert _has(mods, "httpx")
    assert not _has(mods, "google.auth")
    assert not _has(mods, "IPython") and not _has(mods, "ipywidgets")
