"""Series of powder patterns (a temperature scan): the per-pattern recipe and sequential fits.

A series is a list of :class:`PatternSpec` (plain data: 2θ, counts, variances, temperature)
and one :class:`SeriesRecipe` (the phases, the pattern options, the refinement stages, the
phase-fraction constraint and symmetry ties that hold over part of the series). Both are
picklable, and the work on one pattern is the plain function :func:`refine_one`
``(spec, recipe, start) -> dict``, so independent fits can run in other processes (or on a
Dask cluster through any executor with ``submit``).

:class:`SequentialRefinement` fits pattern by pattern, each from the previous results
(``mode="previous"``: the last result moved on along the last two, see
:func:`~sciTie.diffraction._chain.next_start`)
or all from one start (``mode="start"``, in parallel with ``n_jobs``);
its result is one :class:`xarray.Dataset` with a ``pattern`` dimension and a ``temperature``
coordinate. :class:`~sciTie.diffraction.ParametricRefinement` fits them all at once with laws
in temperature.
"""
from __future__ import annotations

import copy
import numbers
import os
import re
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
import xarray as xr
from scipy.special import fdtrc

from ..errors import ArgumentTypeError, FitWarning, IdentifiabilityWarning, ValidationError
from ..core import ParameterGroup
from ._chain import next_start
from ._crystal import Phase
from ._io import make_pattern
from ._pattern import PowderPattern
from .._estimator import EstimatorParams
from ._refine import JointRefinement, weight_fractions
from ._series_result import (pattern_arrays, plot_series, sequence_entries, series_dataset,
                             series_report, series_result)

__all__ = ["PatternSpec", "SeriesTie", "SeriesRecipe", "refine_one", "SequentialRefinement",
           "specs_from_dataset", "tie_transition"]


@dataclass(frozen=True)
class PatternSpec:
    """One pattern of a series as plain data.

    Parameters
    ----------
    label : str
        Short name (``"OH_00"``).
    temperature : float
        The series variable (K).
    two_theta, intensity, variance : ndarray
        The observed pattern (degrees, counts, counts²).
    file : str
        Where the data came from (for reports and provenance).
    """

    label: str
    temperature: float
    two_theta: np.ndarray
    intensity: np.ndarray
    variance: np.ndarray
    file: str = ""

    def data(self) -> xr.DataArray:
        """The pattern as the DataArray :class:`PowderPattern` takes."""
        return make_pattern(self.two_theta, self.intensity, self.variance, name=self.label,
                            attrs={"source_file": self.file, "temperature": self.temperature})


@dataclass(frozen=True)
class SeriesTie:
    """A tie that holds over part of a series: ``slot = scale · to + offset``.

    It applies to the patterns with temperature ``> above`` (when given) and ``< below``
    (when given); for example ``SeriesTie("CuCr2O4.c", "CuCr2O4.b", above=135)`` makes the
    orthorhombic cell tetragonal (b = c) above 135 K.
    """

    slot: str
    to: str
    scale: float = 1.0
    offset: float = 0.0
    above: float | None = None
    below: float | None = None

    def __post_init__(self) -> None:  # input checks (issue 12)
        from .._validation import check_float
        for what in ("slot", "to"):
            if not isinstance(getattr(self, what), str):
                raise ValidationError(f"SeriesTie {what} must be a slot name (str), got "
                                      f"{getattr(self, what)!r}")
        check_float(self.scale, "SeriesTie scale")
        check_float(self.offset, "SeriesTie offset")
        for what in ("above", "below"):
            check_float(getattr(self, what), f"SeriesTie {what}", allow_none=True)
        if self.above is not None and self.below is not None and not self.above < self.below:
            raise ValidationError(
                f"SeriesTie({self.slot!r}, {self.to!r}): above={self.above:g} and "
                f"below={self.below:g} leave no temperature (it would hold where T > "
                f"{self.above:g} and T < {self.below:g}); give above < below, or one of them")

    def applies(self, temperature: float) -> bool:
        """Whether the tie holds at ``temperature``."""
        if self.above is not None and not temperature > self.above:
            return False
        if self.below is not None and not temperature < self.below:
            return False
        return True

    @property
    def name(self) -> str:
        """``"CuCr2O4.c=CuCr2O4.b"``: the label used in results."""
        rhs = self.to if self.scale == 1.0 else f"{self.scale:g}*{self.to}"
        if self.offset:
            rhs += f"{self.offset:+g}"
        return f"{self.slot}={rhs}"


