"""The contract of a peak profile: what a :class:`PowderPattern` asks of its instrument.

A profile is one module holding one class derived from :class:`PeakProfile`. An instance is
an instrument: its settings (radiation, geometry ...) and the starting values of its
parameters. The class declares

* the pattern's axis (``two_theta`` in degrees, ``tof`` in microseconds) and the domain of
  a fit range on it;
* its instrument parameters (names, units, lower bounds, what staged refinement frees);
* the peak shape: a compiled function of the offset from the centre and a row of
  precomputed per-peak parameters, returning its value and analytic derivatives with respect
  to the centre and to each *width slot* (the per-reflection width quantities the profile
  computes, e.g. Gaussian variance and Lorentzian FWHM);
* the physics of a reflection: its position, intensity correction and width slots as
  functions of ``q = 1/d²``, the instrument parameters and the sample broadening, with their
  derivatives over the pattern's local vector;
* its tail widths: the half-width of the window that keeps all but ``tolerance`` of a
  peak's intensity (the lost-intensity criterion of :mod:`.._tails`) and the radius where
  far-field evaluation starts;
* how its parameters are read from instrument files (GSAS ``.prm``, GSAS-II ``.instprm``)
  and stored in netCDF attributes.

Everything else (structure factors, multiplicities, phase fractions, cell corrections,
microstrain models, windows, rendering, the Jacobian) is shared by every profile.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..._validation import check_float
from ...errors import UnknownNameError, ValidationError

__all__ = ["PeakProfile", "ReflectionContext", "Component", "Asymmetry"]


@dataclass
class ReflectionContext:
    """What the shared physics hands a profile for the reflections of one phase.

    Attributes
    ----------
    q : ndarray
        ``1/d²`` of each reflection (Å⁻²), cell corrections included.
    dq : ndarray or None
        ``∂q/∂local`` (n_reflections, n_local), or None without derivatives.
    values : dict
        The pattern's parameters (``scale`` and the profile's) by name.
    col : dict
        Local column of each of those parameters.
    size : float
        The phase's crystallite size (µm) and ``size_col`` its local column.
    mu : ndarray
        Microstrain of each reflection (10⁻⁶) and ``dmu`` its derivative rows (or None).
    n_local : int
    grad : bool
    """

    q: np.ndarray
    dq: np.ndarray | None
    values: dict
    col: dict
    size: float
    size_col: int
    mu: np.ndarray
    dmu: np.ndarray | None
    n_local: int
    grad: bool


@dataclass
class Component:
    """One set of peaks of a phase (one per wavelength of a constant-wavelength doublet).

    ``corr`` multiplies ``scale · multiplicity · |F|² · fraction / V²`` (Lorentz and
    polarisation factors, a doublet's intensity ratio); ``widths`` are the profile's width
    slots in :attr:`PeakProfile.width_slots` order. ``d...`` are derivative rows over the
    local vector (None without derivatives); ``ok`` marks the reflections that exist.
    """

    pos: np.ndarray
    corr: np.ndarray
    widths: list
    ok: np.ndarray
    dpos: np.ndarray | None = None
    dcorr: np.ndarray | None = None
    dwidths: list | None = None

    def multiply(self, factor: np.ndarray, dfactor: np.ndarray | None) -> None:
        """Multiply the intensity correction by ``factor`` (a sample correction such as
        preferred orientation or absorption), with its derivative rows ``dfactor``."""
        if self.dcorr is not None:
            self.dcorr = self.dcorr * factor[:, None] + self.corr[:, None] * dfactor
        self.corr = self.corr * factor


@dataclass
class Asymmetry:
    """A profile's split of some peaks into weighted, shifted copies (axial divergence).

    ``nodes`` holds ``(rows, shift, weight, dshift, dweight)`` per group of rows: ``shift``
    and ``weight`` are ``(m, k)``; ``dshift``/``dweight`` are tuples whose first entry is the
    derivative with respect to the peak position and whose others go with the local columns
    ``cols``. ``span`` is the extent of every row's copies, ``mean`` their mean shift and
    ``dmean`` (n, 1 + len(cols)) its derivatives (None without derivatives or copies).
    """

    span: np.ndarray
    mean: np.ndarray
    nodes: list
    dmean: np.ndarray | None
    cols: tuple = ()


class PeakProfile:
    """Base class of the peak profiles (see the module docstring for the contract).

    Subclasses are dataclasses whose fields are the instrument's settings and the starting
    values of its :attr:`params`; they set the class attributes below and implement the
    methods that raise :class:`NotImplementedError` here.
    """

    #: Registry name (``"cw"``, ``"tof"``).
    kind: ClassVar[str] = ""
    #: One line for listings and reports.
    description: ClassVar[str] = ""
    #: Name, units and plot label of the pattern's axis.
    axis: ClassVar[str] = ""
    axis_units: ClassVar[str] = ""
    axis_label: ClassVar[str] = ""
    #: Instrument parameters in local-vector order (after the pattern's ``scale``).
    params: ClassVar[tuple[str, ...]] = ()
    #: Units and lower bounds of the parameters.
    units: ClassVar[dict] = {}
    minimum: ClassVar[dict] = {}
    #: The per-reflection width quantities the shape's derivatives refer to.
    width_slots: ClassVar[tuple[str, ...]] = ()
    #: Axis units per width unit of background peaks (their ``sigma2``, ``gamma``).
    width_unit: ClassVar[float] = 1.0
    #: Units of a background peak's ``pos, area, sigma2, gamma``.
    background_peak_units: ClassVar[tuple[str, ...]] = ()
    #: What the "profile" stage frees by default.
    default_refine: ClassVar[tuple[str, ...]] = ()
    #: The compiled peak shape (signature :data:`.._pseudo_voigt.SHAPE_SIG`).
    shape: ClassVar[Any] = None
    #: Settings (not parameters) stored with the instrument.
    settings: ClassVar[tuple[str, ...]] = ()
    #: Column of the shape parameters that says whether a peak evaluates every term of its
    #: shape (see :meth:`needs_all_terms`); None: always.
    all_terms_column: ClassVar[int | None] = None
    # every profile also has ``radiation`` ('xray' or 'neutron'): a setting or a class value

    # -- values ------------------------------------------------------------------------------
    def start_values(self) -> dict:
        """Starting value of every parameter in :attr:`params`."""
        return {n: float(getattr(self, n)) for n in self.params}

    @classmethod
    def _check_names(cls, values: dict) -> None:
        names = {f.name for f in dataclasses.fields(cls)}
        bad = sorted(set(values) - names)
        if bad:
            raise UnknownNameError(f"{cls.__name__}: unknown keys {bad}; expected settings or "
                                   f"parameters from {sorted(names)}")

    @classmethod
    def from_values(cls, **values) -> "PeakProfile":
        """The instrument with these settings and starting values (names are checked; a
        missing required one is named)."""
        cls._check_names(values)
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in values
                   and f.default is dataclasses.MISSING]
        if missing:
            raise ValidationError(f"{cls.__name__}: give {missing}")
        return cls(**values)

    def replace(self, **changes) -> "PeakProfile":
        """A copy with some settings or starting values changed (names are checked)."""
        self._check_names(changes)
        return dataclasses.replace(self, **changes)

    def _check_values(self) -> None:
        """Every parameter a finite float within its lower bound (called by subclasses)."""
        for n in self.params:
            v = check_float(getattr(self, n), f"{type(self).__name__}.{n}")
            lo = self.minimum.get(n)
            if lo is not None and v < lo:
                raise ValidationError(f"{type(self).__name__}.{n} must be >= {lo:g}, got {v:g}")
            object.__setattr__(self, n, v)

    def to_attrs(self) -> dict:
        """netCDF-safe description: ``profile`` (the kind), settings and starting values."""
        out: dict = {"profile": self.kind}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, (bool, np.bool_)):
                v = int(v)
            if isinstance(v, (int, float, str)):
                out[f.name] = v
        return out

    @classmethod
    def from_attrs(cls, attrs: dict) -> "PeakProfile":
        """The instrument described by :meth:`to_attrs` (other keys are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in attrs.items() if k in names})

    def metadata(self, values: dict) -> dict:
        """What a fitted pattern's netCDF attributes say about the instrument, at the
        parameter ``values`` (by name)."""
        return {k: v for k, v in self.to_attrs().items() if k == "profile" or k in self.settings}

    # -- the staged-refinement vocabulary ----------------------------------------------------
    def displacement_names(self) -> list[str]:
        """What the ``"displacement"`` item frees (none by default)."""
        return []

    # -- the axis ----------------------------------------------------------------------------
    def check_range(self, lo: float, hi: float, name: str) -> None:
        """Refuse a fit range outside the axis' domain (default: ``0 < lo < hi``)."""
        if not (0 < lo < hi):
            raise ValidationError(f"{name} must be ({self.axis} lo, hi) with 0 < lo < hi "
                                  f"({self.axis_units}), got ({lo:g}, {hi:g})")

    def check_widths(self, x: np.ndarray) -> None:
        """Refuse starting values whose peak widths are not real at some fitted point ``x``
        (axis values); none to check by default."""

    # -- physics -----------------------------------------------------------------------------
    def components(self, ctx: ReflectionContext) -> list[Component]:
        """Position, intensity correction and width slots of the reflections of ``ctx``."""
        raise NotImplementedError

    def positions(self, q: np.ndarray, values: dict) -> np.ndarray:
        """Nominal peak positions (first component, without sample offsets) at ``q``."""
        raise NotImplementedError

    def d_min(self, fit_range, values: dict, size: float, mu: float,
              tolerance: float) -> float:
        """Smallest d-spacing whose peak (tails included) can reach into ``fit_range``."""
        raise NotImplementedError

    def width_at(self, x: np.ndarray, values: dict, size: float, mu: float):
        """FWHM (axis units) and Lorentzian fraction of a peak at axis position ``x``."""
        raise NotImplementedError

    def shape_params(self, widths: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-peak rows of the shape's parameters, and the FWHM and eta of each peak."""
        raise NotImplementedError

    def tails(self, prm: np.ndarray, fwhm: np.ndarray, eta: np.ndarray, span: np.ndarray,
              tolerance: float) -> tuple[np.ndarray, np.ndarray]:
        """Window half-width (lost-intensity criterion) and far-field radius of each peak."""
        raise NotImplementedError

    def needs_all_terms(self, prm: np.ndarray, width_rows: list | None) -> np.ndarray:
        """Per peak: whether the shape must evaluate every term, given the derivative rows
        of its width slots over the columns being computed (None: no derivatives). Only
        called when :attr:`all_terms_column` is set."""
        return np.ones(len(prm), dtype=bool)

    # -- asymmetry (optional) -------------------------------------------------------------------
    def node_counts(self, q: np.ndarray, values: dict, size: float, mu: float,
                    refining: set) -> np.ndarray:
        """Quadrature nodes of each reflection's asymmetry (0: a symmetric peak)."""
        return np.zeros(q.shape, dtype=int)

    def asymmetry(self, pos: np.ndarray, nq: np.ndarray, values: dict, col: dict,
                  grad: bool) -> Asymmetry:
        """The split of the asymmetric peaks (none by default)."""
        n = pos.size
        return Asymmetry(np.zeros(n), np.zeros(n), [], None)

    # -- messages --------------------------------------------------------------------------------
    def describe_position(self, d: float, values: dict) -> str:
        """Where a reflection of spacing ``d`` lies, for error messages."""
        return f"{self.axis} = {float(self.positions(np.array([d ** -2.0]), values)[0]):.4g}"
