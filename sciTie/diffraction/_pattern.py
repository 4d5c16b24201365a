"""A powder pattern of one or several phases, with exact derivatives.

The calculated pattern is

    y(x) = background(x) + Σ_phases Σ_reflections I · shape(x - pos; widths)

on the axis of the pattern's instrument (2θ for constant wavelength, time of flight). The
instrument is a peak profile (:mod:`.profiles`): it turns each reflection's ``1/d²``, the
instrument parameters and the sample broadening into positions, intensity corrections and
widths, and draws the peak shape. The rest is shared by every profile and lives in one
module per job:

* construction (:mod:`._pattern_setup`): argument checks and the pattern's parameter group;
* layout (:mod:`._pattern_layout`): where each slot lives in the pattern's local vector;
* physics rows (:mod:`._rows`): reflections, structure factors, microstrain, intensities and
  their derivative rows over the local vector;
* windows and rendering (:mod:`._render`): peak windows that keep the tails (the
  lost-intensity criterion of :mod:`._tails`), far-field bands, the compiled loops
  (:mod:`._kernels`) and the Jacobian as one sparse product
  ``[∂y/∂I | ∂y/∂pos | ∂y/∂widths] @ [dI; dpos; dwidths]``;
* background (:mod:`._background`): Chebyshev series or points joined by straight lines, and
  pseudo-Voigt background peaks.
"""
from __future__ import annotations

import os

import numpy as np
import xarray as xr

from .._validation import check_bool, check_float, check_int
from ..errors import ArgumentTypeError, ValidationError
from ._absorption import check_absorption
from ._background import (background_basis, check_background_peaks,
                          check_background_points)
from ._crystal import Phase, check_scattering_table
from ._io import read_data, read_instrument
from ._pattern_layout import Layout, local_names, local_vector, make_layout, split_vector
from ._pattern_setup import (check_data, check_phase_values, check_phases, check_refine,
                             check_strain_axis, fit_points, make_group)
from ._render import PeakWindows, item_sums, render_pattern
from ._rows import largest_d, reflections_in_range, rows, setup
from ._texture import check_preferred_orientation
from .profiles import PeakProfile

__all__ = ["PowderPattern"]