@dataclass
class SeriesRecipe:
    """How every pattern of a series is modelled and refined.

    Parameters
    ----------
    phases : list of Phase
        Templates: each pattern's fit works on its own copy.
    pattern_options : dict
        Keyword arguments of :class:`PowderPattern` (instrument, fit range, background,
        strain axis ...); the pattern's group is called ``"pattern"``.
    stages : list of (label, structure, pattern_items)
        The staged refinement of a pattern fitted from the templates (see
        :meth:`JointRefinement.set_refined` for the items); each stage lists everything
        that is refined in it.
    continue_stages : int
        How many of the last stages a pattern started from a previous result runs.
    constrain_fractions : bool
        Tie the phase fractions of each pattern to sum to 1.
    ties : sequence of SeriesTie
        Ties that hold over part of the series.
    max_nfev : int or None
        Evaluation budget of each stage's least-squares run (a fit that runs out of it is
        reported with a :class:`~sciTie.errors.ConvergenceWarning`).
    """

    phases: list
    pattern_options: dict = field(default_factory=dict)
    stages: list = field(default_factory=list)
    continue_stages: int = 1
    constrain_fractions: bool = True
    ties: Sequence[SeriesTie] = ()
    max_nfev: int | None = 300

    def __post_init__(self) -> None:
        if not self.phases or not all(isinstance(p, Phase) for p in self.phases):
            raise ValidationError("phases: give a non-empty list of Phase templates")
        if not self.stages:
            raise ValidationError("stages: give at least one (label, structure, pattern_items)")
        for st in self.stages:
            if not (isinstance(st, (tuple, list)) and len(st) == 3):
                raise ValidationError(f"stages: each stage is (label, structure, pattern_items), "
                                      f"got {st!r}")
        if not 1 <= int(self.continue_stages) <= len(self.stages):
            raise ValidationError(f"continue_stages must be between 1 and {len(self.stages)}, "
                                  f"got {self.continue_stages}")
        for t in self.ties:
            if not isinstance(t, SeriesTie):
                raise ValidationError(f"ties: expected SeriesTie objects, got {t!r}")
        import inspect
        known = set(inspect.signature(PowderPattern).parameters) - {"data", "phases", "name"}
        bad = sorted(set(self.pattern_options) - known)
        if bad:
            raise ValidationError(f"pattern_options: unknown PowderPattern options {bad}; "
                                  f"expected some of {sorted(known)}")

    @property
    def final_stage(self):
        """The last stage: what a finished fit of one pattern refines."""
        return self.stages[-1]


# -- one pattern -----------------------------------------------------------------------------
def build_refinement(spec: PatternSpec, recipe: SeriesRecipe, *,
                     ties: Iterable[SeriesTie] | None = None) -> JointRefinement:
    """The single-pattern refinement of ``spec`` (fresh copies of the template phases).

    ``ties`` defaults to the recipe's ties that apply at the pattern's temperature.
    """
    phases = [copy.deepcopy(ph) for ph in recipe.phases]
    pat = PowderPattern(spec.data(), phases, name="pattern", **recipe.pattern_options)
    ref = JointRefinement(phases, [pat], max_nfev=recipe.max_nfev)
    if recipe.constrain_fractions:
        ref.constrain_fractions()
    if ties is None:
        ties = [t for t in recipe.ties if t.applies(spec.temperature)]
    for t in ties:
        ref.group.tie(t.slot, to=t.to, scale=t.scale, offset=t.offset)
    return ref


_ELEMENT = re.compile(r"^(?P<name>.+?)\[(?P<i>\d+)\]$")


