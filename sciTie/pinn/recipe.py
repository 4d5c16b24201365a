"""The ``pinn`` recipe kind: a periodic PINN from one TOML file.

A bundled problem::

    kind = "pinn"
    name = "convection"

    [problem]
    name = "convection"             # convection | allen-cahn | taylor-green | allen-cahn-2d
                                    # | kuramoto-sivashinsky | gray-scott
    parameters = { beta = 50.0 }

    [model]
    mode = "hard"                   # and any PeriodicPINN setting: n_windows, hidden, ...

Your own PDE: the residual (and the initial condition, ...) are functions in a Python file
next to the recipe, the only code you write; domains, periodicity and coefficients are keys::

    [problem]
    file = "burgers.py"             # defines residual(f) and initial(x)
    domain_x = [0.0, 6.283185307179586]
    parameters = { nu = 0.05 }
    [problem.etdrk4]                # reference from the spectral solver (semilinear PDEs)
    linear = "linear"               # L(k) in the file
    nonlinear = "nonlinear"         # N(u) in the file

An inverse problem learns coefficients (or a period) from observations: synthetic ones from
the reference, or a data file::

    [inverse]
    learn = ["beta"]
    start = [40.0]
    noise = 0.05                    # synthetic observations: noise and count
    n_obs = 200
    # observations = "obs.csv"      # or a file: columns x[, y], t, then the observed outputs
"""
from __future__ import annotations

import importlib.util
import math
from dataclasses import replace
from types import ModuleType
from typing import Any, Callable

import numpy as np

from ..core.summary import RunSummary
from ..recipes import Field, Option, Recipe, RecipeKind, Table, read_table
from ._problems import (PDEProblem, allen_cahn, allen_cahn_2d, convection, gray_scott,
                        kuramoto_sivashinsky, semilinear_reference, taylor_green)
from ._recipes import recommended_settings
from ._user import takes_parameters

__all__ = ["KIND", "SCHEMA", "build_problem", "model_settings"]

#: bundled problems: factory and the coefficients it accepts
BUILTIN: dict[str, tuple[Callable[..., PDEProblem], tuple[str, ...]]] = {
    "convection": (convection, ("beta",)),
    "allen-cahn": (allen_cahn, ("eps", "gamma")),
    "taylor-green": (taylor_green, ("nu",)),
    "allen-cahn-2d": (allen_cahn_2d, ("eps", "gamma")),
    "kuramoto-sivashinsky": (kuramoto_sivashinsky, ("alpha", "beta", "gamma")),
    "gray-scott": (gray_scott, ("eps1", "eps2", "b1", "c1", "b2", "c2")),
}
#: bundled problems whose time interval ends where the recipe says (problem.t_final)
WITH_T_FINAL = ("taylor-green", "kuramoto-sivashinsky", "gray-scott")

_INTERVAL = "a pair [start, end] with end > start"


def _interval_check(value: Any) -> str | None:
    if len(value) != 2 or not value[1] > value[0]:
        return f"must be {_INTERVAL}"
    return None


_MODEL_FIELDS = {
    "mode": Field("str", "how periodicity is imposed", default="hard",
                  choices=("hard", "soft", "shared")),
    "n_windows": Field("int", "time-marching windows", minimum=1),
    "window_budget": Field("list[float]", "step multipliers of the first windows",
                           minimum=0.0),
    "hidden": Field("list[int]", "hidden layer widths", minimum=1),
    "n_modes": Field("int", "harmonics of the periodic embedding", minimum=1),
    "trainable_frequency": Field("bool", "learn the period(s)"),
    "time_features": Field("str", "time features", choices=("fourier", "periodic")),
    "n_time_features": Field("int", "time features count", minimum=1),
    "activation": Field("str", "activation", choices=("tanh", "sin", "gelu", "silu")),
    "architecture": Field("str", "network body", choices=("mlp", "modified")),
    "n_collocation": Field("int", "collocation points per batch", minimum=1),
    "n_initial": Field("int", "initial-condition points per batch", minimum=1),
    "n_boundary": Field("int", "face points per batch", minimum=1),
    "ic_weight": Field("float", "initial-condition weight", minimum=0.0),
    "initial_condition": Field("str", "initial condition as a loss term or built into the "
                               "network", choices=("soft", "hard")),
    "ic_timescale": Field("float", "time scale of the built-in initial condition's switch-on",
                          minimum=0.0),
    "bc_weight": Field("float", "periodicity / boundary weight", minimum=0.0),
    "adam_steps": Field("int", "Adam steps per window", minimum=0),
    "learning_rate": Field("float", "Adam rate", minimum=0.0),
    "lr_decay": Field("float", "Adam rate decay factor", minimum=0.0),
    "lr_decay_steps": Field("int", "steps per decay factor", minimum=1),
    "lbfgs_steps": Field("int", "L-BFGS iterations per window", minimum=0),
    "lm_steps": Field("int", "Levenberg-Marquardt iterations per window", minimum=0),
    "lm_resample_every": Field("int", "Levenberg-Marquardt iterations between new points "
                               "(0: one point set per window)", minimum=0),
    "resample_every": Field("int", "Adam steps between new collocation points", minimum=1),
    "causal_eps": Field("float", "causal weighting strength", minimum=0.0),
    "n_causal_chunks": Field("int", "causal time chunks", minimum=1),
    "dtype": Field("str", "floating type", choices=("float64", "float32")),
    "eval_grid": Field("list[int]", "evaluation grid sizes (space, then time)", minimum=2),
    "data_weight": Field("float", "weight of the observation misfit", minimum=0.0),
}

