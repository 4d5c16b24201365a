"""sciTie: parameter tying for scientific models.

The core (parameters, groups, the tie map, least squares, fit results) is imported with the
package; the models load on first use, so ``import sciTie; sciTie.hmm`` works without paying
for torch or gemmi until a subpackage is touched.
"""
import importlib

from . import errors
from ._config import config_context, get_config, set_config
from ._version import __version__
from .core import *  # noqa: F401,F403
from .core import __all__ as _core_all

__all__ = ["__version__", "errors", "set_config", "get_config", "config_context", *_core_all]

_SUBPACKAGES = ("hmm", "diffraction", "pinn", "datasets", "recipes", "io", "provenance")


def __getattr__(name: str):
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'sciTie' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_SUBPACKAGES))
