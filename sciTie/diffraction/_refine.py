"""Joint Rietveld refinement: phase structures shared by any number of patterns."""
from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

from .. import io as sio
from .._estimator import EstimatorParams
from .._validation import check_array, check_bool, check_float, check_mapping
from ..core import ParameterGroup, ResidualTerm, fit_least_squares
from ..errors import (ArgumentTypeError, ConvergenceWarning, FitWarning, IdentifiabilityWarning,
                      UnknownNameError, ValidationError, not_fitted)
from ._cell import cell_volume
from ._crystal import ATOM_PARAMS, B_PER_U, CELL_NAMES, Phase, format_esd
from ._background import BACKGROUND_PEAK_PARAMS
from ._pattern import PowderPattern
from ._pattern_layout import PHASE_PARAMS

__all__ = ["JointRefinement", "STAGES", "pattern_statistics", "weight_fractions"]

#: Default staged recipe: what each stage adds to the refined set.
STAGES = (
    ("scale+background", {"pattern": ("scale", "bkg")}),
    ("cell", {"structure": ("cell",), "pattern": ("zero", "cell_correction")}),
    ("profile", {"pattern": ("profile",)}),
    ("atoms", {"structure": ("xyz", "uiso"), "pattern": ("late_profile",)}),
)


class _PatternTerm:
    """A pattern's weighted residual and its Jacobian over ``slots`` (a subset of the slots
    of its local vector ``idx``), from one evaluation when both are asked at one point."""

    def __init__(self, pattern: PowderPattern, idx: np.ndarray, slots: np.ndarray) -> None:
        self.pattern = pattern
        self.idx = idx
        self.slots = slots
        self.cols = np.flatnonzero(np.isin(idx, slots))
        self._kept: tuple[np.ndarray, np.ndarray] | None = None

    def residual(self, vals) -> np.ndarray:
        v = vals.array[self.idx]
        if self._kept is not None and np.array_equal(self._kept[0], v):
            return self._kept[1]
        p = self.pattern
        y, _ = p.evaluate(v, grad=False)
        return (p.obs - y) / p.sigma

    def jacobian(self, vals) -> np.ndarray:
        p = self.pattern
        v = vals.array[self.idx]
        y, J = p.evaluate(v, grad=True, cols=self.cols)
        self._kept = (v.copy(), (p.obs - y) / p.sigma)
        J /= -p.sigma[:, None]
        return J

    def term(self, weight: float) -> ResidualTerm:
        return ResidualTerm(self.pattern.name, self.residual, self.jacobian, weight=weight,
                            slots=self.slots)


def pattern_statistics(obs, calc, sigma, n_params: int = 0) -> dict:
    """Rp, wRp (percent), chi-square and GOF of one pattern (or of concatenated patterns)."""
    obs = check_array(obs, "obs", ndim=1)
    calc = check_array(calc, "calc", shape=obs.shape)
    sigma = check_array(sigma, "sigma", shape=obs.shape)
    if np.any(sigma <= 0):
        raise ValidationError(f"sigma must be > 0 everywhere; point {int(np.argmax(sigma <= 0))} "
                              f"has {sigma[np.argmax(sigma <= 0)]:g}")
    w = 1.0 / sigma ** 2
    r = obs - calc
    chi2 = float(np.sum(w * r * r))
    n = obs.size
    return {"rp": 100 * float(np.sum(np.abs(r)) / np.sum(np.abs(obs))),
            "wrp": 100 * float(np.sqrt(chi2 / np.sum(w * obs * obs))),
            "chi2": chi2, "npoints": int(n),
            "gof": float(np.sqrt(chi2 / max(n - n_params, 1)))}


