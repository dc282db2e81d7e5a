"""mistral_magic: Mistral models in Jupyter (placeholder; filled in by the lead)."""

from ._version import __version__

__all__ = ["__version__"]