def apply_values(group: ParameterGroup, values: dict) -> None:
    """Set slots of ``group`` by name (``"CuCr2O4.a"``, ``"pattern.bkg[2]"``); names the group
    does not have and tied slots are skipped, values beyond a parameter's bounds are set to
    the bound (an extrapolated start, see :func:`~sciTie.diffraction._chain.next_start`)."""
    params = group.parameters
    status = dict(zip(group.slot_names, [None] * group.n_slots))
    for name, val in values.items():
        if name not in status or not np.isfinite(val):
            continue
        m = _ELEMENT.match(name)
        base, i = (m.group("name"), int(m.group("i"))) if m else (name, None)
        par = params.get(base)
        if par is None or par.expr is not None:
            continue
        flat = 0 if i is None else i
        lo = float(np.broadcast_to(par.min, par.shape).flat[flat]) if par.shape else par.min
        hi = float(np.broadcast_to(par.max, par.shape).flat[flat]) if par.shape else par.max
        val = min(max(float(val), lo), hi)
        if i is None:
            if par.shape == ():
                par.value = val
        else:
            arr = np.array(par.value, dtype=float)
            arr.flat[i] = val
            par.value = arr
    group.update()


#: A series fit stops when its next step would move no parameter, nor any combination of
#: them, by more than this many esds (see :func:`_stage_fit`).
SHIFT_TOLERANCE = 0.03


def _stage_fit(ref: JointRefinement, stage, *, quiet: bool) -> None:
    """Refine what ``stage`` lists, to convergence in the crystallographers' sense.

    With the covariance ``A⁻¹ χ²/(n - p)`` the largest shift in esds of a step δ along any
    combination of the parameters is ``√(δᵀAδ (n - p)/χ²)``, and ``δᵀAδ`` is the χ²
    decrease Levenberg-Marquardt predicts for it: ``ftol = SHIFT_TOLERANCE² / n`` stops the
    fit once the next step would shift nothing by more than :data:`SHIFT_TOLERANCE` esd
    (8e-8 for a CuCr2O4 pattern, where the default 1e-8 asked for about 0.01 esd and spent
    a tenth of the series' iterations on it).
    """
    _, structure, items = stage
    ref.set_refined(structure=structure, patterns={"*": list(items)})
    npoints = sum(p.obs.size for p in ref.patterns)
    with warnings.catch_warnings():
        if quiet:
            warnings.simplefilter("ignore", IdentifiabilityWarning)
            warnings.simplefilter("ignore", FitWarning)
        ref.set_params(ftol=max(SHIFT_TOLERANCE ** 2 / npoints, 1e-8))
        ref.fit()


def _fit(ref: JointRefinement, recipe: SeriesRecipe, start: dict | None) -> None:
    if start is None:
        ref.initialize()
        stages = recipe.stages
    else:
        apply_values(ref.group, start)
        stages = recipe.stages[-recipe.continue_stages:]
    for k, stage in enumerate(stages):
        _stage_fit(ref, stage, quiet=k < len(stages) - 1)


def _moving(result) -> list[str]:
    """Slots that are refined: free ones and tied ones that follow a free one."""
    return [n for n, st, se in zip(result.slot_names, result.slot_status, result.slot_stderr)
            if st == "free" or (st != "fixed" and np.isfinite(se) and se > 0)]


def _summary(ref: JointRefinement, spec: PatternSpec, seconds: float) -> dict:
    r = ref.result_
    st = ref.statistics_["pattern"]
    names = list(r.slot_names)
    p = ref.patterns[0]
    y, _ = ref.calculate("pattern")
    calc = np.full(spec.two_theta.shape, np.nan)
    calc[p.mask] = y
    fr = weight_fractions(ref.group, p, covariance=r.slot_covar) if len(p.phases) > 1 else {}
    return {
        "label": spec.label, "file": spec.file, "temperature": float(spec.temperature),
        "success": bool(r.success), "message": r.message, "nfev": int(r.nfev),
        "seconds": float(seconds), "wrp": st["wrp"], "rp": st["rp"], "gof": st["gof"],
        "chi2": st["chi2"], "npoints": st["npoints"], "nvarys": int(r.nvarys),
        "redchi": float(r.redchi), "bragg_r": st["bragg_r"],
        "values": dict(zip(names, map(float, r.slot_values))),
        "stderr": dict(zip(names, map(float, r.slot_stderr))),
        "units": dict(zip(names, r.slot_units)),
        "refined": _moving(r), "free": list(r.free_names),
        "fractions": fr, "calc": calc, "covar": r.covar, "group": r.params,
    }


