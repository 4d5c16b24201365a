"""sciTie: parameter tying for scientific models."""
from ._version import __version__
from .core import *  # noqa: F401,F403
from .core import __all__ as _core_all

__all__ = ["__version__", *_core_all]