class PowderPattern:
    """One powder pattern of one or several phases, measured on one instrument.

    Parameters
    ----------
    data : xarray.DataArray
        Observed pattern on the instrument's axis (``two_theta`` in degrees for
        :class:`~sciTie.diffraction.ConstantWavelength`, ``tof`` in µs for
        :class:`~sciTie.diffraction.TimeOfFlight`) with a ``variance`` coordinate.
    phases : Phase or sequence of Phase
        The crystal structures (a phase's group is shared when several patterns use it).
        Phase names must be unique.
    instrument : PeakProfile
        The instrument: its settings and the starting values of its parameters (see
        :func:`~sciTie.diffraction.read_instrument` for instrument files).
    name : str
        Name of the pattern's :attr:`group` (``"xray"``, ``"neutron"``).
    fit_range : (float, float), optional
        Limits of the refinement on the axis (default: the whole pattern).
    exclude : list of (float, float)
        Excluded regions.
    n_background : int, optional
        Number of Chebyshev background terms (default 6; not with ``background_points``).
    background_points : sequence of float, optional
        Positions of a background of straight lines between points (heights are the
        ``bkg`` parameters; flat beyond the first and last point), instead of Chebyshev
        terms.
    background_peaks : sequence, optional
        Pseudo-Voigt peaks added to the background, each ``(pos, area, sigma2, gamma)`` or
        a dict with those keys: position, area (counts·axis unit), Gaussian variance and
        Lorentzian FWHM in the profile's width units (centideg² and centideg for constant
        wavelength: GSAS-II's "sig" and "gam"). Example: the Kapton hump of a cryostat
        window, ``(5.25, 1.0, 2000.0, 0.0)``.
    phase_values : dict, optional
        Starting values of the per-phase terms, ``{phase name: {"fraction": .., "size": ..,
        "mustrain": ..}}``.
    strain_axis : dict, optional
        Phase name -> unique axis (h, k, l) of a uniaxial microstrain (GSAS-II's model):
        ``mustrain`` is then the equatorial and ``mustrain_axial`` the axial strain. Phases
        not named have isotropic strain (``mustrain`` only).
    scattering : dict, optional
        Scattering values that replace gemmi's tables, per element: ``{"Cu": {"fp": -1.9,
        "fpp": 0.6}}`` (X-ray f′, f″ at this wavelength), ``{"O": {"f0": [a1..a4, b1..b4,
        c]}}`` (X-ray form factor), ``{"O": {"b": 5.803}}`` (neutron length, fm).
    anomalous : bool
        Use gemmi's Cromer-Liberman f′, f″ for X-rays (default); False sets them to 0
        unless given in ``scattering``.
    tail_tolerance : float
        Largest fraction of a peak's integrated intensity left outside its window
        (default 1e-3; see the profile's tails). 0 evaluates every peak over the whole
        pattern.
    cell_correction : bool
        Whether staged refinement frees this pattern's cell-correction terms (``D..``), e.g.
        for data taken at another temperature.
    refine_zero : bool
        Whether staged refinement frees ``zero``.
    refine_displacement : bool
        Whether staged refinement frees the sample displacement with ``zero`` (``shift``
        for Bragg-Brentano, ``disp_x`` and ``disp_y`` for Debye-Scherrer).
    refine_profile : tuple of str, optional
        Profile parameters freed by the "profile" stage (instrument parameters, or per-phase
        ``size`` / ``mustrain``, which apply to every phase); default: the profile's
        :attr:`~.profiles.PeakProfile.default_refine`.
    refine_profile_late : tuple of str
        Profile parameters freed only with the atoms (``"late_profile"`` in
        :meth:`JointRefinement.set_refined`).
    preferred_orientation : dict, optional
        Phase name -> model, ``{"model": "march-dollase", "axis": (0, 0, 1), "ratio":
        1.0}`` or ``{"model": "spherical-harmonics", "order": 4, "psi": 0.0}`` (see
        :mod:`._texture`); the parameters (``po_ratio``, ``sh4_1`` ...) join the phase's
        child group of the pattern, fixed until freed (``"preferred_orientation"``).
    absorption : dict or str, optional
        ``{"model": "cylinder", "muR": 0.5}`` (Debye-Scherrer or time of flight) or
        ``{"model": "suortti", "rough_p": 1.0, "rough_q": 0.0}`` (Bragg-Brentano surface
        roughness), see :mod:`._absorption`; the parameters join the pattern's own, fixed
        until freed (``"absorption"``).

    Attributes
    ----------
    group : ParameterGroup
        ``scale`` and the instrument's parameters, ``bkg`` (background coefficients), a
        child ``bkpk`` with arrays ``pos, area, sigma2, gamma`` when there are background
        peaks, and one child per phase (named after it) with :data:`PHASE_PARAMS`:
        ``fraction`` (volume fraction; intensities scale as ``scale · fraction / V²``),
        ``size`` (µm) and ``mustrain``, ``mustrain_axial`` (10⁻⁶), which broaden the peaks as
        the profile says, and ``D..``, additive corrections to the reciprocal metric
        (1/d² = hᵀG*h + D11 h² + D22 k² + D33 l² + D12 hk + D13 hl + D23 kl) tied by crystal
        system. All start fixed except ``scale`` and ``bkg``.
    instrument : PeakProfile
    x, obs, sigma : ndarray
        Axis values, observed intensities and standard uncertainties of the fitted points.
    """

    def __init__(self, data: xr.DataArray, phases, instrument: PeakProfile, *,
                 name: str = "pattern", fit_range: tuple[float, float] | None = None,
                 exclude=(), n_background: int | None = None, background_points=None,
                 background_peaks=(), phase_values: dict | None = None,
                 strain_axis: dict | None = None, scattering: dict | None = None,
                 anomalous: bool = True, tail_tolerance: float = 1e-3,
                 cell_correction: bool = False, refine_zero: bool = True,
                 refine_displacement: bool = False, refine_profile=None,
                 refine_profile_late=(), preferred_orientation: dict | None = None,
                 absorption: dict | str | None = None) -> None:
        if not isinstance(instrument, PeakProfile):
            raise ArgumentTypeError(f"instrument must be a peak profile such as "
                                    f"ConstantWavelength(...) or TimeOfFlight(...) (or "
                                    f"read_instrument(path)), got {type(instrument).__name__}")
        if not isinstance(name, str):
            raise ArgumentTypeError(f"name must be a str, got {type(name).__name__}")
        self.instrument = instrument
        self.absorption = check_absorption(absorption, instrument)
        pattern_names = ("scale",) + instrument.params \
            + (self.absorption.names if self.absorption else ())
        phases = check_phases(phases, pattern_names + ("bkg", "bkpk"))
        self.texture = check_preferred_orientation(preferred_orientation, phases, instrument)
        pnames = [p.name for p in phases]
        tail_tolerance = check_float(tail_tolerance, "tail_tolerance (a lost fraction of the "
                                     "peak intensity)", minimum=0.0, maximum=0.5,
                                     high_open=True)
        self.cell_correction = check_bool(cell_correction, "cell_correction")
        self.refine_zero = check_bool(refine_zero, "refine_zero")
        self.refine_displacement = check_bool(refine_displacement, "refine_displacement")
        anomalous = check_bool(anomalous, "anomalous")
        x = check_data(data, instrument)
        points = check_background_points(background_points, instrument.axis)
        if points is not None and n_background is not None:
            raise ValidationError("give n_background (Chebyshev terms) or background_points "
                                  "(straight lines between points), not both")
        if points is None:
            # a Chebyshev term per point at most, and never a design matrix the size of memory
            n_background = check_int(6 if n_background is None else n_background,
                                     "n_background", minimum=0, maximum=min(100, x.size - 1))
        else:
            n_background = points.size
        allowed = pattern_names + ("size", "mustrain")
        self.refine_profile = check_refine(instrument.default_refine if refine_profile is None
                                           else refine_profile, "refine_profile", allowed)
        self.refine_profile_late = check_refine(refine_profile_late, "refine_profile_late",
                                                allowed)
        self.data = data
        self.phases = phases
        self.name = name
        self.tail_tolerance = float(tail_tolerance)
        self.fit_range, self.exclude, self.mask = fit_points(x, fit_range, exclude, instrument)
        self.x = x[self.mask]
        self.obs = data.values[self.mask].astype(float)
        self.sigma = np.sqrt(data["variance"].values[self.mask])
        instrument.check_widths(self.x)
        self.n_background = int(n_background)
        self.background_points = points
        self.background_basis = background_basis(self.x, self.fit_range, self.n_background,
                                                 points)
        self.background_peaks = check_background_peaks(background_peaks)
        phase_values = check_phase_values(phase_values, pnames)
        self.strain_axis = check_strain_axis(strain_axis, pnames)
        self.layout: Layout = make_layout(phases, pattern_names, self.n_background,
                                          len(self.background_peaks),
                                          [t.names if t else () for t in self.texture])
        self.group, self._allowed_D = make_group(self, phase_values)
        elements = {e for ph in phases for e in ph.elements}
        radiation = instrument.radiation
        table = check_scattering_table(scattering, radiation)
        missing = sorted(set(table) - elements)
        if missing:
            raise ValidationError(f"scattering: elements {missing} are in no phase of pattern "
                                  f"{name!r} (elements: {sorted(elements)})")
        self.scattering_table = table
        self.anomalous = anomalous
        wavelength = getattr(instrument, "lam1", None)
        self.scattering = [ph.scattering(radiation, wavelength, table=table,
                                         anomalous=anomalous) for ph in phases]
        self.windows: PeakWindows | None = None
        self._refl = setup(self)
        counts = self.reflections_in_range()
        if not any(counts.values()):
            values = dict(zip(self.layout.names, self.local_vector()[self.layout.pattern]))
            d = largest_d(self)
            lo, hi = self.fit_range
            raise ValidationError(
                f"pattern {name!r}: no reflection of {', '.join(pnames)} lies inside fit_range "
                f"({lo:g}, {hi:g}) {instrument.axis_units}s (largest d-spacing {d:.4g} Å, at "
                f"{instrument.describe_position(d, values)}); check the instrument, the cell "
                "and fit_range")

    @property
    def phase(self) -> Phase:
        """The first (main) phase."""
        return self.phases[0]

    @property
    def instrument_names(self) -> tuple[str, ...]:
        """The pattern's own parameters: ``scale`` and the instrument's."""
        return self.layout.names

    # -- construction ----------------------------------------------------------------------------
    @classmethod
    def from_files(cls, data_path: str | os.PathLike, instrument, phases, *, bank: int = 1,
                   **kwargs) -> "PowderPattern":
        """Read data and an instrument and build the pattern.

        Parameters
        ----------
        data_path : path-like
            GSAS STD/ESD/FXYE, or two or three columns (xy, xye, xys), on the instrument's
            axis.
        instrument : path-like or PeakProfile
            A GSAS ``.prm`` or GSAS-II ``.instprm`` file (its bank ``bank``), or an
            instrument.
        phases : Phase or list of Phase
        **kwargs
            Keyword arguments of :class:`PowderPattern`.
        """
        if not isinstance(instrument, PeakProfile):
            instrument = read_instrument(instrument, bank=bank)
        data = read_data(data_path, axis=instrument.axis)
        return cls(data, phases, instrument, **kwargs)

    @property
    def preferred_orientation_names(self) -> list[str]:
        """The preferred-orientation parameters of every phase (``PbSO4.po_ratio``)."""
        return [f"{ph.name}.{n}" for ph, t in zip(self.phases, self.texture) if t
                for n in t.names]

    @property
    def absorption_names(self) -> list[str]:
        """The absorption parameters (``muR``; ``rough_p``, ``rough_q``)."""
        return list(self.absorption.names) if self.absorption is not None else []

    @property
    def cell_correction_names(self) -> list[str]:
        """The ``D`` terms allowed (and independent) in each phase's crystal system."""
        return [f"{ph}.{d}" for ph, ds in self._allowed_D.items() for d in ds]

    # -- parameter plumbing ---------------------------------------------------------------------
    def local_vector(self, values=None) -> np.ndarray:
        """The local vector (see :meth:`local_names`) from the phases' and pattern's groups.

        ``values`` (a :class:`~sciTie.SlotValues` of a tree holding them) overrides the
        groups' own current values.
        """
        return local_vector(self, values)

    def local_names(self, structures: dict | None = None, prefix: str | None = None) -> list[str]:
        """Names of the local-vector entries as slot names of a group that holds them.

        Parameters
        ----------
        structures : dict, optional
            Phase name -> path of that phase's structure group in the fitted tree (default:
            the phase name, i.e. phase groups are direct children).
        prefix : str, optional
            Path of this pattern's group (default: its name).
        """
        return local_names(self, structures, prefix)

    def reflections_in_range(self) -> dict[str, int]:
        """Number of reflections of each phase whose nominal position (first wavelength,
        current cell, no zero shift) lies inside the fit range and outside the excluded
        regions: a phase with none contributes no more than tails, and its parameters are
        not determined."""
        return reflections_in_range(self)

    @property
    def n_local(self) -> int:
        """Number of local derivative columns."""
        return self.layout.n

    def split(self, v: np.ndarray) -> dict:
        """The local vector as named pieces (per phase: cell, atoms, terms; pattern; bkg)."""
        return split_vector(self, v)

    # -- windows ---------------------------------------------------------------------------------
    def refresh_windows(self, v: np.ndarray | None = None) -> None:
        """Freeze the peak windows and the far-field set-up at the local vector ``v``.

        Called at the start of every fit, so that the model is a smooth function of the
        parameters during it (see :class:`~._render.PeakWindows`); :meth:`windows_ok` says
        whether the criterion still holds at new values.
        """
        v = self.local_vector() if v is None else np.asarray(v, dtype=float)
        self.windows = PeakWindows(self, v)

    def reset_windows(self) -> None:
        """Forget the frozen windows (the next evaluation freezes them again)."""
        self.windows = None

    def windows_ok(self, v: np.ndarray) -> bool:
        """Whether the frozen windows still meet the lost-intensity criterion at ``v``."""
        if self.windows is None:
            return False
        return self.windows.hold(self, np.asarray(v, dtype=float))

    def light_copy(self) -> "PowderPattern":
        """A copy that shares the data but not the far-field caches (small to pickle)."""
        import copy

        out = copy.copy(self)
        if self.windows is not None:
            out.windows = self.windows.light_copy()
        return out

    # -- model -------------------------------------------------------------------------------
    def _rows(self, v: np.ndarray, grad: bool) -> dict:
        """Peak rows of every phase (see :func:`._rows.rows`)."""
        return rows(self, v, grad)

    def evaluate(self, v: np.ndarray, *, grad: bool = True, peaks: bool = False,
                 cols: np.ndarray | None = None):
        """Calculated pattern at the fit points and its Jacobian over the local columns.

        Parameters
        ----------
        v : ndarray
            The local vector, in :meth:`local_names` order.
        grad : bool
            Also return the Jacobian ``(n_points, n_local)``.
        peaks : bool
            Also return per-reflection information (for Bragg R and tick marks).
        cols : ndarray of int, optional
            Compute only these local Jacobian columns: ``jac`` then has one column per entry
            of ``cols``, in that order.

        Returns
        -------
        ycalc : ndarray
        jac : ndarray or None
            ``(n_points, n_local)``, or ``(n_points, len(cols))``.
        info : dict (only with ``peaks=True``)
        """
        v = np.asarray(v, dtype=float)
        lay = self.layout
        if v.shape != (lay.n,):
            raise ValidationError(f"v must be the local vector of shape ({lay.n},), got "
                                  f"{v.shape}")
        if not np.all(np.isfinite(v)):
            bad = [n for n, x in zip(self.local_names(), v) if not np.isfinite(x)]
            raise ValidationError(f"v must be finite; not finite: {', '.join(bad[:8])}"
                                  f"{' ...' if len(bad) > 8 else ''}")
        if self.windows is None:
            self.refresh_windows(v)
        r = self._rows(v, grad)
        sel_cols = np.arange(lay.n) if cols is None else np.asarray(cols, dtype=int)
        ypk, yb, Jc, core = render_pattern(self, v, r, grad, sel_cols)
        jac = None
        if grad:
            jac = Jc
            if self.n_background:
                pos = sel_cols - lay.bkg.start
                here = np.flatnonzero((pos >= 0) & (pos < self.n_background))
                jac[:, here] += self.background_basis[:, pos[here]]
        ycalc = ypk + yb
        if not peaks:
            return ycalc, jac
        info = {"ybkg": yb, "phase": r["phase"], "refl_index": r["ref"], "comp": r["comp"],
                "refl_pos": r["pos"], "refl_I": r["I"], "core_items": core, "phases": {}}
        for k, ph in enumerate(self.phases):
            part = r["per_phase"][k]
            nr = len(self._refl[k]["hkl"])
            info["phases"][ph.name] = {"hkl": self._refl[k]["hkl"],
                                       "mult": self._refl[k]["mult"], "q": part["q"],
                                       "F2": part["F2"], "pos": part["pos"][:nr],
                                       "I": part["I"][:nr], "volume": part["volume"]}
        return ycalc, jac, info

    def item_sums(self, info: dict, weights: np.ndarray) -> np.ndarray:
        """Σ over the data points of each reflection row's (core) contribution × ``weights``.

        With ``weights = 1`` the calculated integrated intensity seen in the fit range; with
        ``weights = (obs - bkg) / (calc - bkg)`` Rietveld's observed one (Bragg R).
        """
        return item_sums(self, info, weights)

    def calc(self, values=None, *, grad: bool = False):
        """Evaluate at the groups' current values (or at ``values``, see :meth:`local_vector`)."""
        return self.evaluate(self.local_vector(values), grad=grad)