SCHEMA = Table({
    "problem": Table({
        "name": Field("str", "a bundled problem", choices=tuple(BUILTIN)),
        "parameters": Field("table", "PDE coefficients (f.parameters in the residual)",
                            default={}),
        "file": Field("path", "Python file with the residual and initial condition"),
        "residual": Field("str", "residual(f) function in the file", default="residual"),
        "initial": Field("str", "initial(x[, y]) function in the file", default="initial"),
        "boundary": Field("str", "boundary(f) function (faces of non-periodic coordinates)"),
        "reference": Field("str", "exact solution reference(x[, y], t) function in the file"),
        "domain_x": Field("list[float]", "interval of x (one period if periodic)",
                          check=_interval_check),
        "domain_y": Field("list[float]", "interval of y (2-D problems)", check=_interval_check),
        "t_final": Field("float", "end of the time interval of a bundled problem that takes "
                         "one (" + ", ".join(WITH_T_FINAL) + ")", minimum=0.0),
        "domain_t": Field("list[float]", "time interval", default=[0.0, 1.0],
                          check=_interval_check),
        "periodic": Field("list[str]", "periodic coordinates (default: all spatial)"),
        "periods": Field("table", "period per coordinate when not its interval's length"),
        "outputs": Field("list[str]", "unknown fields", default=["u"]),
        "units": Field("table", "units of coordinates and outputs", default={}),
        "etdrk4": Table({
            "linear": Field("str", "L(k) (or L(kx, ky)) function in the file", required=True),
            "nonlinear": Field("str", "N(u) function in the file", required=True),
            "n_points": Field("int", "spectral points per coordinate", default=512, minimum=4),
            "dt": Field("float", "time step", default=1e-3, minimum=0.0),
        }, doc="reference from the ETDRK4 spectral solver, for u_t = L u + N(u)"),
    }, doc="the PDE: a bundled problem, or your own functions in a Python file"),
    "model": Table(_MODEL_FIELDS, doc="network and training (default: the problem's recipe)"),
    "fit": Table({
        "quick": Field("bool", "small budget (the recipe's quick settings)", default=False),
        "budget": Field("float", "multiplier on training steps", minimum=0.0),
        "random_state": Field("int", "seed", default=0, minimum=0),
        "n_threads": Field("int", "CPU threads for training", minimum=1),
        "device": Field("str", "torch device (default: cuda if available, else cpu)"),
        "checkpoint": Field("path", "checkpoint file (saved during training)", role="output"),
        "resume": Field("bool", "continue from the checkpoint", default=False),
        "overwrite_checkpoint": Field("bool", "allow the checkpoint to replace a file that "
                                      "is not a checkpoint of this model", default=False),
        "progress": Field("bool", "progress bar", default=False),
    }, doc="how training runs"),
    "inverse": Table({
        "learn": Field("list[str]", "coefficients to learn, or period_x / period_y",
                       default=[]),
        "start": Field("list[float]", "starting values (default 0.8 x the truth)"),
        "noise": Field("float", "noise of synthetic observations", default=0.05, minimum=0.0),
        "n_obs": Field("int", "number of synthetic observations", default=200, minimum=1),
        "observations": Field("path", "observation file (CSV, .npy, netCDF) instead"),
        "columns": Field("list[str]", "its coordinate columns, then observed outputs"),
        "observed": Field("list[str]", "observed outputs (default: the first)"),
        "noise_std": Field("float", "known noise of a file's observations", minimum=0.0),
    }, doc="learn coefficients or periods from observations"),
})