def refine_one(spec: PatternSpec, recipe: SeriesRecipe, start: dict | None = None, *,
               tie_test: bool = False) -> dict:
    """Refine one pattern of a series; the unit of work of a sequential refinement.

    A plain function of plain data (both arguments pickle), so that a process pool or a
    Dask client can run it.

    Parameters
    ----------
    spec : PatternSpec
    recipe : SeriesRecipe
    start : dict, optional
        Slot values to start from (a previous pattern's ``"values"``): then only the
        recipe's last ``continue_stages`` stages run. None: the full staged refinement from
        the templates.
    tie_test : bool
        Also refine the pattern with every recipe tie switched (untied where it applies,
        tied where it does not, starting from the first fit) and report the F-test of the
        tie: ``Δχ² = χ²(tied) - χ²(free)`` and ``F = (Δχ²/k) / (χ²(free)/(n - p_free))``
        with its p-value from the F(k, n - p_free) distribution.

    Returns
    -------
    dict
        ``label, file, temperature, success, message, nfev, seconds, wrp, rp, gof, chi2,
        npoints, nvarys, values, stderr, units, refined, free, fractions, calc``, the
        covariance of the free parameters ``covar`` (None when undetermined), the fitted
        ``group`` and, with
        ``tie_test``, ``ties``: per tie ``{applied, delta_chi2, f, p, difference,
        difference_stderr, chi2_tied, chi2_free}`` (``difference`` = slot - (scale·to +
        offset) in the untied fit).
    """
    if not isinstance(spec, PatternSpec) or not isinstance(recipe, SeriesRecipe):
        raise ValidationError(f"refine_one takes a PatternSpec and a SeriesRecipe, got "
                              f"{type(spec).__name__} and {type(recipe).__name__}")
    _check_specs([spec])
    _check_start(start)
    t0 = time.perf_counter()
    ref = build_refinement(spec, recipe)
    _fit(ref, recipe, start)
    out = _summary(ref, spec, time.perf_counter() - t0)
    if recipe.ties and tie_test:
        out["ties"] = {t.name: _tie_test(spec, recipe, t, ref) for t in recipe.ties}
    return out


def _tie_test(spec: PatternSpec, recipe: SeriesRecipe, tie: SeriesTie,
              first: JointRefinement) -> dict:
    applied = tie.applies(spec.temperature)
    others = [t for t in recipe.ties if t is not tie and t.applies(spec.temperature)]
    alt = build_refinement(spec, recipe, ties=others + ([] if applied else [tie]))
    start = first.result_.slot_values if applied else _tied_start(first.result_, tie,
                                                                  first.group)
    apply_values(alt.group, dict(zip(first.result_.slot_names, start)))
    _stage_fit(alt, recipe.final_stage, quiet=False)
    tied, free = (first, alt) if applied else (alt, first)
    chi_t, chi_f = tied.result_.chisqr, free.result_.chisqr
    k = free.result_.nvarys - tied.result_.nvarys
    dof = free.result_.ndata - free.result_.nvarys
    delta = chi_t - chi_f
    F = (delta / max(k, 1)) / (chi_f / dof)
    p = float(fdtrc(max(k, 1), dof, F))     # F's survival function (scipy.stats' f.sf)
    # the tied quantity measured without the tie, with its esd from the free fit's covariance
    g = free.group
    r = free.result_
    i, j = g.slot_index(tie.slot), g.slot_index(tie.to)
    diff = r.slot_values[i] - (tie.scale * r.slot_values[j] + tie.offset)
    if r.slot_covar is not None:
        var = (r.slot_covar[i, i] + tie.scale ** 2 * r.slot_covar[j, j]
               - 2 * tie.scale * r.slot_covar[i, j])
        err = float(np.sqrt(max(var, 0.0)))
    else:
        err = float("nan")
    return {"applied": bool(applied), "delta_chi2": float(delta), "f": float(F), "p": p,
            "k": int(k), "dof": int(dof), "chi2_tied": float(chi_t), "chi2_free": float(chi_f),
            "difference": float(diff), "difference_stderr": err}