def _items(value, what: str) -> list[str]:
    """``value`` as a list of str items (a bare string would be iterated by character)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple, set, frozenset)):
        raise ArgumentTypeError(f"{what} must be a list of names, got {value!r}")
    bad = [v for v in value if not isinstance(v, str)]
    if bad:
        raise ArgumentTypeError(f"{what}: items must be str, got {bad!r}")
    return list(value)


def _check_names(group: ParameterGroup, names, what: str, keywords: str) -> None:
    """Every name selects slots of ``group``; else an UnknownNameError naming the item."""
    for n in names:
        try:
            group.slot_index(n)
        except (KeyError, ValueError):
            raise UnknownNameError(f"{what}: {n!r} is neither a keyword ({keywords}) nor a "
                                   f"parameter of group {group.name!r}; parameters: "
                                   f"{', '.join(group.slot_names)}") from None


def _set(group: ParameterGroup, names, vary: bool) -> None:
    """Fix or free ``names``, skipping slots that are tied or constrained."""
    for n in names:
        try:
            (group.free if vary else group.fix)(n)
        except ValueError as exc:
            if "tied or constrained" not in str(exc):
                raise


def _density_terms(phases, values, pattern_prefix: str):
    """φ·(Z·M)/V of every phase of a pattern from a slot-value mapping."""
    out = []
    for ph, struct in phases:
        cell = np.array([values[f"{struct}.{n}"] for n in CELL_NAMES])
        occ = [values[f"{struct}.{a.name}.occ"] for a in ph.atoms]
        frac = values[f"{pattern_prefix}.{ph.name}.fraction"]
        out.append(frac * ph.cell_mass(occ) / cell_volume(cell))
    return np.array(out)


def weight_fractions(group: ParameterGroup, pattern: PowderPattern, *, covariance=None,
                     structures: dict | None = None, prefix: str | None = None) -> dict:
    """Volume and weight fractions of the phases of ``pattern`` with standard errors.

    The pattern's ``fraction`` terms are volume fractions (intensities scale as
    ``fraction / V²``); the weight fraction of phase k is
    ``w_k = φ_k ρ_k / Σ_j φ_j ρ_j`` with the density ``ρ = Z·M / V`` (Hill and Howard's
    ``S·Z·M·V`` with the scale ``S = φ / V²``). Standard errors propagate the slot covariance
    (``G Σ Gᵀ``) through the gradient with respect to the fractions, cells and occupancies.

    Parameters
    ----------
    group : ParameterGroup
        The fitted tree holding the phases' structure groups and the pattern's group.
    pattern : PowderPattern
    covariance : ndarray or callable, optional
        Slot covariance of ``group`` (``FitResult.slot_covar``), or a function returning
        the covariance block of given slot indices (for trees too large for one matrix);
        without it no errors.
    structures, prefix : optional
        Paths of the structure groups and of the pattern group (see
        :meth:`PowderPattern.local_names`).

    Returns
    -------
    dict
        ``{phase: {"volume": v, "volume_stderr": e, "weight": w, "weight_stderr": e}}``.
    """
    if not isinstance(group, ParameterGroup):
        raise ArgumentTypeError(f"group must be a ParameterGroup, got {type(group).__name__}")
    if not isinstance(pattern, PowderPattern):
        raise ArgumentTypeError(f"pattern must be a PowderPattern, got "
                                f"{type(pattern).__name__}")
    structures = dict(structures or {})
    prefix = pattern.name if prefix is None else prefix
    phases = [(ph, structures.get(ph.name, ph.name)) for ph in pattern.phases]
    names = [f"{s}.{n}" for ph, s in phases for n in CELL_NAMES]
    names += [f"{s}.{a.name}.occ" for ph, s in phases for a in ph.atoms]
    names += [f"{prefix}.{ph.name}.fraction" for ph, _ in phases]
    idx = np.array([group.slot_index(n) for n in names])
    if covariance is not None and not callable(covariance):
        covariance = check_array(covariance, "covariance", shape=(group.n_slots, group.n_slots),
                                 finite=False)
    vals = group.valuesdict()
    base = vals.array.copy()

    def fractions(slots):
        mapping = dict(zip(names, slots[idx]))
        t = _density_terms(phases, mapping, prefix)
        phi = np.array([mapping[f"{prefix}.{ph.name}.fraction"] for ph, _ in phases])
        return np.concatenate([phi / phi.sum(), t / t.sum()])

    f0 = fractions(base)
    err = np.full(f0.shape, np.nan)
    if covariance is not None:
        grad = np.zeros((f0.size, idx.size))
        for j, i in enumerate(idx):
            h = 1e-6 * max(abs(base[i]), 1e-3)
            up, dn = base.copy(), base.copy()
            up[i] += h
            dn[i] -= h
            grad[:, j] = (fractions(up) - fractions(dn)) / (2 * h)
        cov = (np.asarray(covariance(idx)) if callable(covariance)
               else np.asarray(covariance)[np.ix_(idx, idx)])
        err = np.sqrt(np.clip(np.einsum("ij,jk,ik->i", grad, cov, grad), 0, None))
    n = len(phases)
    return {ph.name: {"volume": float(f0[k]), "volume_stderr": float(err[k]),
                      "weight": float(f0[n + k]), "weight_stderr": float(err[n + k])}
            for k, (ph, _) in enumerate(phases)}


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _checked_parts(phases, patterns, weights) -> tuple[list, list, dict]:
    """The arguments of :class:`JointRefinement` checked: phases, patterns, weights."""
    if isinstance(phases, Phase):
        phases = [phases]
    elif isinstance(phases, (list, tuple)) and phases \
            and all(isinstance(p, Phase) for p in phases):
        phases = list(phases)
    else:
        raise ValidationError(f"phases must be a Phase or a non-empty list of Phase, got "
                              f"{phases!r:.80}")
    if isinstance(patterns, PowderPattern):
        patterns = [patterns]
    if not isinstance(patterns, (list, tuple)):
        raise ArgumentTypeError(f"patterns must be a PowderPattern or a list of them, got "
                                f"{type(patterns).__name__}")
    patterns = list(patterns)
    if not patterns:
        raise ValidationError("patterns: need at least one PowderPattern")
    for p in patterns:
        if not isinstance(p, PowderPattern):
            raise ValidationError(f"patterns must be PowderPattern objects, got "
                                  f"{type(p).__name__}")
        for ph in p.phases:
            if not any(ph is q for q in phases):
                raise ValidationError(f"pattern {p.name!r} was built for another Phase "
                                      f"object ({ph.name!r}); pass that phase to "
                                      "JointRefinement")
    names = [p.name for p in patterns]
    pnames = [ph.name for ph in phases]
    if len(set(names)) != len(names) or set(names) & set(pnames) \
            or len(set(pnames)) != len(pnames):
        raise ValidationError(f"pattern names must be unique and differ from the phase "
                              f"names {pnames}, got {names}")
    weights = check_mapping(weights, "weights", names, what="patterns",
                            example="{pattern name: weight}")
    weights = {k: check_float(v, f"weights[{k!r}]", minimum=0.0, low_open=True)
               for k, v in weights.items()}
    return phases, patterns, weights


class JointRefinement(EstimatorParams):
    """Rietveld refinement of several powder patterns sharing one or more phases.

    The patterns stay on the refinement, as :class:`~sciTie.pinn.PeriodicPINN` keeps its
    problem: each :class:`PowderPattern` carries its own parameters (scale, instrument,
    background, per-phase terms), and the phases and patterns together are the tie map that
    is edited (:meth:`set_refined`, :meth:`constrain_fractions`, ``group.tie``) before
    :meth:`fit` (see "The estimator contract" in :doc:`/concepts`).

    Parameters
    ----------
    phases : Phase or sequence of Phase
        The structures; each :attr:`Phase.group` (cell, atoms) is shared by every pattern
        that contains the phase.
    patterns : PowderPattern or list of PowderPattern
        Each keeps its own group (scale, instrument, background, per-phase terms). Pattern
        names must be unique and differ from the phase names.
    weights : dict, optional
        Extra weight per pattern name (default 1).
    max_nfev : int, optional
        Evaluation budget of each least-squares run (of each stage in
        :meth:`refine_stages`).
    ftol, xtol, gtol : float
        Convergence tolerances of :func:`~sciTie.fit_least_squares`.
    method : {'marquardt', 'lm', 'trf', 'dogbox'}
        The solver of :func:`~sciTie.fit_least_squares`: 'marquardt' (sciTie's
        Levenberg-Marquardt on the normal equations, bounds by projection) by default.

    Nothing is random: the same refinement gives the same numbers every run, so there is no
    ``random_state``. The arguments are stored as given and checked when the joint group is
    first assembled (by :attr:`group`, :meth:`set_refined` or :meth:`fit`).

    Attributes
    ----------
    group : ParameterGroup
        The joint group: one child per phase (named after it) and one per pattern. Choose
        what varies with ``group.fix``/``group.free`` (or :meth:`set_refined`), then call
        :meth:`fit`.
    result_ : FitResult
        Result of the last :meth:`fit`.
    statistics_ : dict
        Per pattern and ``"total"``: Rp, wRp, Bragg R (percent; also per phase), chi2, GOF.
        The total GOF is ``sqrt(chi2 / (N - P))``; a pattern's GOF is ``sqrt(chi2 / N)``
        (the parameters are shared, so they are not split between patterns).
    fit_seconds_, fit_cpu_seconds_ : float
        Wall and CPU time of the last :meth:`fit` (of all stages for :meth:`refine_stages`).

    Examples
    --------
    >>> ref = JointRefinement(phase, [xray, neutron])        # doctest: +SKIP
    >>> ref.refine_stages()                                  # doctest: +SKIP
    >>> print(ref.report())                                  # doctest: +SKIP
    """

    def __init__(self, phases, patterns, *, weights: dict | None = None,
                 max_nfev: int | None = None, ftol: float = 1e-8, xtol: float = 1e-8,
                 gtol: float = 1e-8, method: str = "marquardt") -> None:
        self.phases = phases
        self.patterns = patterns
        self.weights = weights
        self.max_nfev = max_nfev
        self.ftol = ftol
        self.xtol = xtol
        self.gtol = gtol
        self.method = method

    # -- assembly ---------------------------------------------------------------------------------
    def _assembly(self) -> tuple[list[Phase], list[PowderPattern], dict, ParameterGroup]:
        """The checked phases, patterns, weights and the joint group, built once for the
        objects given (again after ``set_params`` replaces them)."""
        key = (id(self.phases), id(self.patterns), id(self.weights),
               *map(id, _as_list(self.phases)), *map(id, _as_list(self.patterns)))
        kept = self.__dict__.get("_assembled")
        if kept is not None and kept[0] == key:
            return kept[1]
        phases, patterns, weights = _checked_parts(self.phases, self.patterns, self.weights)
        group = ParameterGroup("joint", description="joint Rietveld refinement")
        for ph in phases:
            group.add_group(ph.group)
        for p in patterns:
            group.add_group(p.group)
        self.__dict__["_assembled"] = (key, (phases, patterns, weights, group))
        return phases, patterns, weights, group

    @property
    def group(self) -> ParameterGroup:
        """The joint group (phases' and patterns' groups as children)."""
        return self._assembly()[3]

    @property
    def phase_list(self) -> list[Phase]:
        """The phases as a list (``phases`` may be one Phase)."""
        return self._assembly()[0]

    @property
    def pattern_list(self) -> list[PowderPattern]:
        """The patterns as a list (``patterns`` may be one PowderPattern)."""
        return self._assembly()[1]

    @property
    def phase(self) -> Phase:
        """The first (main) phase."""
        return self.phase_list[0]

    # -- choosing what varies ------------------------------------------------------------------
    def pattern(self, name: str) -> PowderPattern:
        """The pattern called ``name``."""
        for p in self.pattern_list:
            if p.name == name:
                return p
        raise UnknownNameError(f"no pattern named {name!r}; patterns: "
                               f"{[p.name for p in self.pattern_list]}")

    def phase_named(self, name: str) -> Phase:
        """The phase called ``name``."""
        for ph in self.phase_list:
            if ph.name == name:
                return ph
        raise UnknownNameError(f"no phase named {name!r}; phases: "
                               f"{[ph.name for ph in self.phase_list]}")

    def fix_all(self) -> None:
        """Fix every parameter of the structures and of every pattern (ties stay)."""
        for ph in self.phase_list:
            _set(ph.group, CELL_NAMES, False)
            for a in ph.atoms:
                _set(ph.group, [f"{a.name}.{q}" for q in ATOM_PARAMS], False)
            _set(ph.group, ph.refinable_uij, False)
        for p in self.pattern_list:
            names = [*p.instrument_names, "bkg"]
            names += [f"{ph.name}.{n}" for ph in p.phases for n in PHASE_PARAMS]
            names += p.preferred_orientation_names
            if len(p.background_peaks):
                names += [f"bkpk.{n}" for n in BACKGROUND_PEAK_PARAMS]
            _set(p.group, names, False)

    @staticmethod
    def pattern_names(p: PowderPattern, items) -> list[str]:
        """Parameter names of pattern ``p`` for the keywords of :meth:`set_refined`."""
        pn: list[str] = []
        per_phase = lambda n: [f"{ph.name}.{n}" for ph in p.phases]  # noqa: E731
        for item in items:
            if item in ("profile", "late_profile"):
                for n in (p.refine_profile if item == "profile" else p.refine_profile_late):
                    pn += per_phase(n) if n in ("size", "mustrain") else [n]
                    if n == "mustrain":
                        pn += [f"{ph}.mustrain_axial" for ph in p.strain_axis]
            elif item == "cell_correction":
                if p.cell_correction:
                    pn += p.cell_correction_names
            elif item == "zero":
                if p.refine_zero:
                    pn.append("zero")
                if p.refine_displacement:
                    pn += p.instrument.displacement_names()
            elif item == "displacement":
                pn += p.instrument.displacement_names()
            elif item in ("fraction", "size", "mustrain"):
                pn += per_phase(item) if len(p.phases) > 1 or item != "fraction" else []
                if item == "mustrain":
                    pn += [f"{ph}.mustrain_axial" for ph in p.strain_axis]
            elif item == "background_peaks":
                if len(p.background_peaks):
                    pn.append("bkpk.area")
            elif item == "preferred_orientation":
                pn += p.preferred_orientation_names
            elif item == "absorption":
                pn += p.absorption_names
            else:
                pn.append(item)
        return pn

    def set_refined(self, structure=(), patterns: dict | None = None) -> None:
        """Fix everything, then free the named items.

        Parameters
        ----------
        structure : iterable of str, or dict of phase name to iterable of str
            Slot names of the structure groups (for every phase, or per phase with a dict),
            or the keywords ``"cell"`` (lattice parameters allowed by the crystal system),
            ``"xyz"`` (coordinates allowed by site symmetry), ``"uiso"`` (Uiso of isotropic
            atoms and the U^{ij} the site allows of anisotropic ones), ``"uij"``
            (anisotropic atoms only) and ``"occ"``.
        patterns : dict
            Pattern name (or ``"*"`` for all) to an iterable of parameter names or the
            keywords ``"profile"`` (the pattern's ``refine_profile``), ``"late_profile"``
            (its ``refine_profile_late``, freed with the atoms in :data:`STAGES`), ``"zero"``
            (zero shift, plus the sample displacement for patterns created with
            ``refine_displacement=True``), ``"displacement"`` (the sample displacement only),
            ``"cell_correction"`` (the D terms allowed by each phase's crystal system, for
            patterns created with ``cell_correction=True``), ``"fraction"`` (the phase
            fractions of a multi-phase pattern; tied ones stay tied), ``"size"`` and
            ``"mustrain"`` (every phase; with ``mustrain_axial`` for a uniaxial strain),
            ``"background_peaks"`` (their areas), ``"preferred_orientation"`` (``po_ratio``
            or the spherical-harmonic coefficients of every phase that has a model) and
            ``"absorption"`` (``muR``, or ``rough_p`` and ``rough_q``). Per-phase items may also be named
            ``"CuO.mustrain"``.
        """
        if isinstance(structure, dict):
            check_mapping(structure, "structure", [ph.name for ph in self.phase_list],
                          what="phases")
            items = {k: _items(v, f"structure[{k!r}]") for k, v in structure.items()}
        else:
            items = {ph.name: _items(structure, "structure") for ph in self.phase_list}
        patterns = {} if patterns is None else patterns
        if not isinstance(patterns, dict):
            raise ArgumentTypeError(f"patterns must be a dict {{pattern name or '*': [items]}}, "
                                    f"got {type(patterns).__name__}")
        patterns = {key: _items(its, f"patterns[{key!r}]") for key, its in patterns.items()}
        # every name is checked before anything changes: a typo leaves the refined set as it was
        for ph in self.phase_list:
            _check_names(ph.group, ph.structure_names(items.get(ph.name, ())),
                         f"structure item for phase {ph.name!r}", "cell, xyz, uiso, uij, occ")
        for key, its in patterns.items():
            for p in (self.pattern_list if key == "*" else [self.pattern(key)]):
                _check_names(p.group, self.pattern_names(p, its), f"pattern item for {p.name!r}",
                             "profile, late_profile, zero, displacement, cell_correction, "
                             "fraction, size, mustrain, background_peaks, "
                             "preferred_orientation, absorption")
        self.fix_all()
        counts = {p.name: p.reflections_in_range() for p in self.pattern_list}
        seen = {ph.name for p in self.pattern_list for ph in p.phases}
        absent = [ph.name for ph in self.phase_list if ph.name in seen
                  and all(counts[p.name].get(ph.name, 0) == 0 for p in self.pattern_list)]
        for ph in self.phase_list:
            names = ph.structure_names(items.get(ph.name, ()))
            if ph.name in absent and names:
                warnings.warn(f"phase {ph.name!r} has no reflection inside the fit range of "
                              f"any pattern: its structure is not refined", FitWarning,
                              stacklevel=2)
                continue
            _set(ph.group, names, True)
        for key, its in patterns.items():
            targets = self.pattern_list if key == "*" else [self.pattern(key)]
            for p in targets:
                names = self.pattern_names(p, its)
                empty = [n for n, c in counts[p.name].items() if c == 0]
                if empty:
                    # terms of a phase without reflections, and the fractions that would
                    # trade against it, are not determined by this pattern
                    drop = [n for n in names if n.split(".")[0] in empty
                            or n.endswith(".fraction")]
                    if drop:
                        warnings.warn(f"pattern {p.name!r}: phase(s) {empty} have no "
                                      f"reflection inside the fit range; {drop} are not "
                                      f"refined", FitWarning, stacklevel=2)
                        names = [n for n in names if n not in drop]
                _set(p.group, names, True)

    def constrain_fractions(self, total: float = 1.0, patterns=None) -> None:
        """Tie the phase fractions of each multi-phase pattern so that they sum to ``total``.

        The last phase's fraction becomes ``total - Σ others`` (a linear tie in the core's
        tie map, so its value and esd follow the free ones exactly).
        """
        for p in (self.pattern_list if patterns is None else [self.pattern(n) for n in patterns]):
            constrain_fractions(p, total)

    # -- fitting ----------------------------------------------------------------------------------
    def _index(self):
        """Each pattern's local vector as positions in the joint slot vector."""
        pos = {n: i for i, n in enumerate(self.group.slot_names)}   # one compiled view
        return [np.array([pos[n] for n in p.local_names()], dtype=int) for p in self.pattern_list]

    def initialize(self) -> "JointRefinement":
        """Starting scale, background and background-peak areas by linear least squares."""
        vals = self.group.valuesdict()
        for p, idx in zip(self.pattern_list, self._index()):
            initialize_pattern(p, vals.array[idx])
        return self

    def _terms(self):
        """One residual term per pattern; its Jacobian covers the pattern's slots that the
        free parameters reach, and the residual computed with it is kept for the call that
        follows at the same point (one evaluation for both)."""
        G = self.group.tie_matrix()
        active_slots = np.flatnonzero(np.asarray(abs(G).sum(axis=1)).ravel() > 0)
        return [_PatternTerm(p, idx, idx[np.isin(idx, active_slots)]).term(
                    float(self._assembly()[2].get(p.name, 1.0)))
                for p, idx in zip(self.pattern_list, self._index())]

    def fit(self) -> "JointRefinement":
        """Refine the currently free parameters; values are written back into the groups.

        The solver and its tolerances are the constructor's ``method``, ``max_nfev``,
        ``ftol``, ``xtol`` and ``gtol``; :meth:`refine_stages` is the staged route.

        Returns
        -------
        self
        """
        t0, cpu = time.perf_counter(), time.process_time()
        self._run()
        self.fit_seconds_ = time.perf_counter() - t0
        self.fit_cpu_seconds_ = time.process_time() - cpu
        return self

    def _run(self) -> None:
        """One least-squares run of the free parameters (again while peaks outgrow their
        windows); sets ``result_`` and ``statistics_``."""
        group = self.group
        for attempt in range(3):
            vals = group.valuesdict()
            for p, idx in zip(self.pattern_list, self._index()):
                p.refresh_windows(vals.array[idx])
            res = fit_least_squares(group, self._terms(), max_nfev=self.max_nfev,
                                    ftol=self.ftol, xtol=self.xtol, gtol=self.gtol,
                                    method=self.method)
            group.set_free(res.x)
            vals = group.valuesdict()
            # peak windows are frozen during a run; widths that grew past them: run again
            if all(p.windows_ok(vals.array[idx]) for p, idx in zip(self.pattern_list, self._index())):
                break
        self._statistics(res.nvarys)
        stats = {f"wRp[{k}]": s["wrp"] for k, s in self.statistics_.items() if k != "total"}
        stats.update({"wRp": self.statistics_["total"]["wrp"],
                      "GOF": self.statistics_["total"]["gof"]})
        res.model = "sciTie.diffraction.JointRefinement"
        res.statistics.update(stats)
        res.plotter = _RietveldPlotter(self)
        self.result_ = res
        self._warn_suspicious(res, self.max_nfev)

    #: GOF above which a fit is reported as suspicious (wRp far above counting statistics).
    GOF_WARNING = 3.0

    def _warn_suspicious(self, res, max_nfev) -> None:
        """FitWarning/ConvergenceWarning for fits a crystallographer would not trust."""
        if not res.success:
            warnings.warn(f"the refinement stopped before converging ({res.message}"
                          f"{'; max_nfev=%d' % max_nfev if max_nfev else ''}); its values and "
                          "esds are not at a minimum", ConvergenceWarning, stacklevel=4)
        for name, s in self.statistics_.items():
            if name == "total":
                continue
            p = self.pattern(name)
            expected = 100 * np.sqrt(p.obs.size / np.sum(p.obs ** 2 / p.sigma ** 2))
            if s["gof"] > self.GOF_WARNING:
                warnings.warn(f"pattern {name!r}: wRp {s['wrp']:.2f} % is far above the "
                              f"{expected:.2f} % the counting statistics allow (GOF "
                              f"{s['gof']:.2f}): a false minimum or a missing part of the "
                              "model (phase, background, profile)", FitWarning, stacklevel=4)
        lo, hi = self.group.bounds()
        x = res.x
        span = np.maximum(np.abs(x), 1e-12)
        at = [n for n, v, a, b, s in zip(res.free_names, x, lo, hi, span)
              if (np.isfinite(a) and v - a <= 1e-9 * s) or (np.isfinite(b) and b - v <= 1e-9 * s)]
        if at:
            warnings.warn(f"parameters at their bounds: {', '.join(at)}; their esds assume an "
                          "interior minimum", FitWarning, stacklevel=4)

    def refine_stages(self, stages=STAGES, *, verbose: bool = False) -> "JointRefinement":
        """Staged refinement as crystallographers do it; each stage adds to the refined set.

        Parameters
        ----------
        stages : sequence of (label, dict)
            Each dict has ``"structure"`` and/or ``"pattern"`` items (see
            :meth:`set_refined`; ``"pattern"`` items apply to every pattern).
        verbose : bool
            Print wRp after every stage.

        Returns
        -------
        self
            ``result_`` is the last stage's; ``fit_seconds_`` and ``fit_cpu_seconds_``
            cover all stages; ``stage_log_`` lists each stage's label, free-parameter count
            and wRp per pattern.
        """
        if isinstance(stages, (str, bytes, dict)) or not isinstance(stages, (list, tuple)) \
                or not stages:
            raise ValidationError(f"stages must be a non-empty list of (label, {{'structure': "
                                  f"[...], 'pattern': [...]}}), got {stages!r:.80}")
        for i, stage in enumerate(stages):
            if not (isinstance(stage, (list, tuple)) and len(stage) == 2
                    and isinstance(stage[1], dict)):
                raise ValidationError(f"stages[{i}] must be (label, {{'structure': [...], "
                                      f"'pattern': [...]}}), got {stage!r:.80}")
            bad = [k for k in stage[1] if k not in ("structure", "pattern")]
            if bad:
                raise UnknownNameError(f"stages[{i}]: unknown keys {bad}; expected 'structure' "
                                       "and/or 'pattern'")
            for k, v in stage[1].items():
                _items(v, f"stages[{i}][{k!r}]")
        verbose = check_bool(verbose, "verbose")
        t0, cpu = time.perf_counter(), time.process_time()
        self.initialize()
        st: list[str] = []
        pt: list[str] = []
        self.stage_log_ = []
        for i, (label, spec) in enumerate(stages):
            st += list(spec.get("structure", ()))
            pt += list(spec.get("pattern", ()))
            self.set_refined(structure=st, patterns={"*": pt})
            with warnings.catch_warnings():
                if i < len(stages) - 1:
                    # early stages may leave a width at its clip (no covariance) and fit
                    # badly on purpose: only the last stage is judged
                    warnings.simplefilter("ignore", IdentifiabilityWarning)
                    warnings.simplefilter("ignore", FitWarning)
                self._run()
            self.stage_log_.append((label, self.result_.nvarys,
                                    {k: v["wrp"] for k, v in self.statistics_.items()}))
            if verbose:
                print(label, self.result_.nvarys, {k: round(v["wrp"], 3)
                                                   for k, v in self.statistics_.items()})
        self.fit_seconds_ = time.perf_counter() - t0
        self.fit_cpu_seconds_ = time.process_time() - cpu
        return self

    # -- results ----------------------------------------------------------------------------------
    def calculate(self, name: str | None = None):
        """Calculated pattern(s) at the fit points with per-reflection information."""
        if name is not None:
            self.pattern(name)  # an UnknownNameError listing the patterns
        vals = self.group.valuesdict()
        out = {}
        for p, idx in zip(self.pattern_list, self._index()):
            if name is not None and p.name != name:
                continue
            y, _, info = p.evaluate(vals.array[idx], grad=False, peaks=True)
            out[p.name] = (y, info)
        return out[name] if name is not None else out

    def _statistics(self, nvar: int | None = None) -> None:
        if nvar is None:
            nvar = self.result_.nvarys if hasattr(self, "result_") else 0
        stats = {}
        allo, allc, alls = [], [], []
        for p_name, (y, info) in self.calculate().items():
            p = self.pattern(p_name)
            s = pattern_statistics(p.obs, y, p.sigma, 0)
            s["bragg_r"], s["bragg_r_phase"] = bragg_r(p, y, info)
            stats[p_name] = s
            allo.append(p.obs)
            allc.append(y)
            alls.append(p.sigma)
        tot = pattern_statistics(np.concatenate(allo), np.concatenate(allc),
                                 np.concatenate(alls), nvar)
        for s in stats.values():
            s["gof"] = float(np.sqrt(s["chi2"] / s["npoints"]))
        stats["total"] = tot
        self.statistics_ = stats

    def parameters(self, *, structure_prefix: bool | None = None, biso: bool = False) -> dict:
        """Refined parameters as ``{name: {"value", "stderr"}}``.

        Every free parameter, plus structure slots tied to free ones (``b`` of a
        tetragonal cell) with their propagated esds. With one phase, structure parameters are
        named ``a``, ``Pb.x`` ... (unless ``structure_prefix=True``); with several they keep
        the phase name (``CuCr2O4.a``). Pattern parameters are ``xray.scale``,
        ``xray.PbSO4.D11`` ... With ``biso``, every ``<atom>.uiso`` is followed by
        ``<atom>.biso`` = 8π² Uiso (value and esd).
        """
        self._check_fitted("parameters")
        if structure_prefix is not None:
            structure_prefix = check_bool(structure_prefix, "structure_prefix")
        if structure_prefix is None:
            structure_prefix = len(self.phase_list) > 1
        r = self.result_
        free = set(r.free_names)
        G = self.group.tie_matrix()
        moving = np.asarray(abs(G).sum(axis=1)).ravel() > 0
        prefixes = tuple(f"{ph.name}." for ph in self.phase_list)
        out = {}
        for i, (n, v, s) in enumerate(zip(r.slot_names, r.slot_values, r.slot_stderr)):
            is_struct = n.startswith(prefixes)
            if n not in free and not (is_struct and moving[i]):
                continue
            key = n.split(".", 1)[1] if (is_struct and not structure_prefix) else n
            out[key] = {"value": float(v), "stderr": float(s)}
            if biso and is_struct and key.endswith(".uiso"):
                out[key[:-5] + ".biso"] = {"value": float(v) * B_PER_U,
                                           "stderr": float(s) * B_PER_U}
        return out

    def displacements(self) -> dict:
        """Isotropic displacement of every atom both ways: ``{"<phase>.<atom>": {"uiso",
        "uiso_stderr", "biso", "biso_stderr"}}`` with B = 8π²U (Å²); esds propagated through
        the ties (0 for a fixed atom)."""
        self._check_fitted("displacements")
        r = self.result_
        index = {n: i for i, n in enumerate(r.slot_names)}
        out = {}
        for ph in self.phase_list:
            for at in ph.atoms:
                i = index[f"{ph.name}.{at.name}.uiso"]
                u, e = float(r.slot_values[i]), float(r.slot_stderr[i])
                out[f"{ph.name}.{at.label}"] = {"uiso": u, "uiso_stderr": e,
                                                "biso": u * B_PER_U, "biso_stderr": e * B_PER_U}
        return out

    def phase_fractions(self, pattern: str | None = None) -> dict:
        """Volume and weight fractions (with esds) of the phases in a pattern.

        See :func:`weight_fractions`. ``pattern`` defaults to the first one.
        """
        self._check_fitted("phase_fractions")
        p = self.pattern_list[0] if pattern is None else self.pattern(pattern)
        return weight_fractions(self.group, p, covariance=self.result_.slot_covar)

    def _check_fitted(self, what: str) -> None:
        if not hasattr(self, "result_"):
            raise not_fitted(self, what)

    def slot_stderr(self) -> dict:
        """Standard errors of every slot (tied ones propagated), by slot name."""
        self._check_fitted("slot_stderr")
        r = self.result_
        return dict(zip(r.slot_names, r.slot_stderr))

    def report(self, *, min_correl: float = 0.1) -> str:
        """Text report: figures of merit per pattern and total, then the fit report.

        Parameters
        ----------
        min_correl : float
            Smallest absolute correlation listed.
        """
        self._check_fitted("report")
        lines = ["[[Joint Rietveld refinement]]",
                 f"    phases: {', '.join(ph.name for ph in self.phase_list)}",
                 f"    patterns: {', '.join(p.name for p in self.pattern_list)}",
                 f"    free parameters: {self.result_.nvarys if self.result_ else 0}",
                 f"    {'pattern':<10} {'points':>7} {'Rp %':>7} {'wRp %':>7} {'chi2':>11} "
                 f"{'GOF':>6} {'R_Bragg %':>9}"]
        for k, s in self.statistics_.items():
            rb = s.get("bragg_r", float("nan"))
            lines.append(f"    {k:<10} {s['npoints']:>7d} {s['rp']:>7.3f} {s['wrp']:>7.3f} "
                         f"{s['chi2']:>11.1f} {s['gof']:>6.3f} {rb:>9.3f}")
        multi = [p for p in self.pattern_list if len(p.phases) > 1]
        if multi and hasattr(self, "result_"):
            lines.append("    phase fractions (volume, weight):")
            for p in multi:
                for ph, f in self.phase_fractions(p.name).items():
                    lines.append(f"      {p.name}.{ph}: {f['volume']:.4f} +/- "
                                 f"{f['volume_stderr']:.4f}, {f['weight']:.4f} +/- "
                                 f"{f['weight_stderr']:.4f}")
        if hasattr(self, "result_"):
            lines.append("    displacements (B = 8π²U, Å²):")
            for atom, d in self.displacements().items():
                lines.append(f"      {atom:<16} Uiso {format_esd(d['uiso'], d['uiso_stderr']):>13}"
                             f"   Biso {format_esd(d['biso'], d['biso_stderr']):>12}")
            lines.append(self.result_.report(min_correl=min_correl))
        return "\n".join(lines)

    def to_xarray(self) -> xr.Dataset:
        """Observed, calculated, background and difference per pattern, plus the parameters.

        Each pattern ``<name>`` has variables ``<name>_obs``, ``<name>_calc``,
        ``<name>_background``, ``<name>_sigma`` on dim ``<axis>_<name>`` (``two_theta_`` or
        ``tof_``), and per phase the reflections in its range (``<name>_<phase>_hkl``,
        ``_F2``, ``_intensity`` with d, position and multiplicity coordinates) on dim
        ``refl_<name>_<phase>``; the fit
        parameters come from ``FitResult.to_xarray()`` (dims ``param``, ``cov_i``,
        ``cov_j``). Figures of merit, the instrument of each pattern (``<name>_radiation``,
        ``_wavelength``, ``_geometry`` ...) and provenance are in ``attrs``.
        """
        self._check_fitted("to_xarray")
        data = {}
        for p_name, (y, info) in self.calculate().items():
            p = self.pattern(p_name)
            axis = p.instrument.axis
            dim = f"{axis}_{p_name}"
            coords = {dim: (dim, p.x, {"units": p.instrument.axis_units,
                                       "long_name": p.instrument.axis_label.split(" (")[0]})}
            for k, v, ln in (("obs", p.obs, "observed"), ("calc", y, "calculated"),
                             ("background", info["ybkg"], "background"),
                             ("sigma", p.sigma, "standard uncertainty"),
                             ("difference", p.obs - y, "observed - calculated")):
                data[f"{p_name}_{k}"] = xr.DataArray(v, dims=(dim,), coords=coords,
                                                     attrs={"units": "counts", "long_name": ln})
            for ph in p.phases:
                pi = info["phases"][ph.name]
                pos = pi["pos"]
                keep = (pos >= p.x[0]) & (pos <= p.x[-1])
                rdim = f"refl_{p_name}_{ph.name}"
                units = p.instrument.axis_units
                rc = {rdim: (rdim, np.flatnonzero(keep),
                             {"long_name": f"reflection of {ph.name} (index)", "units": "1"}),
                      f"{rdim}_{axis}": (rdim, pos[keep], {
                          "units": units, "long_name": f"reflection position, "
                                                       f"{p.instrument.axis_label.split(' (')[0]}"}),
                      f"{rdim}_d": (rdim, 1 / np.sqrt(pi["q"][keep]),
                                    {"units": "angstrom", "long_name": "d-spacing"}),
                      f"{rdim}_multiplicity": (rdim, pi["mult"][keep],
                                               {"units": "1", "long_name": "multiplicity"})}
                # |F|²: form factors in electrons (X-rays), scattering lengths in fm (neutrons)
                f2_units = "fm^2" if p.instrument.radiation == "neutron" else "1"
                data[f"{p_name}_{ph.name}_hkl"] = xr.DataArray(
                    pi["hkl"][keep], dims=(rdim, "miller"),
                    coords={**rc, "miller": ("miller", ["h", "k", "l"],
                                             {"long_name": "Miller index"})},
                    attrs={"long_name": f"Miller indices of {ph.name}", "units": "1"})
                data[f"{p_name}_{ph.name}_F2"] = xr.DataArray(
                    pi["F2"][keep], dims=(rdim,), coords=rc,
                    attrs={"long_name": f"squared structure factor |F|² of {ph.name}"
                                        + ("" if f2_units == "fm^2" else " (electrons²)"),
                           "units": f2_units})
                data[f"{p_name}_{ph.name}_intensity"] = xr.DataArray(
                    pi["I"][keep], dims=(rdim,), coords=rc,
                    attrs={"long_name": f"integrated intensity of each {ph.name} reflection",
                           "units": f"counts {units}"})
        ds = xr.Dataset(data)
        if hasattr(self, "result_"):
            ds = xr.merge([ds, self.result_.to_xarray()], combine_attrs="override")
        attrs = {}
        for k, s in self.statistics_.items():
            for m in ("rp", "wrp", "chi2", "gof", "bragg_r"):
                if m in s:
                    attrs[f"{k}_{m}"] = float(s[m])
            for ph, r in s.get("bragg_r_phase", {}).items():
                attrs[f"{k}_bragg_r_{ph}"] = float(r)
        for p in self.pattern_list:
            attrs.update({f"{p.name}_{k}": v for k, v in instrument_metadata(p).items()})
        from ..provenance import provenance
        files = [str(p.data.attrs["source_file"]) for p in self.pattern_list
                 if os.path.isfile(str(p.data.attrs.get("source_file", "")))]
        files += [ph.source_file for ph in self.phase_list
                  if os.path.isfile(str(getattr(ph, "source_file", "")))]
        ds.attrs = {**provenance(model="sciTie.diffraction.JointRefinement", inputs=files),
                    **attrs}
        return ds

    def to_cif(self, phase: str | None = None, *, adp: str | None = None) -> str:
        """A refined structure (default: the first phase) as CIF text with esds.

        ``adp``: displacements as U_iso ('U') or B_iso ('B' = 8π²U); default the phase's
        :attr:`~Phase.adp` (the form its CIF used).
        """
        ph = self.phase if phase is None else self.phase_named(phase)
        se = {}
        if hasattr(self, "result_"):
            pre = f"{ph.name}."
            for n, s in self.slot_stderr().items():
                if n.startswith(pre):
                    se[n[len(pre):]] = s
        return ph.to_cif(stderr=se, adp=adp)

    def write_cif(self, path: str | os.PathLike, *, phase: str | None = None,
                  adp: str | None = None, overwrite: bool = False) -> Path:
        """Write :meth:`to_cif` to ``path`` atomically (never replaces a file unless
        ``overwrite``)."""
        return sio.write_text(path, self.to_cif(phase, adp=adp), overwrite=overwrite,
                              what="CIF")

    def plot(self, ax=None, *, pattern: str | None = None, sqrt: bool = False,
             magnify: tuple[float, float] | None = None, hkl: bool | int = False,
             path: str | os.PathLike | None = None, overwrite: bool = False):
        """Rietveld plot of pattern ``name``: observed, calculated, background, difference
        and reflection ticks of every phase.

        Parameters
        ----------
        ax : matplotlib Axes, optional
        pattern : str, optional
            The pattern's name (default: the first).
        sqrt : bool
            Intensities on a square-root scale (weak high-angle peaks become visible).
        magnify : (float, float), optional
            ``(two_theta, factor)``: everything above ``two_theta`` multiplied by ``factor``
            (marked on the plot).
        hkl : bool or int
            Label the reflection ticks with their Miller indices (an int: at most that many
            labels per phase, the strongest).
        path : path-like, optional
            Also save the figure (PNG, through :func:`sciTie.io.save_figure`; never replaces
            a file unless ``overwrite``).

        Returns
        -------
        matplotlib Axes
        """
        import matplotlib.pyplot as plt

        p = self.pattern_list[0] if pattern is None else self.pattern(pattern)
        sqrt = check_bool(sqrt, "sqrt")
        if not isinstance(hkl, (bool, np.bool_)):
            from .._validation import check_int
            hkl = check_int(hkl, "hkl (True, False or the most labels per phase)", minimum=0)
        if ax is not None and not callable(getattr(ax, "plot", None)):
            raise ArgumentTypeError(f"ax must be a matplotlib Axes, got {type(ax).__name__}")
        if magnify is not None:
            if not isinstance(magnify, (tuple, list)) or len(magnify) != 2:
                raise ValidationError(f"magnify must be (two_theta, factor > 0), got "
                                      f"{magnify!r}")
            check_float(magnify[0], "magnify two_theta", minimum=0.0, maximum=180.0)
            check_float(magnify[1], "magnify factor", minimum=0.0, low_open=True)
        y, info = self.calculate(p.name)
        if ax is None:
            fig, ax = plt.subplots(figsize=(10, 5))
        else:
            fig = ax.figure
        gain = np.ones_like(p.x)
        if magnify is not None:
            gain[p.x > float(magnify[0])] = float(magnify[1])

        def tr(v):
            v = v * gain
            return np.sign(v) * np.sqrt(np.abs(v)) if sqrt else v

        obs, calc, bkg = tr(p.obs), tr(y), tr(info["ybkg"])
        ax.plot(p.x, obs, "+", ms=3, color="tab:blue", label="observed")
        ax.plot(p.x, calc, "-", lw=0.8, color="tab:red", label="calculated")
        ax.plot(p.x, bkg, "-", lw=0.6, color="tab:green", label="background")
        diff = obs - calc
        span = obs.max() - obs.min()
        off = min(obs.min(), calc.min()) - 0.1 * span - diff.max()
        ax.plot(p.x, diff + off, "-", lw=0.6, color="tab:gray", label="difference")
        colors = ["k", "tab:purple", "tab:orange", "tab:brown"]
        for k, ph in enumerate(p.phases):
            pi = info["phases"][ph.name]
            inside = (pi["pos"] > p.x[0]) & (pi["pos"] < p.x[-1])
            pos = pi["pos"][inside]
            ytick = off + diff.min() - (0.03 + 0.04 * k) * span
            ax.plot(pos, np.full(pos.shape, ytick), "|", color=colors[k % len(colors)], ms=6,
                    label=f"{ph.name} reflections")
            if hkl:
                order = np.argsort(-pi["I"][inside]) if "I" in pi else np.arange(len(pos))
                if not isinstance(hkl, bool):
                    order = order[:int(hkl)]
                for j in order:
                    h = pi["hkl"][inside][j]
                    ax.annotate("".join(str(int(x)) for x in h), (pos[j], ytick),
                                xytext=(0, -4), textcoords="offset points", rotation=90,
                                ha="center", va="top", fontsize=5,
                                color=colors[k % len(colors)])
        if magnify is not None:
            ax.axvline(float(magnify[0]), color="0.6", lw=0.6, ls=":")
            ax.text(float(magnify[0]), obs.max(), f" ×{float(magnify[1]):g}", va="top",
                    fontsize=8)
        st = self.statistics_.get(p.name, {})
        ax.set_title(f"{p.name}: wRp = {st.get('wrp', float('nan')):.2f} %, "
                     f"Rp = {st.get('rp', float('nan')):.2f} %")
        ax.set_xlabel(p.instrument.axis_label)
        ax.set_ylabel("√intensity (√counts)" if sqrt else "intensity (counts)")
        ax.legend(loc="upper right", fontsize=8)
        if path is not None:
            sio.save_figure(fig, path, overwrite=overwrite, dpi=110)
            plt.close(fig)
        return ax


