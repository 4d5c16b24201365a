"""Where recipes and the command line find the emission families.

An emission family is one module: a subclass of :class:`~sciTie.hmm.TiedHMMMixin` on an
hmmlearn model class that sets ``family`` (the name recipes and ``--family`` use) and
implements the family hooks (its emission parameters, statistics, slot objective, starting
arrays, units). :func:`families` finds every such class, so a family defined in a user's own
module is available to recipes as soon as that module is imported; nothing is registered by
hand and nothing is kept in module state. ``sciTie/hmm/_autoregressive.py`` is an example.
"""
from __future__ import annotations

__all__ = ["families"]


def _subclasses(cls: type) -> list[type]:
    out, stack = [], [cls]
    while stack:
        for sub in stack.pop().__subclasses__():
            out.append(sub)
            stack.append(sub)
    return out


def families() -> dict[str, type]:
    """Every emission family by name (``{"gaussian": TiedGaussianHMM, ...}``); the first
    class defined with a name keeps it."""
    from . import _autoregressive, _models  # noqa: F401  (the library's own families)
    from ._base import TiedHMMMixin

    out: dict[str, type] = {}
    for cls in _subclasses(TiedHMMMixin):
        name = cls.__dict__.get("family")
        if isinstance(name, str) and name:
            out.setdefault(name, cls)
    return out