# ------------------------------------------------------------------ user code
def _load_module(recipe: Recipe) -> ModuleType:
    """Import the recipe's Python file (the user's own code, run on purpose) by its path."""
    path = recipe.resolve(recipe.settings["problem"]["file"], "problem.file")
    name = f"_scitie_pinn_user_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise recipe.error(f"problem.file {str(path)!r} is not a Python file", "problem.file")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        from ..errors import RecipeError

        raise RecipeError(f"syntax error: {exc.msg}", path=path, line=exc.lineno) from None
    except Exception as exc:  # the user's module failed while importing: say where
        raise recipe.error(f"problem.file {str(path)!r} failed to import: "
                           f"{type(exc).__name__}: {exc}", "problem.file") from None
    return module


def _function(recipe: Recipe, module: ModuleType, key: str) -> Callable[..., Any]:
    name = recipe.get(key)
    fn = getattr(module, name, None)
    if not callable(fn):
        raise recipe.error(f"{key} = {name!r}: the file {recipe.settings['problem']['file']!r} "
                           f"defines no function {name!r}", key)
    return fn


#: Time steps of a reference solve a recipe accepts (ETDRK4 on a CPU does ~1e4-1e5 steps of
#: a 512-point grid a second: 1e7 steps is already minutes to hours).
MAX_REFERENCE_STEPS = 10_000_000


def _check_reference_sizes(recipe: Recipe, e: dict, p: dict, n_space: int) -> None:
    """The spectral grid and the step count are sizes too: refused before anything runs."""
    from .._validation import check_memory
    from ..errors import ValidationError

    n, dt = int(e["n_points"]), float(e["dt"])
    if dt <= 0:
        raise recipe.error(f"problem.etdrk4.dt must be > 0, got {dt!r}", "problem.etdrk4.dt")
    steps = (p["domain_t"][1] - p["domain_t"][0]) / dt
    if steps > MAX_REFERENCE_STEPS:
        raise recipe.error(f"problem.etdrk4.dt = {dt:g} over t in {list(p['domain_t'])} is "
                           f"{steps:.3g} time steps (at most {MAX_REFERENCE_STEPS:.0e}); choose "
                           "a larger dt", "problem.etdrk4.dt")
    # the field, its transform and the ETDRK4 stages and coefficients: ~24 complex arrays
    try:
        check_memory(24 * 16.0 * float(n) ** n_space * max(1, len(p["outputs"])),
                     "problem.etdrk4.n_points",
                     what=f"a spectral grid of {n}^{n_space} points")
    except ValidationError as exc:
        raise recipe.error(str(exc), "problem.etdrk4.n_points") from None


def _warn_if_blind(recipe: Recipe, parameters: dict[str, float],
                   functions: dict[str, tuple[Callable[..., Any], int]]) -> None:
    """Warn when no function of the reference can see the problem's coefficients: a changed
    coefficient (``--set problem.parameters.nu=0.1``) would then change the residual but not
    the reference, and the reported error would be against the wrong solution."""
    if not parameters or any(takes_parameters(fn, n) for fn, n in functions.values()):
        return
    import warnings

    from ..errors import FitWarning, location

    names = ", ".join(functions)
    where = location(recipe.path or f"<recipe {recipe.name}>", key="problem.parameters")
    warnings.warn(f"{where}: {names} do(es) not take the "
                  f"problem's parameters ({', '.join(parameters)}), so the reference ignores "
                  "them and the reported error is against a solution that does not follow a "
                  "changed coefficient. Give the function a last argument `parameters` (a "
                  "dict: parameters['nu']) to use them.", FitWarning, stacklevel=2)


