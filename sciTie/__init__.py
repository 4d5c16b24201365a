"""sciTie: parameter tying for scientific models."""
from . import errors
from ._config import config_context, get_config, set_config
from ._version import __version__
from .core import *  # noqa: F401,F403
from .core import __all__ as _core_all

__all__ = ["__version__", "errors", "set_config", "get_config", "config_context", *_core_all]