class _RietveldPlotter:
    """``FitResult.plot(ax=None, pattern=None, sqrt=, magnify=, hkl=)``: the Rietveld plot of
    the refinement the result came from."""

    def __init__(self, refinement: "JointRefinement"):
        self.refinement = refinement

    def __call__(self, result, ax=None, *, pattern: str | None = None, **kwargs):
        return self.refinement.plot(ax, pattern=pattern, **kwargs)


def instrument_metadata(p: PowderPattern) -> dict:
    """netCDF-safe description of a pattern's instrument (its profile's metadata at the
    current values: radiation, wavelengths, geometry ... or the TOF bank) and fit range."""
    v = p.group.valuesdict()
    out = p.instrument.metadata({n: float(v[n]) for n in p.instrument_names})
    out["fit_range"] = np.asarray(p.fit_range, dtype=float)
    return out


def bragg_r(p: PowderPattern, y: np.ndarray, info: dict) -> tuple[float, dict]:
    """Bragg R (percent) of a pattern and of each of its phases.

    Observed integrated intensities are apportioned as in Rietveld's method: each point's
    observed net intensity is shared among the reflections in proportion to their calculated
    contributions there (peak cores; the far tails are too weak to matter).
    """
    ybk = info["ybkg"]
    net = y - ybk
    ratio = np.where(np.abs(net) > 1e-12, (p.obs - ybk) / np.where(np.abs(net) > 1e-12, net, 1),
                     0.0)
    icalc_rows = p.item_sums(info, np.ones_like(y))
    iobs_rows = p.item_sums(info, ratio)
    nmax = int(info["refl_index"].max()) + 1 if len(info["refl_index"]) else 1
    key = info["phase"] * nmax + info["refl_index"]        # one id per phase and reflection
    icalc = np.bincount(key, weights=icalc_rows, minlength=len(p.phases) * nmax)
    iobs = np.bincount(key, weights=iobs_rows, minlength=len(p.phases) * nmax)
    keep = icalc > 0

    def r(sel):
        s = sel & keep
        den = np.sum(np.abs(iobs[s]))
        return 100 * float(np.sum(np.abs(iobs[s] - icalc[s])) / den) if den > 0 else float("nan")

    ids = np.arange(len(p.phases) * nmax) // nmax
    return r(np.ones_like(keep)), {ph.name: r(ids == k) for k, ph in enumerate(p.phases)}