def build_problem(recipe: Recipe) -> PDEProblem:
    """The :class:`PDEProblem` a recipe describes (bundled, or from the user's file)."""
    p = recipe.settings["problem"]
    params = dict(p["parameters"])
    for k, v in params.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise recipe.error(f"problem.parameters.{k} must be a finite number, got {v!r}",
                               f"problem.parameters.{k}")
    if p["name"] is not None:
        factory, known = BUILTIN[p["name"]]
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise recipe.error(f"problem.parameters: {p['name']} has coefficients "
                               f"{', '.join(known)}; unknown {', '.join(unknown)}",
                               "problem.parameters")
        kwargs = {k: float(v) for k, v in params.items()}
        if p["t_final"] is not None:
            if p["name"] not in WITH_T_FINAL:
                raise recipe.error(f"problem.t_final: {p['name']} has a fixed time interval "
                                   f"(t_final is for {', '.join(WITH_T_FINAL)})",
                                   "problem.t_final")
            kwargs["t_final"] = float(p["t_final"])
        problem = factory(**kwargs)
        if p["periods"]:
            problem = replace(problem, periods={k: float(v) for k, v in p["periods"].items()})
        return problem
    module = _load_module(recipe)
    residual = _function(recipe, module, "problem.residual")
    initial = _function(recipe, module, "problem.initial")
    boundary = _function(recipe, module, "problem.boundary") if p["boundary"] else None
    reference, source = None, ""
    parameters = {k: float(v) for k, v in params.items()}
    n_space = 2 if p["domain_y"] else 1
    if p["reference"]:
        reference, source = _function(recipe, module, "problem.reference"), "exact solution " \
            f"({p['reference']} in {p['file']})"
        _warn_if_blind(recipe, parameters, {"problem.reference": (reference, n_space + 1)})
    elif p["etdrk4"]["linear"] is not None:
        e = p["etdrk4"]
        if p["periodic"] is not None and len(p["periodic"]) < n_space:
            raise recipe.error("problem.etdrk4 needs every spatial coordinate periodic",
                               "problem.etdrk4")
        _check_reference_sizes(recipe, e, p, n_space)
        linear = _function(recipe, module, "problem.etdrk4.linear")
        nonlinear = _function(recipe, module, "problem.etdrk4.nonlinear")
        outputs = tuple(p["outputs"])
        _warn_if_blind(recipe, parameters, {"problem.etdrk4.linear": (linear, n_space),
                                            "problem.etdrk4.nonlinear": (nonlinear,
                                                                         len(outputs))})
        reference = semilinear_reference(
            linear, nonlinear, initial, p["domain_x"], p["domain_t"], domain_y=p["domain_y"],
            n_points=e["n_points"], dt=e["dt"], parameters=parameters,
            fields=outputs if len(outputs) > 1 else None)
        source = f"ETDRK4 Fourier spectral, {e['n_points']} points, dt={e['dt']}"
    return PDEProblem(residual, initial, tuple(p["domain_x"]), tuple(p["domain_t"]), reference,
                      name=recipe.name, parameters=parameters,
                      reference_source=source,
                      domain_y=tuple(p["domain_y"]) if p["domain_y"] else None,
                      periodic=tuple(p["periodic"]) if p["periodic"] is not None else None,
                      periods=p["periods"], outputs=tuple(p["outputs"]), boundary=boundary,
                      units=dict(p["units"]))


def model_settings(recipe: Recipe, problem: PDEProblem, inverse: bool) -> dict[str, Any]:
    """PeriodicPINN keyword arguments: the problem's one set of defaults
    (:func:`recommended_settings`, the same the Python API uses; ``[quick]`` shrinks them),
    with every ``[model]`` key the recipe sets on top."""
    m = recipe.settings["model"]
    kw = recommended_settings(problem, mode=m["mode"], quick=recipe.settings["fit"]["quick"],
                              inverse=inverse)
    for key, value in m.items():
        if key != "mode" and value is not None:
            kw[key] = tuple(value) if key in ("hidden", "eval_grid") else value
    return kw


# ------------------------------------------------------------------ checks and run
def check(recipe: Recipe) -> None:
    """Everything that can be checked before training: the problem builds, the functions
    exist, the settings are valid, learnt names exist, the observation file reads."""
    p = recipe.settings["problem"]
    if (p["name"] is None) == (p["file"] is None):
        raise recipe.error("give exactly one of problem.name (a bundled problem) or "
                           "problem.file (your residual in a Python file)", "problem")
    if p["file"] is not None and p["domain_x"] is None:
        raise recipe.error("problem.domain_x is required with problem.file", "problem.domain_x")
    if p["file"] is not None and p["t_final"] is not None:
        raise recipe.error("problem.t_final is for a bundled problem; your own PDE's time "
                           "interval is problem.domain_t", "problem.t_final")
    if p["name"] is not None:
        for key in ("residual", "initial", "boundary", "reference", "domain_x", "domain_y"):
            default = SCHEMA.fields["problem"].fields[key].default
            if p[key] not in (None, default):
                raise recipe.error(f"problem.{key} is for your own PDE (problem.file); "
                                   f"{p['name']!r} defines it", f"problem.{key}")
    from ..errors import ValidationError

    try:
        problem = build_problem(recipe)
        from ._model import PeriodicPINN

        PeriodicPINN(problem, **model_settings(recipe, problem, bool(
            recipe.settings["inverse"]["learn"])))._validate()
    except ValidationError as exc:
        raise recipe.error(str(exc), "model") from None
    _inverse_plan(recipe, problem, load=False)


