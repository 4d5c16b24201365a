"""Peak profiles: one module per kind of instrument, registered by name.

A :class:`~sciTie.diffraction.PowderPattern` takes an *instrument*, an instance of a profile
class: :class:`ConstantWavelength` (``"cw"``: X-ray or neutron, TCH pseudo-Voigt with FCJ
asymmetry) or :class:`TimeOfFlight` (``"tof"``: back-to-back exponentials ⊗ pseudo-Voigt).
A new profile is one module with a :class:`PeakProfile` subclass (see :mod:`._base` for the
contract) plus one entry in :data:`PROFILES`; nothing else in the package names a profile.
"""
from __future__ import annotations

from ...errors import ArgumentTypeError, UnknownNameError
from ._base import Asymmetry, Component, PeakProfile, ReflectionContext
from .cw import ConstantWavelength
from .tof import TimeOfFlight

__all__ = ["PeakProfile", "ConstantWavelength", "TimeOfFlight", "PROFILES", "get_profile",
           "ReflectionContext", "Component", "Asymmetry"]

#: Profile classes by name.
PROFILES: dict[str, type[PeakProfile]] = {cls.kind: cls for cls in (ConstantWavelength,
                                                                    TimeOfFlight)}


def get_profile(kind: str) -> type[PeakProfile]:
    """The profile class registered as ``kind``."""
    if not isinstance(kind, str):
        raise ArgumentTypeError(f"profile kind must be a str, got {type(kind).__name__}")
    try:
        return PROFILES[kind]
    except KeyError:
        raise UnknownNameError(f"unknown profile {kind!r}; profiles: "
                               f"{', '.join(sorted(PROFILES))}") from None