def constrain_fractions(p: PowderPattern, total: float = 1.0) -> None:
    """Tie the last phase fraction of ``p`` to ``total - Σ others`` (nothing for one phase)."""
    total = check_float(total, "total (the sum of the phase fractions)", minimum=0.0,
                        low_open=True)
    if len(p.phases) < 2:
        return
    names = [f"{ph.name}.fraction" for ph in p.phases]
    last = names[-1]
    if len(names) == 2:
        p.group.tie(last, to=names[0], scale=-1.0, offset=float(total))
    else:
        p.group.constrain(last, f"{float(total)!r} - " + " - ".join(names[:-1]))
    others = [p.group[n].value for n in names[:-1]]
    if sum(others) >= total:  # keep the tied fraction non-negative at the start
        for n, v in zip(names[:-1], others):
            p.group[n].value = v * 0.95 * total / sum(others)
        p.group.update()


def initialize_pattern(p: PowderPattern, v: np.ndarray) -> None:
    """Starting scale, Chebyshev background and background-peak areas of ``p`` at local
    vector ``v``, by linear least squares (written into the pattern's group)."""
    lay = p.layout
    v = np.array(v, dtype=float)
    v[lay.columns()["scale"]] = 1.0
    v[lay.bkg] = 0.0
    nbp = len(p.background_peaks)
    area = slice(lay.bkpk.start + nbp, lay.bkpk.start + 2 * nbp)
    v[area] = 0.0
    p.refresh_windows(v)
    cols = np.arange(area.start, area.stop)
    ypk, J = p.evaluate(v, grad=nbp > 0, cols=cols if nbp else None)
    cols_bp = J if nbp else np.zeros((p.x.size, 0))
    A = np.column_stack([ypk, p.background_basis, cols_bp]) / p.sigma[:, None]
    coef, *_ = np.linalg.lstsq(A, p.obs / p.sigma, rcond=None)
    scale = coef[0] if coef[0] > 0 else np.sum(p.obs) / max(np.sum(ypk), 1e-300)
    if not np.isfinite(scale) or scale <= 0:
        warnings.warn(f"pattern {p.name!r}: no usable starting scale (calculated peaks are "
                      "zero in the fit range); scale left at 1", FitWarning, stacklevel=3)
        scale = 1.0
    p.group["scale"].value = float(scale)
    p.group["bkg"].value = coef[1:1 + p.n_background]
    if nbp:
        p.group["bkpk.area"].value = np.maximum(coef[1 + p.n_background:], 0.0)
