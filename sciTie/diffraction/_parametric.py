"""Parametric refinement: one fit of a whole series with parameters that follow laws in T.

Every pattern keeps its own copy of the structure groups and its own pattern group inside a
container group (``p000``, ``p001`` ... holding ``CuCr2O4``, ``CuO``, ``pattern`` and the fixed
temperature ``T``). A law such as ``CuCr2O4.a = a0 + a1*T + a2*T**2`` is a constraint, in the
core's expression syntax, of that slot in every container on coefficients that live once in the
``laws`` group; they are therefore shared columns of the tie map G, and everything else
refined stays local to its pattern. The Jacobian is block-arrow shaped and the
Levenberg-Marquardt steps are solved through the Schur complement on the shared block
(:mod:`._blockarrow`), or, for comparison, densely.
"""
from __future__ import annotations

import ast
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core import Expression, ParameterGroup, ResidualTerm, SlotKind, fit_least_squares
from ..core.threads import blas_threads_for
from ..core.result import FitResult
from ..errors import (ArgumentTypeError, ConvergenceWarning, IdentifiabilityWarning,
                      ValidationError)
from ._blockarrow import SingularSharedBlock, block_covariance, dense_step, schur_step
from ._parametric_blocks import Linearization, parametric_pattern_blocks
from .._validation import check_bool, check_float, check_int
from ..core.marquardt import Linearization as CoreLinearization, levenberg_marquardt
from ._pattern import PowderPattern
from ._refine import JointRefinement, _set, constrain_fractions
from .._estimator import EstimatorParams
from ._series import SeriesRecipe, SequentialRefinement, _check_specs, apply_values
from ._series_result import (pattern_arrays, plot_series, sequence_entries, series_dataset,
                             series_report, set_block_uncertainties)

__all__ = ["Law", "ParametricRefinement"]


@dataclass
class Law:
    """A parameter's dependence on the series variable.

    Parameters
    ----------
    expression : str
        In the core's expression syntax, of the variable (``T``) and coefficients, e.g.
        ``"a0 + a1*T + a2*T**2"``. Coefficient names are shared between laws: two laws that
        use ``m0`` share one parameter. A law without ``T`` (``"x0"``) makes the parameter
        one value shared by every pattern.
    start : dict, optional
        Starting values of (some) coefficients; the others start at 0 and all are first
        fitted to the starting values of the parameter across the series.
    """

    expression: str
    start: dict = field(default_factory=dict)

    def __post_init__(self) -> None:  # argument checks (issue 19)
        from .._validation import check_float

        if not isinstance(self.expression, str):
            raise ArgumentTypeError(f"Law expression must be a str such as 'a0 + a1*T', got "
                                    f"{self.expression!r}")
        if not isinstance(self.start, dict):
            raise ArgumentTypeError(f"Law({self.expression!r}) start must be a dict of "
                                    f"coefficient -> value, got {type(self.start).__name__}")
        for name, value in self.start.items():
            check_float(value, f"Law({self.expression!r}) start[{name!r}]")


class _Rename(ast.NodeTransformer):
    def __init__(self, mapping):
        self.mapping = mapping

    def visit_Name(self, node):
        if node.id in self.mapping:
            return ast.copy_location(ast.Name(id=self.mapping[node.id], ctx=node.ctx), node)
        return node


def _law_parts(expr: str, variable: str, slot: str) -> tuple[Expression, list[str]]:
    e = Expression(expr, context=f"law of {slot!r}")
    coefs = [n for n in e.names if n != variable]
    bad = [n for n in coefs if "." in n or "[" in n]
    if bad:
        raise ValidationError(f"laws[{slot!r}]: coefficients must be plain names, got {bad}")
    return e, coefs


def _check_enough_values(laws: dict, described: dict[str, set]) -> None:
    """Refuse laws with more coefficients than values to determine them.

    Laws that share a coefficient are counted together; each law contributes one value per
    distinct temperature at which it describes its slot (a tie that wins removes it).
    Otherwise the normal equations are singular and the fit fails deep inside (or drifts to
    a degenerate cell).
    """
    slots = list(laws)
    component = {s: i for i, s in enumerate(slots)}
    owner: dict[str, str] = {}
    for slot, (_, _, coefs) in laws.items():
        for c in coefs:              # laws sharing a coefficient join one component
            if c in owner:
                old, new = component[owner[c]], component[slot]
                for s in slots:
                    if component[s] == old:
                        component[s] = new
            owner[c] = slot
    for comp in sorted(set(component.values())):
        members = [s for s in slots if component[s] == comp]
        coefs = sorted({c for s in members for c in laws[s][2]})
        n_values = sum(len(described[s]) for s in members)
        if n_values < len(coefs):
            raise ValidationError(
                f"laws {members}: {len(coefs)} coefficients ({', '.join(coefs)}) but only "
                f"{n_values} value(s) to determine them (one per pattern temperature where the "
                "law applies): give more patterns or laws with fewer coefficients")