def _tied_start(result, tie: SeriesTie, group: ParameterGroup) -> np.ndarray:
    """Slot values where the untied fit ``result`` predicts the minimum with ``tie`` imposed.

    The least-squares model of χ² near the untied minimum ``ŝ`` has the slot covariance
    ``Σ``: under the linear constraint ``aᵀs = offset`` (``a`` picks ``slot - scale·to``) its
    minimum is ``ŝ - Σa (aᵀΣa)⁻¹ (aᵀŝ - offset)``, every correlated parameter moved with
    the tied pair. Started there instead of at ``slot = to`` (a cell edge moved by hundreds
    of esds), the tied refit needs a few iterations instead of a dozen. Without a
    covariance: ``ŝ`` (the tie then sets the slot).
    """
    values = np.asarray(result.slot_values, dtype=float)
    cov = result.slot_covar
    if cov is None:
        return values
    a = np.zeros(values.size)
    a[group.slot_index(tie.slot)] += 1.0
    a[group.slot_index(tie.to)] -= tie.scale
    Sa = np.asarray(cov) @ a
    var = float(a @ Sa)
    if not (np.isfinite(var) and var > 0):
        return values
    return values - Sa * (float(a @ values) - tie.offset) / var


def tie_transition(ds: xr.Dataset, tie: str, *, alpha: float = 0.01,
                   nsigma: float = 3.0) -> dict:
    """Where a tie starts to hold along a series, judged two ways from a tie test.

    Returns the highest temperature at which the F-test rejects the tie (p < ``alpha``) and
    the lowest temperature above which every untied difference is within ``nsigma`` esd of
    zero, and the midpoints between those and the next pattern.
    """
    if "tie" not in ds.dims or tie not in ds["tie"].values:
        raise ValidationError(f"tie {tie!r} was not tested in this result; tested: "
                              f"{list(ds['tie'].values) if 'tie' in ds.dims else []}")
    sub = ds.sel(tie=tie).sortby("temperature")
    T = sub["temperature"].values
    rejected = sub["tie_p"].values < alpha
    sig = np.abs(sub["tie_difference"].values) > nsigma * sub["tie_difference_stderr"].values
    out = {}
    for key, flags in (("f_test", rejected), ("difference", sig)):
        idx = np.flatnonzero(flags)
        if idx.size == 0:
            out[key] = {"last_significant": None, "estimate": None}
            continue
        last = int(idx.max())
        nxt = T[last + 1] if last + 1 < T.size else None
        out[key] = {"last_significant": float(T[last]),
                    "estimate": float(0.5 * (T[last] + nxt)) if nxt is not None else None,
                    "consistent_above": bool(not np.any(flags[last + 1:]))}
    return out


# -- many patterns -------------------------------------------------------------------------
def specs_from_dataset(ds: xr.Dataset) -> list[PatternSpec]:
    """Pattern specs from a series Dataset (``intensity`` on ``(pattern, two_theta)`` with a
    ``variance`` coordinate, ``temperature`` and optionally ``file`` on ``pattern``)."""
    if not isinstance(ds, xr.Dataset):
        raise ValidationError(f"ds must be an xarray.Dataset, got {type(ds).__name__}")
    if "intensity" not in ds or "variance" not in ds.coords or "temperature" not in ds.coords:
        raise ValidationError("ds: expected 'intensity' (pattern, two_theta), a 'variance' "
                              "coordinate and a 'temperature' coordinate")
    tth = ds["two_theta"].values
    files = ds["file"].values if "file" in ds.coords else [""] * ds.sizes["pattern"]
    out = []
    for k, label in enumerate(ds["pattern"].values):
        out.append(PatternSpec(str(label), float(ds["temperature"].values[k]), tth,
                               ds["intensity"].values[k], ds["variance"].values[k],
                               str(files[k])))
    return out


def _check_specs(specs) -> list[PatternSpec]:
    specs = list(specs)
    if not specs or not all(isinstance(s, PatternSpec) for s in specs):
        raise ValidationError("specs: give a non-empty list of PatternSpec (see "
                              "specs_from_dataset)")
    for s in specs:
        T = s.temperature
        if not isinstance(s.label, str) or isinstance(T, (bool, np.bool_)) \
                or not isinstance(T, (numbers.Real, np.floating, np.integer)) \
                or not np.isfinite(T):
            raise ValidationError(f"specs: each pattern needs a str label and a finite "
                                  f"temperature (a number), got {s.label!r} at {T!r}")
    labels = [s.label for s in specs]
    if len(set(labels)) != len(labels):
        raise ValidationError(f"specs: pattern labels must be unique, got {labels}")
    return specs