def _inverse_plan(recipe: Recipe, problem: PDEProblem, *,
                  load: bool = True) -> dict[str, Any] | None:
    """What to learn, from which starting values, and the observations (``load=False``:
    check the names and the file only)."""
    inv = recipe.settings["inverse"]
    if not inv["learn"]:
        if inv["observations"] is not None:
            raise recipe.error("inverse.observations given but inverse.learn is empty",
                               "inverse.learn")
        return None
    if inv["start"] is not None and len(inv["start"]) != len(inv["learn"]):
        raise recipe.error(f"inverse.start needs one value per inverse.learn name "
                           f"({len(inv['learn'])}); got {len(inv['start'])}", "inverse.start")
    starts: dict[str, float] = {}
    periods = dict(problem.periods)
    learn_period = False
    for i, name in enumerate(inv["learn"]):
        if name.startswith("period_"):
            c = name[len("period_"):]
            if c not in problem.periods:
                raise recipe.error(f"inverse.learn: {c!r} is not a periodic coordinate of "
                                   f"{problem.name} ({', '.join(problem.periodic)})",
                                   "inverse.learn")
            learn_period = True
            periods[c] = inv["start"][i] if inv["start"] else 0.8 * problem.periods[c]
            continue
        if name not in problem.parameters:
            raise recipe.error(f"inverse.learn: {name!r} is not a coefficient of "
                               f"{problem.name} ({', '.join(problem.parameters)}) nor "
                               "period_<coordinate>", "inverse.learn")
        starts[name] = inv["start"][i] if inv["start"] else 0.8 * problem.parameters[name]
    if learn_period and recipe.settings["model"]["mode"] != "hard":
        raise recipe.error("learning a period needs model.mode = 'hard'", "inverse.learn")
    if inv["observations"] is None and problem.reference is None:
        raise recipe.error("synthetic observations need a reference solution; give "
                           "inverse.observations (a data file)", "inverse.observations")
    observed = tuple(inv["observed"] or problem.outputs[:1])
    bad = [o for o in observed if o not in problem.outputs]
    if bad:
        raise recipe.error(f"inverse.observed: {bad} are not outputs of {problem.name} "
                           f"({', '.join(problem.outputs)})", "inverse.observed")
    if inv["observations"] is not None:
        path = recipe.resolve(inv["observations"], "inverse.observations")
        columns = list(inv["columns"] or [*problem.coordinates, *observed])
        if len(columns) != len(problem.coordinates) + len(observed):
            raise recipe.error(f"inverse.columns must name {len(problem.coordinates)} "
                               f"coordinate column(s) then {len(observed)} observed output(s)",
                               "inverse.columns")
        table = read_table(path, columns)
        data = np.column_stack([np.asarray(table[c], dtype=float) for c in columns])
        X, y = data[:, :len(problem.coordinates)], data[:, len(problem.coordinates):]
        inputs = [path]
    elif not load:
        X = y = None
        inputs = []
    else:
        from .data import synthetic_observations

        X, y = synthetic_observations(problem, inv["n_obs"], inv["noise"],
                                      random_state=recipe.settings["fit"]["random_state"],
                                      output=observed[0])
        inputs = []
    return dict(starts=starts, periods=periods, learn_period=learn_period, X=X, y=y,
                observed=observed, inputs=inputs)


def outputs(recipe: Recipe) -> list[str]:
    """The files ``--out`` writes: the result Dataset and its figure."""
    return [f"{recipe.name}.nc", f"{recipe.name}.png"]