class _LocalEngine:
    """The solver's operations in this process (the reference for :class:`ClusterEngine`)."""

    n_partitions = 1
    n_recovered = 0

    def __init__(self, refinement) -> None:
        self.ref = refinement
        self.blocks = None

    def start(self) -> None:
        pass

    def linearize(self, x: np.ndarray):
        self.blocks = blocks = self.ref._blocks(x)
        return Linearization(sum(b.A_ss for b in blocks), sum(b.g_s for b in blocks),
                             sum(b.chi2 for b in blocks), int(sum(b.n for b in blocks)),
                             [np.diag(b.A_ll) for b in blocks], [b.g_l for b in blocks])

    def step(self, lin, lam: float, D_s: np.ndarray, D_l: list):
        return self.ref._step(self.blocks, lam, D_s, D_l)

    def chi2(self, x: np.ndarray) -> float:
        try:
            return self.ref._chi2(x)[0]
        except (ValidationError, FloatingPointError, ValueError):
            return float("inf")

    def windows_ok(self, x: np.ndarray) -> bool:
        slots = self.ref._slots(x)
        return all(p.windows_ok(slots[ii]) for p, ii in zip(self.ref.patterns_, self.ref._idx))

    def final_blocks(self) -> list:
        return self.blocks

    def calc(self, x: np.ndarray) -> list:
        slots = self.ref._slots(x)
        return [p.evaluate(slots[ii], grad=False)[0]
                for p, ii in zip(self.ref.patterns_, self.ref._idx)]

    def close(self) -> None:
        self.blocks = None


class _BlockArrowSystem:
    """The block-arrow normal equations as the core's Levenberg-Marquardt asks for them
    (:class:`~sciTie.core.marquardt.NormalEquations`): the engine linearises and solves the
    damped steps pattern block by pattern block; this scatters its shared and local pieces
    into the free vector. The engine keeps the blocks of its latest linearisation only, so a
    step asked at an earlier point (the trial the core linearised was rejected) linearises
    that point again."""

    def __init__(self, engine, shared: np.ndarray, local: list, n_free: int) -> None:
        self.engine = engine
        self.shared = shared
        self.local = local
        self.n_free = n_free
        self._current = None

    def _scatter(self, shared_part, local_parts) -> np.ndarray:
        out = np.zeros(self.n_free)
        out[self.shared] = shared_part
        for cols, part in zip(self.local, local_parts):
            out[cols] = part
        return out

    def linearize(self, x: np.ndarray) -> CoreLinearization:
        lin = self.engine.linearize(x)
        state = {"x": np.array(x, copy=True), "lin": lin}
        self._current = state
        return CoreLinearization(float(lin.chi2), self._scatter(lin.g_s, lin.g_l),
                                 self._scatter(np.diag(lin.A_ss), lin.diag_ll), int(lin.n),
                                 state=state)

    def settle(self, lin: CoreLinearization) -> None:
        """Make the engine's blocks those of ``lin`` (linearise its point again if not)."""
        if lin.state is not self._current:
            lin.state["lin"] = self.engine.linearize(lin.state["x"])
            self._current = lin.state

    def step(self, lin: CoreLinearization, lam: float, D: np.ndarray) -> np.ndarray:
        self.settle(lin)
        ds, dl = self.engine.step(lin.state["lin"], lam, D[self.shared],
                                  [D[cols] for cols in self.local])
        return self._scatter(ds, dl)

    def chi2(self, x: np.ndarray) -> float:
        return self.engine.chi2(x)