def _check_start(start: Any, name: str = "start") -> dict | None:
    """Starting slot values: None or a dict of slot name -> finite number."""
    if start is None:
        return None
    if not isinstance(start, dict):
        raise ArgumentTypeError(f"{name} must be a dict of slot name -> value (e.g. "
                                f"{{'TiO2.a': 4.59}}), got {type(start).__name__}")
    from .._validation import check_float

    for key, value in start.items():
        if not isinstance(key, str):
            raise ArgumentTypeError(f"{name}: slot names must be str, got {key!r}")
        check_float(value, f"{name}[{key!r}]")
    return start


def _executor(n_jobs: int):
    import multiprocessing

    return ProcessPoolExecutor(max_workers=n_jobs,
                               mp_context=multiprocessing.get_context("spawn"))


class SequentialRefinement(EstimatorParams):
    """Refine a series pattern by pattern.

    The patterns stay on the refinement, as on :class:`JointRefinement` and
    :class:`~sciTie.diffraction.ParametricRefinement` (see "The estimator contract" in
    :doc:`/concepts`); :meth:`fit` takes only where to compute.

    Parameters
    ----------
    specs : list of PatternSpec
        The patterns, in the order they are refined (for ``mode="previous"``).
    recipe : SeriesRecipe
    mode : {'previous', 'start'}
        ``"previous"``: each pattern starts from the previous pattern's result, moved on
        along the line through the last two results
        (:func:`~sciTie.diffraction._chain.next_start`); the first from the templates, with
        the full staged refinement. ``"start"``: every pattern
        starts from ``start`` (default: the full refinement of the first pattern); these
        fits are independent and run in parallel with ``n_jobs`` (or as tasks on a Dask
        cluster, see :meth:`fit`).
    start : dict, optional
        Slot values to start from in ``"start"`` mode.
    n_jobs : int
        Worker processes for independent fits (``"start"`` mode and tie tests). 1: in
        this process.
    executor : concurrent.futures.Executor-like, optional
        Runs :func:`refine_one` instead of a local process pool (anything with
        ``submit(fn, *args, **kwargs)`` returning futures with ``result()``). For a Dask
        cluster pass ``client=`` to :meth:`fit` instead (lost workers survived, chains on
        the cluster).
    tie_test : bool
        Test every recipe tie on every pattern (see :func:`refine_one`).

    Nothing is random: the same series gives the same numbers in any process layout, so
    there is no ``random_state``.

    Attributes
    ----------
    result_ : FitResult
        The whole series as one result (see :func:`series_result`): every pattern's group as
        ``p000``, ``p001`` ..., χ² and points summed, esds from each pattern's fit; its
        ``to_xarray()`` carries the per-pattern figures on ``temperature``.
    fits_ : list of dict
        The per-pattern results of :func:`refine_one`.
    fit_seconds_, fit_cpu_seconds_ : float
        Wall time of :meth:`fit`, and CPU time of this process (work done in other
        processes or on a cluster is not in it).
    """

    def __init__(self, specs, recipe: SeriesRecipe, *, mode: str = "previous",
                 start: dict | None = None, n_jobs: int = 1, executor: Any = None,
                 tie_test: bool = False) -> None:
        self.specs = specs
        self.recipe = recipe
        self.mode = mode
        self.start = start
        self.n_jobs = n_jobs
        self.executor = executor
        self.tie_test = tie_test

    def _check(self) -> list[PatternSpec]:
        specs = _check_specs(self.specs)
        if not isinstance(self.recipe, SeriesRecipe):
            raise ValidationError(f"recipe must be a SeriesRecipe, got "
                                  f"{type(self.recipe).__name__}")
        if self.mode not in ("previous", "start"):
            raise ValidationError(f"mode must be 'previous' or 'start', got {self.mode!r}")
        if not (isinstance(self.n_jobs, int) and self.n_jobs >= 1):
            raise ValidationError(f"n_jobs must be a positive int, got {self.n_jobs!r}")
        if not isinstance(self.tie_test, (bool, np.bool_)):
            raise ValidationError(f"tie_test must be True or False, got {self.tie_test!r}")
        _check_start(self.start)
        return specs

    def fit(self, *, client=None) -> "SequentialRefinement":
        """Refine every pattern; returns self.

        Parameters
        ----------
        client : distributed.Client, optional
            Run the fits as tasks on this Dask cluster, with the same results as in this
            process. ``mode="start"``: all patterns at once (after the first pattern's full
            refinement when no ``start`` is given). ``mode="previous"`` is a chain (each
            fit needs the previous result): its tasks run one after the other on the
            cluster, so it is no faster there. A worker lost mid-fit costs only a re-run
            of its tasks. None: in this process (or ``n_jobs`` processes, or ``executor``).
        """
        specs = self._check()
        if client is not None:
            from .._dask import check_client
            check_client(client)
            if self.executor is not None or self.n_jobs != 1:
                raise ValidationError("client: the fits run on the Dask cluster; leave "
                                      f"executor (got {type(self.executor).__name__}) and "
                                      f"n_jobs (got {self.n_jobs}) at their defaults")
        t0, cpu = time.perf_counter(), time.process_time()
        fits: list[dict] = []
        if client is not None:
            from ._series_dask import sequential_fits
            fits = sequential_fits(client, refine_one, specs, self.recipe, mode=self.mode,
                                   start=self.start, tie_test=self.tie_test)
        elif self.mode == "previous":
            for spec in specs:
                start = next_start(fits, spec.temperature) if fits else self.start
                fits.append(refine_one(spec, self.recipe, start, tie_test=self.tie_test))
        else:
            start = self.start
            rest = specs
            if start is None:
                first = refine_one(specs[0], self.recipe, None, tie_test=self.tie_test)
                fits.append(first)
                start = first["values"]
                rest = specs[1:]
            fits += self._map(rest, start)
        self.fit_seconds_ = time.perf_counter() - t0
        self.fits_ = fits
        from ..provenance import provenance
        attrs = provenance(model="sciTie.diffraction.SequentialRefinement",
                           settings={"mode": self.mode, "n_jobs": self.n_jobs,
                                     "tie_test": self.tie_test,
                                     "phases": [p.name for p in self.recipe.phases],
                                     "stages": [list(map(str, s)) for s in self.recipe.stages],
                                     "ties": [t.name for t in self.recipe.ties]},
                           inputs=[s.file for s in specs if s.file and os.path.isfile(s.file)],
                           extra={"seconds": self.fit_seconds_, **(
                               {} if client is None else
                               {"dask_workers": len(client.scheduler_info()["workers"])})})
        self._series = series_dataset(fits, specs, attrs=attrs)
        self.result_ = series_result(
            fits, specs, data=pattern_arrays(self._series), seconds=self.fit_seconds_,
            model="sciTie.diffraction.SequentialRefinement", attrs=attrs,
            method="Levenberg-Marquardt, pattern by pattern",
            plotter=lambda result, ax=None, **kw: self.plot(ax, **kw),
            statistics={"patterns": len(fits),
                        "wRp (largest)": float(np.max([f["wrp"] for f in fits]))})
        self.fit_cpu_seconds_ = time.process_time() - cpu
        return self

    def _map(self, specs: list[PatternSpec], start: dict) -> list[dict]:
        if not specs:
            return []
        if self.executor is None and self.n_jobs == 1:
            return [refine_one(s, self.recipe, start, tie_test=self.tie_test) for s in specs]
        ex = self.executor if self.executor is not None else _executor(self.n_jobs)
        try:
            futures = [ex.submit(refine_one, s, self.recipe, start, tie_test=self.tie_test)
                       for s in specs]
            return [f.result() for f in futures]
        finally:
            if self.executor is None:
                ex.shutdown()

    def sequence(self) -> list[dict]:
        """Per pattern: file, temperature, rwp, gof and the refined parameters (JSON-ready)."""
        return sequence_entries(self.to_xarray())

    def to_xarray(self) -> xr.Dataset:
        """The series as one Dataset: the patterns along ``temperature`` (K), each refined
        slot's value and esd on ``param``, figures of merit, fractions, observed and
        calculated patterns, tie tests (see :func:`series_dataset`)."""
        if not hasattr(self, "result_"):
            from ..errors import not_fitted
            raise not_fitted(self, "to_xarray")
        return self._series

    def report(self, *, min_correl: float = 0.1) -> str:
        """A table of the patterns (temperature, wRp, GOF, free parameters), then the
        series result's report (correlations above ``min_correl``, within patterns)."""
        return series_report(self, "Sequential refinement", min_correl=min_correl)

    def plot(self, ax=None, *, names: Sequence[str] | None = None, **kwargs):
        """The refined parameters against temperature with their esds
        (:func:`plot_series_parameters`; ``names`` default: the structure parameters that
        were refined)."""
        return plot_series(self, ax, names=names, **kwargs)
