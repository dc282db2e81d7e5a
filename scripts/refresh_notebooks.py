"""Re-run the tutorial notebooks so their stored outputs are the real outputs of a run.

Command (from the repository root):

    python scripts/refresh_notebooks.py          # every notebooks/*.ipynb
    python scripts/refresh_notebooks.py 01 05    # names containing 01 or 05

Each notebook is executed in place with nbclient: a fresh kernel from this interpreter, cwd
``notebooks/``, 120 s per cell. Cells tagged ``raises-exception`` may fail (their error is the
stored output); any other error aborts the refresh of that notebook and leaves the file
untouched. Cells tagged ``nbval-skip`` need real credentials: they are not run and keep no
outputs. The notebooks start the bundled emulator themselves (``%mistral emulator``), so this
runs offline. Variables that would point the notebooks at a real service (``MISTRAL_*``,
``GOOGLE_*``) are removed from the kernel's environment, as the root ``conftest.py`` does for
nbval, so the stored outputs are the same on every machine.

Then check: ``python -m pytest -q notebooks/`` (nbval, strict, with
``notebooks/nbval_sanitize.cfg``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import ipykernel.kernelspec
import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
SKIP_TAG = "nbval-skip"
CELL_TIMEOUT = 120
_ENV_PREFIXES = ("MISTRAL_", "GOOGLE_")
_ENV_NAMES = ("CLOUD_ML_REGION", "GOOGLE_APPLICATION_CREDENTIALS")


def clean_environ() -> None:
    """Drop credentials and settings from the environment the kernel inherits."""
    for name in list(os.environ):
        if name.startswith(_ENV_PREFIXES) or name in _ENV_NAMES:
            del os.environ[name]


class _ThisInterpreter(KernelSpecManager):  # type: ignore[misc]
    """Every kernel name means this interpreter (like nbval's ``--nbval-current-env``)."""

    def get_kernel_spec(self, kernel_name: str):  # type: ignore[no-untyped-def]
        return self.kernel_spec_class(
            resource_dir=ipykernel.kernelspec.RESOURCES, **ipykernel.kernelspec.get_kernel_dict()
        )


def kernel_manager() -> KernelManager:
    """A kernel manager that starts ``sys.executable -m ipykernel_launcher``."""
    return KernelManager(kernel_name="python3", kernel_spec_manager=_ThisInterpreter())


class _SkippingClient(NotebookClient):
    """A NotebookClient that does not run cells tagged ``nbval-skip`` (they need credentials)."""

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):  # type: ignore[no-untyped-def]
        if SKIP_TAG in cell.get("metadata", {}).get("tags", []):
            cell.outputs = []
            cell.execution_count = None
            return cell
        return await super().async_execute_cell(cell, cell_index, execution_count, store_history)


def refresh(path: Path) -> float:
    """Execute ``path`` in place; return the seconds it took."""
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    client = _SkippingClient(
        nb,
        km=kernel_manager(),
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
        record_timing=False,
        # The panel's static transcript is what a viewer without widgets shows; widget state
        # would only add ids that change on every run.
        store_widget_state=False,
    )
    client.execute()
    nb.metadata.pop("widgets", None)
    nbformat.validate(nb)
    nbformat.write(nb, path)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("only", nargs="*", help="refresh only notebooks whose name contains these")
    args = parser.parse_args(argv)
    clean_environ()
    paths = sorted(NOTEBOOKS.glob("*.ipynb"))
    if args.only:
        paths = [p for p in paths if any(s in p.name for s in args.only)]
    failed = 0
    for path in paths:
        try:
            seconds = refresh(path)
        except CellExecutionError as exc:
            failed += 1
            print(f"FAILED  {path.name}\n{exc}", file=sys.stderr)  # noqa: T201
            continue
        print(f"ok      {path.name}  ({seconds:.1f} s)")  # noqa: T201
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