def run(recipe: Recipe) -> RunSummary:
    """Train the PINN a recipe describes; return what the command line prints and writes."""
    from ._model import PeriodicPINN
    from ._plotting import plot_result

    problem = build_problem(recipe)
    plan = _inverse_plan(recipe, problem)
    f, inv = recipe.settings["fit"], recipe.settings["inverse"]
    settings = model_settings(recipe, problem, plan is not None)
    learner, fit_args = problem, {}
    if plan is not None:
        if plan["learn_period"]:
            learner = replace(problem, periods=plan["periods"])
            settings["trainable_frequency"] = True
        if plan["starts"]:
            settings["learn"] = plan["starts"]
        noise = inv["noise_std"] if inv["observations"] is not None else inv["noise"]
        if noise:
            settings["noise_std"] = noise
        fit_args = dict(X=plan["X"], y=plan["y"], observed=plan["observed"])
    checkpoint = (recipe.resolve(f["checkpoint"], "fit.checkpoint", must_exist=False)
                  if f["checkpoint"] else None)
    model = PeriodicPINN(learner, random_state=f["random_state"], budget=f["budget"],
                         n_threads=f["n_threads"], device=f["device"], checkpoint=checkpoint,
                         progress=f["progress"], **settings)
    model.fit(resume=f["resume"], overwrite=f["overwrite_checkpoint"], **fit_args)
    res = model.result_
    stats = res.statistics
    metrics: dict[str, Any] = {k: stats[k] for k in ("rel_l2", "periodicity_violation",
                                                      "periodicity_violation_slope",
                                                      "final_loss") if k in stats}
    metrics.update({k: v for k, v in stats.items() if k.startswith("rel_l2_")})
    metrics.update(fit_cpu_seconds=model.fit_cpu_seconds_,
                   adam_steps=model.n_adam_steps_, lbfgs_steps=model.n_lbfgs_steps_,
                   lm_steps=model.n_lm_steps_)
    lines = [model.report()]
    if model.uncertainty_ is not None:
        truth = {**problem.parameters, **{f"period_{c}": v for c, v in problem.periods.items()}}
        synthetic = inv["observations"] is None
        for n, v, s in zip(model.uncertainty_.names, model.uncertainty_.values,
                           model.uncertainty_.stderr):
            metrics[f"learnt_{n}"], metrics[f"learnt_{n}_stderr"] = float(v), float(s)
            line = f"  learnt {n} = {v:.6g} +/- {s:.2g}"
            if synthetic:
                metrics[f"true_{n}"] = float(truth[n])
                line += (f" (truth {truth[n]:.6g}, {(v - truth[n]) / s:+.2f} standard errors; "
                         f"{inv['n_obs']} synthetic observations, noise {inv['noise']:g})")
            lines.append(line)
        check = model.uncertainty_check_
        if check:
            for n, q in check["quantities"].items():
                metrics[f"learnt_{n}_profile_ratio"] = float(q["ratio"])
            metrics["uncertainty_warnings"] = len(check["warnings"])
    if "rel_l2" in metrics:
        lines.append(f"  relative L2 {metrics['rel_l2']:.3e} against {problem.reference_source}")
    lines.append(f"  periodicity violation {metrics['periodicity_violation']:.1e}")
    ds = model.to_xarray()
    ds.attrs["recipe"] = recipe.source
    data = res.data
    return RunSummary(dataset=recipe.name, model=f"PeriodicPINN({model.mode})",
                      seconds=model.fit_seconds_, metrics=metrics, parameters=res.parameters(),
                      report="\n".join(lines), datasets={recipe.name: ds},
                      figures={recipe.name: lambda path, _ds=data: plot_result(
                          _ds, path, overwrite=True)})


KIND = RecipeKind(
    name="pinn", schema=SCHEMA, run=run, outputs=outputs, check=check,
    description="periodic physics-informed networks (sciTie.pinn)",
    options=(
        Option(("--problem",), "problem.name", help="bundled PDE: " + ", ".join(BUILTIN)),
        Option(("--beta",), "problem.parameters.beta", type=float, help="advection speed"),
        Option(("--eps",), "problem.parameters.eps", type=float, help="Allen-Cahn diffusion"),
        Option(("--nu",), "problem.parameters.nu", type=float, help="viscosity"),
        Option(("--mode",), "model.mode", help="hard, soft or shared"),
        Option(("--budget",), "fit.budget", type=float, help="multiplier on steps"),
        Option(("--threads",), "fit.n_threads", type=int, help="CPU threads"),
        Option(("--checkpoint",), "fit.checkpoint", help="checkpoint file"),
        Option(("--resume",), "fit.resume", action="store_true",
               help="continue from --checkpoint"),
        Option(("--progress",), "fit.progress", action="store_true", help="progress bar"),
        Option(("--learn",), "inverse.learn", nargs="+",
               help="learn these coefficients (or period_x) from observations"),
        Option(("--noise",), "inverse.noise", type=float, help="synthetic observation noise"),
        Option(("--n-obs",), "inverse.n_obs", type=int, help="synthetic observations"),
    ))