class ParametricRefinement(EstimatorParams):
    """Refine a whole series at once, with laws in the series variable shared by all patterns.

    Parameters
    ----------
    specs : list of PatternSpec
    recipe : SeriesRecipe
        Its last stage says what each pattern refines; parameters with a law are taken out of
        the patterns and replaced by the law's coefficients.
    laws : dict
        Slot name (``"CuCr2O4.a"``) -> expression (str) or :class:`Law`.
    start : SequentialRefinement, list of dict or "initialize", optional
        Per-pattern starting values (a fitted sequential refinement, or its ``fits_``);
        ``"initialize"``: the recipe's templates with each pattern's scale and background
        from linear least squares (no per-pattern fit); default: a sequential refinement is
        run first.
    variable : str
        Name of the series variable in the laws (default ``"T"``).
    solver : {'schur', 'dense'}
        Solve the damped normal equations through the Schur complement on the shared block
        (default) or as one dense system of size ``p_shared + Σ p_local`` (for comparison).
    max_nfev : int
        Most model evaluations of the Levenberg-Marquardt run (each a pass over every
        pattern).
    ftol, xtol, gtol : float
        Convergence tolerances of the core's Levenberg-Marquardt
        (:func:`~sciTie.core.marquardt.levenberg_marquardt`, the solver of every refinement):
        a relative χ² decrease (predicted or achieved) below ``ftol`` (GSAS-II's default is
        1e-3), a scaled step below ``xtol``, a scaled gradient below ``gtol``.
    max_dense_covariance : int
        Assemble the full covariance of the free parameters (for ``result_``) when there are
        at most this many; per-pattern esds are computed block-wise in any case.
    verbose : bool
        Print χ² and λ after every iteration.

    The patterns stay on the refinement, as on :class:`JointRefinement` (see "The estimator
    contract" in :doc:`/concepts`). Nothing is random: there is no ``random_state``.

    Attributes
    ----------
    group_ : ParameterGroup
        ``laws`` and one container per pattern.
    result_ : FitResult
        The whole fit (χ², free-parameter count, every slot with its esd); its
        ``to_xarray()`` carries the per-pattern figures on ``temperature``.
    laws_ : dict
        Coefficient -> ``{"value", "stderr"}``.
    fits_ : list of dict
        Per pattern: values and esds (laws evaluated at its temperature), wRp, GOF,
        fractions (the layout of :func:`refine_one`'s); :meth:`to_xarray` is them as one
        Dataset.
    fit_seconds_, fit_cpu_seconds_ : float
        Wall time of :meth:`fit` (with the start), and CPU time of this process.
    history_ : list of dict
        χ², λ and time per iteration.
    x0_ : ndarray
        The free vector the solver started from.
    patterns_, containers_, labels_ : list
        Per pattern, as laid out by :meth:`fit`: its :class:`PowderPattern`, its container
        group in ``group_`` and that container's name (``p000`` ...).
    cluster_ : dict or None
        With a ``client``: ``workers``, ``partitions`` (groups of consecutive patterns, each
        kept on one worker) and ``recovered`` (partitions placed again or blocks computed
        again after a lost worker); None in process.
    """

    def __init__(self, specs, recipe: SeriesRecipe, *, laws: dict, start: Any = None,
                 variable: str = "T", solver: str = "schur", max_nfev: int = 200,
                 ftol: float = 1e-8, xtol: float = 1e-8, gtol: float = 1e-8,
                 max_dense_covariance: int = 4000,
                 verbose: bool = False) -> None:
        self.specs = specs
        self.recipe = recipe
        self.laws = laws
        self.start = start
        self.variable = variable
        self.solver = solver
        self.max_nfev = max_nfev
        self.ftol = ftol
        self.xtol = xtol
        self.gtol = gtol
        self.max_dense_covariance = max_dense_covariance
        self.verbose = verbose

    # -- set-up ---------------------------------------------------------------------------------
    def _start_fits(self, specs, client=None) -> list[dict]:
        s = self.start
        if isinstance(s, str):
            if s != "initialize":
                raise ValidationError(f"start: the only named start is 'initialize', got {s!r}")
            from ._series import build_refinement
            s = []
            for spec in specs:
                ref = build_refinement(spec, self.recipe)
                ref.initialize()
                vals = ref.group.valuesdict()
                s.append({"label": spec.label, "values": dict(zip(ref.group.slot_names,
                                                                  map(float, vals.array))),
                          "stderr": {}})
        if s is None:
            s = SequentialRefinement(specs, self.recipe).fit(client=client)
        if isinstance(s, SequentialRefinement):
            if not hasattr(s, "fits_"):
                s = s.fit(client=client)
            s = s.fits_
        fits = list(s)
        if len(fits) != len(specs) or not all(isinstance(f, dict) and "values" in f
                                              for f in fits):
            raise ValidationError("start: expected a SequentialRefinement or one result dict "
                                  f"per pattern ({len(specs)})")
        by_label = {f["label"]: f for f in fits}
        missing = [sp.label for sp in specs if sp.label not in by_label]
        if missing:
            raise ValidationError(f"start: no starting values for patterns {missing}")
        return [by_label[sp.label] for sp in specs]

    def _laws(self) -> dict:
        if not isinstance(self.laws, dict) or not self.laws:
            raise ValidationError("laws: give a dict of slot name -> expression")
        out = {}
        for slot, law in self.laws.items():
            law = Law(law) if isinstance(law, str) else law
            if not isinstance(law, Law):
                raise ValidationError(f"laws[{slot!r}]: expected a str or Law, got {law!r}")
            expr, coefs = _law_parts(law.expression, self.variable, slot)
            out[slot] = (law, expr, coefs)
        return out

    def _build(self, specs, fits, laws) -> None:
        recipe = self.recipe
        root = ParameterGroup("series", description="parametric refinement")
        coef_names: list[str] = []
        for _, _, coefs in laws.values():
            coef_names += [c for c in coefs if c not in coef_names]
        lawgroup = ParameterGroup("laws", description="coefficients of the laws")
        starts = {}
        for law, _, _ in laws.values():
            starts.update(law.start)
        for c in coef_names:
            lawgroup.add(c, float(starts.get(c, 0.0)))
        root.add_group(lawgroup)
        self._law_starts = starts
        _, structure, items = recipe.final_stage
        self.patterns_, self.containers_, self.labels_ = [], [], []
        for k, (spec, fit) in enumerate(zip(specs, fits)):
            label = f"p{k:03d}"
            box = ParameterGroup(label, description=f"pattern {spec.label} at {spec.temperature} K")
            box.add(self.variable, float(spec.temperature), vary=False, unit="K")
            for ph in recipe.phases:
                box.add_group(ph.group.copy())
            pat = PowderPattern(spec.data(), recipe.phases, name="pattern",
                                **recipe.pattern_options)
            box.add_group(pat.group)
            if recipe.constrain_fractions:
                constrain_fractions(pat)
            for t in recipe.ties:
                if t.applies(spec.temperature):
                    box.tie(t.slot, to=t.to, scale=t.scale, offset=t.offset)
            # what this pattern refines: the recipe's last stage
            for ph in recipe.phases:
                g = box[ph.name]
                for n in g.free_names:
                    _set(g, [n], False)
                st = structure.get(ph.name, ()) if isinstance(structure, dict) else structure
                _set(g, ph.structure_names(st), True)
            for n in pat.group.free_names:
                _set(pat.group, [n], False)
            _set(pat.group, JointRefinement.pattern_names(pat, items), True)
            apply_values(box, fit["values"])
            root.add_group(box)
            self.patterns_.append(pat)
            self.containers_.append(box)
            self.labels_.append(label)
        # the laws replace the per-pattern parameters they describe
        described: dict[str, set] = {slot: set() for slot in laws}
        for box, spec in zip(self.containers_, specs):
            comp = box.tie_map()           # before the laws (which need the root)
            kinds = dict(zip(comp.names, comp.kind))
            for slot, (law, expr, coefs) in laws.items():
                if slot not in kinds:
                    raise ValidationError(f"laws: {slot!r} is not a slot of the patterns "
                                          f"(e.g. {comp.names[1:7]} ...)")
                if kinds[slot] not in (SlotKind.FREE, SlotKind.FIXED):
                    continue      # tied in this pattern (a symmetry tie): the tie wins
                described[slot].add(float(spec.temperature))
                tree = ast.parse(expr.text, mode="eval")
                mapping = {c: f"laws.{c}" for c in coefs}
                text = ast.unparse(_Rename(mapping).visit(tree))
                box.constrain(slot, text)
        _check_enough_values(laws, described)
        self.group_ = root
        self._fit_law_starts(laws, fits, specs)

    def _fit_law_starts(self, laws, fits, specs) -> None:
        """Start the coefficients by one least-squares fit of every law to the per-pattern
        starting values (weighted by their esds; laws sharing a coefficient are fitted
        together)."""
        g = self.group_["laws"]
        T = np.array([s.temperature for s in specs])
        data = []
        for slot, (law, expr, coefs) in laws.items():
            y = np.array([f["values"].get(slot, np.nan) for f in fits])
            e = np.array([f.get("stderr", {}).get(slot, np.nan) for f in fits])
            ok = np.isfinite(y)
            good = np.isfinite(e) & (e > 0)
            fill = float(np.median(e[good])) if good.any() else max(1e-6 * np.nanmax(np.abs(y)),
                                                                    1e-12)
            e = np.where(good, e, fill)
            if ok.any():
                data.append((expr, T[ok], y[ok], e[ok]))
        if not data:
            return
        sub = ParameterGroup("start")
        for c in g.parameters:
            sub.add(c, float(g[c].value))
        var = self.variable
        tm = sub.tie_map()
        n_slots = len(tm.names)
        # per law: each name's slot (-1 for the variable) and where the variable sits
        laid_out = [(expr, [-1 if n == var else int(tm.select(n)) for n in expr.names],
                     [i for i, n in enumerate(expr.names) if n == var], Ts, ys, es)
                    for expr, Ts, ys, es in data]

        def rows(vals, jacobian: bool):
            """Weighted residuals of every law at every temperature, and their exact
            derivatives with respect to the coefficients' slots."""
            out, jac = [], []
            for expr, cols, at_var, Ts, ys, es in laid_out:
                env = [0.0 if n == var else float(vals[n]) for n in expr.names]
                for Ti, yi, ei in zip(Ts, ys, es):
                    for i in at_var:
                        env[i] = Ti
                    value, grad = expr.evaluate_with_gradient(env)
                    out.append((value - yi) / ei)
                    if jacobian:
                        row = np.zeros(n_slots)
                        for col, d in zip(cols, grad):
                            if col >= 0:
                                row[col] += d / ei
                        jac.append(row)
            return np.array(out), (np.array(jac).reshape(-1, n_slots) if jacobian else None)

        if rows(sub.valuesdict(), False)[0].size < sub.n_free:
            return                       # too few values: keep the given starts
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = fit_least_squares(sub, lambda v: rows(v, False)[0],
                                    lambda v: rows(v, True)[1])
        for c in g.parameters:
            g[c].value = float(res.value(c))

    # -- the fit -------------------------------------------------------------------------------
    def _layout(self):
        """Shared and local columns of the free vector, decided from the tie map: a column is
        local to pattern k when every slot it reaches lies in k's container, and shared
        otherwise (the laws' coefficients, or anything tied across patterns); each
        pattern's rows of G."""
        root = self.group_
        c = root.tie_map()
        G = c.matrix().tocsc()
        # each slot's pattern, from its name's first part (one pass: asking the tie map
        # per pattern costs a walk of the whole tree each time)
        index = {label: k for k, label in enumerate(self.labels_)}
        container = np.array([index.get(n.partition(".")[0], -1) for n in c.names], dtype=int)
        self._rows = [np.flatnonzero(container == k) for k in range(len(self.patterns_))]
        owner = np.full(c.n_free, -1)
        for j in range(c.n_free):
            reached = np.unique(container[G.indices[G.indptr[j]:G.indptr[j + 1]]])
            if reached.size == 1:
                owner[j] = reached[0]
        idx = []
        for pat, label in zip(self.patterns_, self.labels_):
            structs = {ph.name: f"{label}.{ph.name}" for ph in self.recipe.phases}
            names = pat.local_names(structures=structs, prefix=f"{label}.pattern")
            idx.append(np.array([c.select(n) for n in names], dtype=int))
        self._shared = np.flatnonzero(owner < 0)
        self._local = [np.flatnonzero(owner == k) for k in range(len(self.patterns_))]
        self._idx = idx
        self._n_free = c.n_free

    def _block_width(self) -> int:
        """Columns of the widest system solved: the shared ones and one pattern's own (the
        Schur complement's blocks)."""
        return len(self._shared) + max((len(loc) for loc in self._local), default=0)

    def _slots(self, x: np.ndarray) -> np.ndarray:
        return self.group_.tie_map().evaluate(x)

    def _blocks(self, x: np.ndarray):
        G = self.group_.tie_matrix(x).tocsr()
        slots = self._slots(x)
        blocks = []
        for pat, ii, loc in zip(self.patterns_, self._idx, self._local):
            cols = np.concatenate([self._shared, loc])
            Gi = G[ii][:, cols].toarray()
            blocks.append(parametric_pattern_blocks(pat, slots[ii], Gi, self._shared, loc))
        return blocks

    def _chi2(self, x: np.ndarray) -> tuple[float, list[float]]:
        slots = self._slots(x)
        per = []
        for pat, ii in zip(self.patterns_, self._idx):
            y, _ = pat.evaluate(slots[ii], grad=False)
            r = (pat.obs - y) / pat.sigma
            per.append(float(r @ r))
        return float(sum(per)), per

    def _step(self, blocks, lam, D_s, D_l):
        """One damped step from all blocks in this process, with the configured solver."""
        if self.solver == "schur":
            return schur_step(blocks, lam, D_s, D_l)
        return dense_step(blocks, lam, D_s, D_l)

    def _solve(self, engine) -> None:
        """The core's Levenberg-Marquardt (:func:`~sciTie.core.marquardt.levenberg_marquardt`)
        on the block-arrow normal equations; ``engine`` computes the blocks, the steps and χ²
        (in this process, or on a Dask cluster)."""
        root = self.group_
        x = root.pack()
        lo, hi = root.bounds()
        slots = self._slots(x)
        for pat, ii in zip(self.patterns_, self._idx):
            pat.refresh_windows(slots[ii])
        engine.start()
        system = _BlockArrowSystem(engine, self._shared, self._local, x.size)
        t0 = time.perf_counter()
        self.history_ = []

        def record(entry: dict) -> None:
            self.history_.append(entry)
            if self.verbose:
                print(f"  iteration {len(self.history_) - 1}: chi2 {entry['chi2']:.10g} "
                      f"(lambda {entry['lambda']:.1e})")

        res = levenberg_marquardt(system, x, lower=lo, upper=hi, ftol=self.ftol,
                                  xtol=self.xtol, gtol=self.gtol, max_nfev=self.max_nfev,
                                  callback=record)
        self.history_.insert(0, res.history[0])
        system.settle(res.linearization)       # the engine's blocks at the solution
        self._x = res.x
        self._converged, self._message = res.success, res.message
        self._nfev, self._njev = res.nfev, res.njev
        root.set_free(res.x)

    def fit(self, *, client=None) -> "ParametricRefinement":
        """Build the joint group, solve, and compute esds; returns self.

        Parameters
        ----------
        client : distributed.Client, optional
            Run on this Dask cluster: the patterns are placed on the workers once, each
            iteration's Jacobian blocks and normal-equation pieces are computed there and
            summed, the shared block is solved here (see :doc:`/distributed`). The default
            start (a sequential refinement) runs there too. None: in this process.
        """
        t0, cpu = time.perf_counter(), time.process_time()
        specs = _check_specs(self.specs)
        if not isinstance(self.recipe, SeriesRecipe):
            raise ValidationError("recipe must be a SeriesRecipe")
        if self.solver not in ("schur", "dense"):
            raise ValidationError(f"solver must be 'schur' or 'dense', got {self.solver!r}")
        check_int(self.max_nfev, "max_nfev", minimum=1)
        for name in ("ftol", "xtol", "gtol"):
            check_float(getattr(self, name), name, minimum=0.0)
        check_bool(self.verbose, "verbose")
        if client is not None:
            from .._dask import check_client
            check_client(client)
            if self.solver != "schur":
                raise ValidationError("solver='dense' (the reference solver) runs in this "
                                      "process only; use solver='schur' with a client")
        laws = self._laws()
        fits = self._start_fits(specs, client)
        self._build(specs, fits, laws)
        self._layout()
        self.x0_ = self.group_.pack()
        if client is None:
            engine = _LocalEngine(self)
        else:
            from ._series_dask import ClusterEngine
            engine = ClusterEngine(self, client)
        # every matrix here is one pattern's Jacobian or the shared block: small products
        # that BLAS threads slow down (see sciTie.core.threads)
        with blas_threads_for(self._block_width()):
            try:
                for attempt in range(2):
                    self._solve(engine)
                    if engine.windows_ok(self._x):
                        break
                if not self._converged:
                    warnings.warn(f"parametric refinement stopped before converging "
                                  f"({self._message}; max_nfev={self.max_nfev})",
                                  ConvergenceWarning, stacklevel=2)
                self._final_blocks = engine.final_blocks()
                ycalc = engine.calc(self._x)
            finally:
                engine.close()
            self.cluster_ = None if client is None else {
                "workers": len(client.scheduler_info()["workers"]),
                "partitions": engine.n_partitions, "recovered": engine.n_recovered}
            self.fit_seconds_ = time.perf_counter() - t0
            self._results(specs, ycalc)
        self.fit_cpu_seconds_ = time.process_time() - cpu
        return self

    # -- results -------------------------------------------------------------------------------
    def _results(self, specs, ycalc: list) -> None:
        root = self.group_
        c = root.tie_map()
        blocks = self._final_blocks
        chi2 = float(sum(b.chi2 for b in blocks))
        ndata = int(sum(b.n for b in blocks))
        nfree = self._n_free
        redchi = chi2 / (ndata - nfree)
        try:
            C_ss, C_sl, C_ll, W = block_covariance(blocks)
        except SingularSharedBlock as exc:
            C_ss, C_sl, C_ll, W = self._undetermined(blocks, exc)
        C_ss, C_sl, C_ll = C_ss * redchi, [m * redchi for m in C_sl], [m * redchi for m in C_ll]
        G = root.tie_matrix(self._x).tocsr()
        slots = self._slots(self._x)
        sh = self._shared
        stderr = np.full(nfree, np.nan)
        stderr[sh] = np.sqrt(np.clip(np.diag(C_ss), 0, None))
        slot_err = np.zeros(len(slots))
        self._pattern_cov = []
        for k, loc in enumerate(self._local):
            cols = np.concatenate([sh, loc])
            ns = len(sh)
            C = np.zeros((len(cols), len(cols)))
            C[:ns, :ns], C[:ns, ns:], C[ns:, :ns], C[ns:, ns:] = C_ss, C_sl[k], C_sl[k].T, C_ll[k]
            stderr[loc] = np.sqrt(np.clip(np.diag(C_ll[k]), 0, None))
            rows = self._rows[k]
            Gi = G[rows][:, cols].toarray()
            cov = Gi @ C @ Gi.T          # covariance of this pattern's slots (G Σ Gᵀ)
            slot_err[rows] = np.sqrt(np.clip(np.diag(cov), 0, None))
            self._pattern_cov.append((rows, cov))
        law_rows = np.array([c.select(f"laws.{n}") for n in root["laws"].parameters], dtype=int)
        Gl = G[law_rows][:, sh].toarray()
        slot_err[law_rows] = np.sqrt(np.clip(np.einsum("ij,jk,ik->i", Gl, C_ss, Gl), 0, None))
        full = None
        if nfree <= self.max_dense_covariance:
            full = np.zeros((nfree, nfree))
            full[np.ix_(sh, sh)] = C_ss
            for k, loc in enumerate(self._local):
                full[np.ix_(sh, loc)] = C_sl[k]
                full[np.ix_(loc, sh)] = C_sl[k].T
                for j, loc2 in enumerate(self._local):
                    # patterns are correlated through the shared laws
                    full[np.ix_(loc, loc2)] = C_ll[k] if j == k else W[k] @ C_ss @ W[j].T
        res = FitResult.from_covariance(
            root, self._x, covar=None, ndata=ndata, model="sciTie.diffraction.ParametricRefinement",
            method=f"Levenberg-Marquardt, {self.solver} normal equations",
            success=self._converged, message=self._message, nfev=self._nfev, njev=self._njev,
            seconds=self.fit_seconds_, chisqr=chi2,
            statistics={"patterns": len(specs), "laws": len(self.laws),
                        "shared parameters": int(len(sh))})
        # uncertainties block-wise: the dense slot covariance G Σ Gᵀ of a whole series would
        # be (N · slots)², so each pattern's block is propagated on its own
        self.result_ = set_block_uncertainties(res, stderr, slot_err, full)
        self.laws_ = {n: {"value": float(root["laws"][n].value),
                          "stderr": float(slot_err[c.select(f"laws.{n}")])}
                      for n in root["laws"].parameters}
        self._per_pattern_results(specs, slots, slot_err, redchi, ycalc)

    def _undetermined(self, blocks, exc: SingularSharedBlock):
        """No covariance when the laws are not all determined: warn naming the coefficients
        and return NaN blocks (every esd then reads NaN, values stay)."""
        free = self.group_.free_names
        names = [free[self._shared[i]] for i in exc.undetermined]
        warnings.warn(f"{type(self).__name__}: the data do not determine {names} (the normal "
                      "matrix of the shared parameters is singular): no esds; give more "
                      "patterns, or laws with fewer coefficients", IdentifiabilityWarning,
                      stacklevel=4)
        p_s = len(self._shared)
        nan = np.full((p_s, p_s), np.nan)
        C_sl = [np.full((p_s, b.A_ll.shape[0]), np.nan) for b in blocks]
        C_ll = [np.full((b.A_ll.shape[0],) * 2, np.nan) for b in blocks]
        W = [np.full((b.A_ll.shape[0], p_s), np.nan) for b in blocks]
        return nan, C_sl, C_ll, W

    def _per_pattern_results(self, specs, slots, slot_err, redchi, ycalc) -> None:
        from ..provenance import provenance
        from ._refine import pattern_statistics, weight_fractions
        c = self.group_.tie_map()
        fits = []
        for k, (spec, pat, ii) in enumerate(zip(specs, self.patterns_, self._idx)):
            label = self.labels_[k]
            pre = f"{label}."
            rows, cov = self._pattern_cov[k]
            names = [c.names[i][len(pre):] for i in rows]
            # free slots, and constrained ones that move with the fit (esd > 0, or NaN when
            # the laws are not all determined); not those tied to fixed values (esd 0)
            refined = [n for n, i in zip(names, rows)
                       if n != self.variable and (c.kind[i] == SlotKind.FREE or (c.kind[i] != SlotKind.FIXED
                                                                      and not slot_err[i] <= 0))]
            y = ycalc[k]
            st = pattern_statistics(pat.obs, y, pat.sigma, 0)
            calc = np.full(spec.two_theta.shape, np.nan)
            calc[pat.mask] = y
            pos = {int(i): j for j, i in enumerate(rows)}

            def block(idx, cov=cov, pos=pos):
                sel = [pos[int(i)] for i in idx]
                return cov[np.ix_(sel, sel)]

            fr = (weight_fractions(self.group_, pat, covariance=block, prefix=f"{label}.pattern",
                                   structures={ph.name: f"{label}.{ph.name}"
                                               for ph in pat.phases})
                  if len(pat.phases) > 1 else {})
            fits.append({"label": spec.label, "file": spec.file,
                         "temperature": float(spec.temperature),
                         "values": dict(zip(names, map(float, slots[rows]))),
                         "stderr": dict(zip(names, map(float, slot_err[rows]))),
                         "units": dict(zip(names, [self.result_.slot_units[i] for i in rows])),
                         "refined": refined, "wrp": st["wrp"], "rp": st["rp"],
                         "chi2": st["chi2"], "npoints": st["npoints"],
                         "gof": float(np.sqrt(st["chi2"] / st["npoints"])),
                         "fractions": fr, "calc": calc, "success": self._converged})
        attrs = provenance(model="sciTie.diffraction.ParametricRefinement",
                           settings={"laws": {k: (v if isinstance(v, str) else v.expression)
                                              for k, v in self.laws.items()},
                                     "solver": self.solver, "variable": self.variable,
                                     "ties": [t.name for t in self.recipe.ties]},
                           inputs=[s.file for s in specs if s.file],
                           extra={"chi2": float(self.result_.chisqr),
                                  "nvarys": int(self.result_.nvarys),
                                  "ndata": int(self.result_.ndata),
                                  "redchi": float(redchi), "seconds": self.fit_seconds_,
                                  "laws_fitted": dict(self.laws_),
                                  **({"dask": dict(self.cluster_)} if self.cluster_ else {})})
        self.fits_ = fits
        self._series = series_dataset(fits, specs, attrs=attrs)
        self.result_.data = pattern_arrays(self._series)
        self.result_.attrs.update(attrs)
        self.result_.plotter = lambda result, ax=None, **kw: self.plot(ax, **kw)

    def sequence(self) -> list[dict]:
        """Per pattern: file, temperature, rwp, gof and parameters (laws evaluated)."""
        return sequence_entries(self.to_xarray())

    def to_xarray(self):
        """The series as one Dataset (laws evaluated at each pattern's temperature), in the
        layout of :meth:`SequentialRefinement.to_xarray`; provenance and the fitted laws in
        ``attrs``."""
        if not hasattr(self, "result_"):
            from ..errors import not_fitted
            raise not_fitted(self, "to_xarray")
        return self._series

    def report(self, *, min_correl: float = 0.1) -> str:
        """One line per pattern, then the fit's report (the law coefficients with esds)."""
        return series_report(self, "Parametric refinement", min_correl=min_correl)

    def plot(self, ax=None, *, names=None, **kwargs):
        """The parameters against temperature, each law drawn with its ±1 esd band."""
        laws = {slot: (lambda T, slot=slot: self.law_curve(slot, T)) for slot in self.laws}
        return plot_series(self, ax, names=names if names is not None else list(self.laws),
                           laws=laws, **kwargs)

    def dense_terms(self) -> list[ResidualTerm]:
        """The same problem as core residual terms on ``group_`` (one per pattern, each with
        its dense Jacobian over every slot), for :func:`sciTie.fit_least_squares`: the
        reference the block solver is checked against (memory grows as N² patterns)."""
        n_slots = self.group_.n_slots
        terms = []
        for k, (pat, ii) in enumerate(zip(self.patterns_, self._idx)):
            def residual(vals, pat=pat, ii=ii):
                y, _ = pat.evaluate(vals.array[ii], grad=False)
                return (pat.obs - y) / pat.sigma

            def jacobian(vals, pat=pat, ii=ii):
                _, J = pat.evaluate(vals.array[ii], grad=True)
                out = np.zeros((pat.x.size, n_slots))
                out[:, ii] = -J / pat.sigma[:, None]
                return out
            terms.append(ResidualTerm(f"pattern{k}", residual, jacobian))
        return terms

    def law_curve(self, slot: str, temperatures) -> tuple[np.ndarray, np.ndarray]:
        """A law's value and esd at ``temperatures`` (esd from the coefficients' covariance)."""
        laws = self._laws()
        if slot not in laws:
            raise ValidationError(f"no law for {slot!r}; laws: {list(laws)}")
        _, expr, coefs = laws[slot]
        g = self.group_["laws"]
        root = self.group_
        cols = [root.free_names.index(f"laws.{n}") for n in coefs]
        C = self.result_.covar
        vals, errs = [], []
        for T in np.atleast_1d(temperatures):
            env = {n: float(g[n].value) for n in coefs}
            env[self.variable] = float(T)
            v, grad = expr.evaluate_with_gradient([env[n] for n in expr.names])
            gc = np.array([grad[expr.names.index(n)] for n in coefs])
            if C is not None:
                e = float(np.sqrt(max(gc @ C[np.ix_(cols, cols)] @ gc, 0.0)))
            else:
                e = float("nan")
            vals.append(v)
            errs.append(e)
        return np.array(vals), np.array(errs)
