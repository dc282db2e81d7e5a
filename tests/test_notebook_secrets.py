"""Every tutorial notebook, run with known fake secrets in the environment, leaks none of them.

Each notebook in ``notebooks/`` is executed with nbclient in a fresh kernel (this interpreter,
cwd ``notebooks/``) whose environment holds a distinctive fake ``MISTRAL_API_KEY`` and
``GOOGLE_OAUTH_ACCESS_TOKEN``. With the key set, the backend is chosen automatically as
api.mistral.ai; the notebooks start the bundled emulator themselves, so everything still runs
offline. The kernel logs at DEBUG level (root logger, so ``mistral_magic``, httpx and httpcore
included) into a file, and its process stdout/stderr go to files too. The executed notebook is
saved to a temporary folder, and the test asserts that neither secret appears anywhere in the
saved ``.ipynb`` (outputs, output metadata, widget state, notebook metadata) or in the captured
logs. Cells tagged ``nbval-skip`` need real credentials and a network and are not run here, as in
the nbval run; cells tagged ``raises-exception`` may fail, any other error fails the test.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import ipykernel.kernelspec
import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
NOTEBOOK_PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))

FAKE_API_KEY = "sk-FAKEmistralKEY0000leakcanary7Q2w9Zx4"
FAKE_ACCESS_TOKEN = "ya29.FAKEgoogleTOKEN0000leakcanary3Rt8Vb6Np"
SECRETS = {"MISTRAL_API_KEY": FAKE_API_KEY, "GOOGLE_OAUTH_ACCESS_TOKEN": FAKE_ACCESS_TOKEN}
# A secret may also leak cut short or re-encoded: look for its distinctive middle too
# (masked forms such as ``sk-…Zx4`` keep only the prefix and the last 4 characters).
NEEDLES = {
    FAKE_API_KEY: ("FAKEmistralKEY", "leakcanary7Q2w"),
    FAKE_ACCESS_TOKEN: ("FAKEgoogleTOKEN", "leakcanary3Rt8"),
}
SKIP_TAG = "nbval-skip"
CELL_TIMEOUT = 120

pytestmark = pytest.mark.slow


class _ThisInterpreter(KernelSpecManager):  # type: ignore[misc]
    """Every kernel name means this interpreter (like nbval's ``--nbval-current-env``)."""

    def get_kernel_spec(self, kernel_name: str) -> Any:
        return self.kernel_spec_class(
            resource_dir=ipykernel.kernelspec.RESOURCES, **ipykernel.kernelspec.get_kernel_dict()
        )


class _SkippingClient(NotebookClient):  # type: ignore[misc]
    """Does not run cells tagged ``nbval-skip`` (they need real credentials and a network)."""

    async def async_execute_cell(  # type: ignore[no-untyped-def]
        self, cell, cell_index, execution_count=None, store_history=True
    ):
        if SKIP_TAG in cell.get("metadata", {}).get("tags", []):
            return cell
        return await super().async_execute_cell(cell, cell_index, execution_count, store_history)


def _kernel_env() -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("MISTRAL_", "GOOGLE_")) and name != "CLOUD_ML_REGION"
    }
    env.update(SECRETS)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _run(nb: Any, tmp_path: Path) -> dict[str, Path]:
    """Execute ``nb`` in place with the fake secrets; return the captured log files."""
    logs = {
        "logging": tmp_path / "kernel-logging.log",
        "stdout": tmp_path / "kernel-stdout.log",
        "stderr": tmp_path / "kernel-stderr.log",
    }
    setup = (
        "import logging; logging.basicConfig(level=logging.DEBUG, force=True, "
        f"filename={str(logs['logging'])!r}, format='%(name)s %(levelname)s %(message)s')"
    )
    client = _SkippingClient(
        nb,
        km=KernelManager(kernel_name="python3", kernel_spec_manager=_ThisInterpreter()),
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
        extra_arguments=[f"--IPKernelApp.exec_lines={json.dumps([setup])}"],
    )
    with logs["stdout"].open("wb") as out, logs["stderr"].open("wb") as err:
        client.execute(env=_kernel_env(), stdout=out, stderr=err)
    return logs


def _leaks(text: str) -> list[str]:
    found = []
    for secret, parts in NEEDLES.items():
        for needle in (secret, *parts):
            if needle in text:
                found.append(needle)
    return found


def test_there_are_tutorials() -> None:
    assert len(NOTEBOOK_PATHS) >= 9, [p.name for p in NOTEBOOK_PATHS]


@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=[p.stem for p in NOTEBOOK_PATHS])
def test_notebook_leaks_no_secret(path: Path, tmp_path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    logs = _run(nb, tmp_path)
    saved = tmp_path / path.name
    nbformat.write(nb, saved)

    problems = {}
    for name, file in {"notebook": saved, **logs}.items():
        text = file.read_text(encoding="utf-8", errors="replace")
        leaked = _leaks(text)
        if leaked:
            problems[f"{name} ({file.name})"] = leaked
    assert not problems, f"fake secrets leaked in {path.name}: {problems}"
    # The run really exercised the package: every notebook loads it and prints something.
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert outputs, f"{path.name} produced no output"


def test_kernel_sees_the_fake_secrets(tmp_path: Path) -> None:
    """The check above is not vacuous: the kernel has the secrets and the package uses them."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import os; print(sorted(k for k in os.environ if k in "
            "('MISTRAL_API_KEY', 'GOOGLE_OAUTH_ACCESS_TOKEN')))"
        ),
        nbformat.v4.new_code_cell("%load_ext mistral_magic\n%mistral config"),
        nbformat.v4.new_code_cell("emulator = %mistral emulator"),
        nbformat.v4.new_code_cell("%%mistral --no-stream -o r\nSay hello."),
        nbformat.v4.new_code_cell(
            "seen = emulator.requests[-1]['headers'].get('authorization', '')\n"
            "print(len(seen) > 20 and seen == 'Bearer ' + os.environ['MISTRAL_API_KEY'])"
        ),
    ]
    logs = _run(nb, tmp_path)
    out = [o for c in nb.cells for o in c.outputs]
    texts = json.dumps(out)
    assert "MISTRAL_API_KEY" in texts and "GOOGLE_OAUTH_ACCESS_TOKEN" in texts
    config = nb.cells[1].outputs[0]["data"]["text/plain"]
    assert "mistral" in config.splitlines()[0], config  # an API key selects api.mistral.ai
    assert "api_key" in config and "env" in config
    assert nb.cells[4].outputs[0]["text"].strip() == "True"  # the emulator got the real value
    assert not _leaks(texts)
    for file in logs.values():
        assert not _leaks(file.read_text(encoding="utf-8", errors="replace"))
