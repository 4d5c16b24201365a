"""The ``hmm`` recipe kind: a tied HMM fitted to a user's series from one TOML file.

.. code-block:: toml

    kind = "hmm"
    name = "rates"

    [data]
    file = "rates.csv"            # CSV (header names), .npy, or netCDF (variable names)
    columns = ["rate"]
    lengths_column = "sequence"   # or lengths = [500, 300]
    time_column = "t"             # physical time, for figures
    time_unit = "s"

    [model]
    family = "gaussian"           # gaussian | poisson | categorical | gmm
    n_components = 2              # or a list: compared by BIC
    duration = "poisson"          # optional: a hidden semi-Markov model (gaussian, poisson)
    max_duration = 30             # its longest dwell time, in samples
    ties = ["covars[1] = covars[0]"]
    covars_prior = 0              # maximum likelihood (hmmlearn's default 0.01 is MAP)

    [fit]
    restarts = 5                  # the model's n_init (default: 1 untied, 10 with ties)
    random_state = 0

Every model setting left out is the model class's default (hmmlearn's), so a recipe and the
Python API fit the same model; only EM's stopping rule differs (``n_iter = 100``,
``tol = 1e-4`` against hmmlearn's 10 and 1e-2, which stop short of the optimum).
"""
from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..core.report import label_parameter_units
from ..core.summary import RunSummary
from ..errors import SciTieError
from ..recipes import ArrayOfTables, Field, Option, Recipe, RecipeKind, Table
from ..recipes._data import FORMATS, lengths_from_labels, read_table
from ._family import families
from ._hsmm import SEMI_MARKOV
from ._tying import erlang_chains, linear_scheme

__all__ = ["KIND", "SCHEMA", "fit_recipe_models"]

_MODEL_FIELDS = {
    "family": Field("str", "emission family: gaussian, poisson, categorical, gmm, "
                           "autoregressive, or a family of your own (sciTie.hmm._family)"),
    "n_components": Field("int|list[int]", "number of states (a list: compared by BIC)",
                          minimum=1),
    "covariance_type": Field("str", "Gaussian/GMM covariance (default diag)",
                             choices=("spherical", "diag", "full", "tied")),
    "n_mix": Field("int", "mixture components per state (gmm; default 1)", minimum=1),
    "order": Field("int", "number of lags (autoregressive; default 1)", minimum=1),
    "n_features": Field("int", "number of symbols (categorical; default from the data)",
                        minimum=1),
    "ties": Field("list[str]", "tie statements, e.g. 'means[1] = means[0]'", default=[]),
    "tied_states": Field("list[list[int]]", "groups of states sharing one emission"),
    "tied_transitions": Field("list[list[int]]", "groups of states sharing a self-loop"),
    "duration": Field("str", "explicit dwell-time distribution: a hidden semi-Markov model "
                             "(gaussian and poisson families; ties may name dwell_rate, "
                             "dwell_shape, dwell_pmf)",
                      choices=("poisson", "negbinom", "nonparametric")),
    "max_duration": Field("int", "longest dwell time in samples (with duration; default 20)",
                          minimum=1),
    "scheme": Table({
        "type": Field("str", "topology", required=True, choices=("linear", "erlang")),
        "group_sizes": Field("list[int]", "states per observable level", required=True,
                             minimum=1),
        "stay": Field("float", "initial self-loop probability", default=0.9, minimum=0.0,
                      maximum=1.0),
    }, doc="a linear (C-C-O-O) or Erlang-chain topology; its zeros are structural"),
    "params": Field("str", "letters of the parameters to fit (hmmlearn's params)"),
    "init_params": Field("str", "letters initialised by fit (hmmlearn's init_params)"),
    "start_distribution": Field("str", "'free' (fitted start probabilities) or 'stationary' "
                                       "(the chain starts at the stationary distribution of "
                                       "its transition matrix)", choices=("free", "stationary")),
    **{name: Field("float", doc, minimum=minimum) for name, (doc, minimum) in {
        "startprob_prior": ("Dirichlet prior of the start probabilities (1: none)", 0.0),
        "transmat_prior": ("Dirichlet prior of the transition rows (1: none)", 0.0),
        "means_prior": ("prior mean of the means (gaussian, gmm)", None),
        "means_weight": ("weight of the means prior (0: none)", 0.0),
        "covars_prior": ("prior scale of the (co)variances (0 with covars_weight 1: "
                         "maximum likelihood; default hmmlearn's 0.01)", 0.0),
        "covars_weight": ("weight of the covariance prior", None),
        "min_covar": ("floor added to the variances at the start (gaussian, gmm)", 0.0),
        "lambdas_prior": ("Gamma prior shape of the rates (poisson; 0: none)", 0.0),
        "lambdas_weight": ("Gamma prior rate of the rates (poisson; 0: none)", 0.0),
        "emissionprob_prior": ("Dirichlet prior of the emission rows (categorical; 1: none)",
                               0.0),
        "weights_prior": ("Dirichlet prior of the mixture weights (gmm; 1: none)", 0.0),
    }.items()},
}

#: ``[model]`` keys passed to the model class as they are, when given (None: the class's
#: default, which is hmmlearn's); a key the family's class does not take is refused.
MODEL_SETTINGS = ("covariance_type", "n_mix", "n_features", "order", "start_distribution",
                  "startprob_prior", "transmat_prior", "means_prior", "means_weight",
                  "covars_prior", "covars_weight", "min_covar", "lambdas_prior",
                  "lambdas_weight", "emissionprob_prior", "weights_prior", "duration",
                  "max_duration")


def _model_class(spec: dict[str, Any]) -> type:
    """The family's class, or its hidden semi-Markov model when ``duration`` is given."""
    if spec.get("duration") is not None:
        return SEMI_MARKOV[spec["family"]]
    return families()[spec["family"]]


SCHEMA = Table({
    "data": Table({
        "dataset": Field("str", "a dataset that ships with sciTie (`scitie datasets`)",
                         role="dataset"),
        "file": Field("path", "data file, relative to the recipe"),
        "format": Field("str", "file format (default: from the suffix)",
                        choices=("csv", "npy", "netcdf")),
        "columns": Field("list[str]", "observation columns / netCDF variables", default=[]),
        "lengths": Field("list[int]", "sequence lengths (summing to the number of rows)",
                         minimum=1),
        "lengths_column": Field("str", "column of sequence labels (contiguous runs)"),
        "time_column": Field("str", "column or coordinate with the time of each row"),
        "known_states_column": Field("str", "column with the state of rows where it is known "
                                            "(-1 where it is not): partially labelled data"),
        "covariate_columns": Field("list[str]", "columns of covariates that drive the "
                                   "transitions (a multinomial logit; model.beta)", default=[]),
        "time_unit": Field("str", "unit of the time column", default="samples"),
        "unit": Field("str", "unit of the observed values (means and rates are reported in "
                      "it, variances in its square)", default=""),
        "dt": Field("float", "time per sample: transition rates are reported per unit time",
                    minimum=0.0),
        "options": Field("table", "keyword arguments of the dataset's loader", default={}),
    }, doc="where the observations come from"),
    "model": Table(_MODEL_FIELDS, doc="the HMM and its ties"),
    "fit": Table({
        "restarts": Field("int", "starts of EM, the best log-likelihood kept (the model's "
                                 "n_init; default 'auto': 1 untied, 10 with ties)", minimum=1),
        "n_iter": Field("int", "EM iterations at most (100, not hmmlearn's 10: a recipe fits "
                               "to convergence)", default=100, minimum=1),
        "tol": Field("float", "EM convergence threshold on the log-likelihood gain (1e-4, not "
                              "hmmlearn's 1e-2)", default=1e-4, minimum=0.0),
        "random_state": Field("int", "first seed", default=0, minimum=0),
        "uncertainties": Field("bool", "standard errors from the observed information",
                               default=True),
        "order_states": Field("bool", "label untied states by increasing level", default=True),
    }, doc="how EM is run"),
    "compare": ArrayOfTables(Table({"label": Field("str", "name in the comparison table",
                                                   required=True), **_MODEL_FIELDS}),
                             doc="other models fitted to the same data, compared by BIC"),
})


# ------------------------------------------------------------------ data
def _load_data(recipe: Recipe) -> dict[str, Any]:
    d = recipe.settings["data"]
    if bool(d["dataset"]) == bool(d["file"]):
        raise recipe.error("give exactly one of data.dataset (bundled) or data.file", "data")
    columns = list(d["columns"])
    extra = [c for c in (d["lengths_column"], d["time_column"], d["known_states_column"]) if c]
    extra += [c for c in d["covariate_columns"] if c not in extra]
    inputs: list[Path] = []
    if d["dataset"]:
        from .. import datasets

        try:
            ds = datasets.load(d["dataset"], **d["options"])
        except (TypeError, ValueError) as exc:
            raise recipe.error(f"data.dataset {d['dataset']!r}: {exc}", "data.dataset") from None
        if not columns:
            raise recipe.error("data.columns must name the observation variables of the "
                               f"dataset (it has {', '.join(map(str, ds.variables))})",
                               "data.columns")
        table = {}
        for name in columns + extra:
            if name not in ds.variables:
                raise recipe.error(f"dataset {d['dataset']!r} has no variable {name!r} (it has "
                                   f"{', '.join(map(str, ds.variables))})", "data.columns")
            table[name] = np.asarray(ds[name].values, dtype=float)
        attrs = dict(ds.attrs)
    else:
        path = recipe.resolve(d["file"], "data.file")
        inputs.append(path)
        # an empty cell of an observation column is a missing value (NaN: see the HMM docs,
        # "Missing observations"); an empty known-state cell is an unknown state
        table = read_table(path, columns + extra, fmt=d["format"], missing=True)
        for key in ("lengths_column", "time_column"):
            gaps = np.flatnonzero(np.isnan(table[d[key]])) if d[key] else []
            if len(gaps):
                raise recipe.error(f"data.{key} {d[key]!r} has an empty (missing) value in "
                                   f"data row {int(gaps[0]) + 1}; only observations may be "
                                   "missing", f"data.{key}")
        if not columns:
            columns = [c for c in table if c not in extra]
        attrs = {}
    X = np.column_stack([table[c] for c in columns])
    lengths = None
    if d["lengths"] is not None and d["lengths_column"]:
        raise recipe.error("give data.lengths or data.lengths_column, not both", "data.lengths")
    if d["lengths"] is not None:
        lengths = np.asarray(d["lengths"], dtype=np.int64)
        if lengths.sum() != X.shape[0]:
            raise recipe.error(f"data.lengths sum to {int(lengths.sum())} but the data have "
                               f"{X.shape[0]} rows", "data.lengths")
    elif d["lengths_column"]:
        lengths = lengths_from_labels(table[d["lengths_column"]],
                                      path=inputs[0] if inputs else None, key=d["lengths_column"])
    time_values = table[d["time_column"]] if d["time_column"] else None
    known = None
    if d["known_states_column"]:
        known = np.nan_to_num(np.asarray(table[d["known_states_column"]], dtype=float),
                              nan=-1.0)
        if np.any(known != np.round(known)) or np.any(known < -1):
            raise recipe.error(f"data.known_states_column {d['known_states_column']!r} must hold "
                               "state indices, or -1 where the state is unknown",
                               "data.known_states_column")
        known = known.astype(np.int64)
    covariates = (np.column_stack([np.asarray(table[c], dtype=float)
                                   for c in d["covariate_columns"]])
                  if d["covariate_columns"] else None)
    return {"X": X, "lengths": lengths, "time": time_values, "attrs": attrs, "inputs": inputs,
            "columns": columns, "known_states": known, "covariates": covariates}


# ------------------------------------------------------------------ models
def _model_specs(recipe: Recipe) -> list[tuple[str, str, dict[str, Any]]]:
    """(label, recipe key of its settings, model settings) of every model the recipe fits."""
    base = recipe.settings["model"]
    specs = []
    ks = base["n_components"]
    if base["scheme"]["type"] is None and ks is None:
        raise recipe.error("model.n_components is required (or a model.scheme)",
                           "model.n_components")
    if isinstance(ks, list):
        specs += [(str(k), "model", {**base, "n_components": k}) for k in ks]
    else:
        specs.append((None, "model", base))
    for i, entry in enumerate(recipe.settings["compare"]):
        merged = copy.deepcopy(base)
        for key, value in entry.items():
            if key != "label" and value is not None and not (
                    key == "scheme" and value.get("type") is None):
                merged[key] = value
        if entry.get("scheme", {}).get("type") is not None and entry.get("n_components") is None:
            merged["n_components"] = None
        specs.append((entry["label"], f"compare[{i}]", merged))
    for label, key, spec in specs:
        if spec["family"] is None:
            raise recipe.error("model.family is required (one of "
                               f"{', '.join(sorted(families()))})", "model.family")
        known = families()
        if spec["family"] not in known:
            raise recipe.error(f"{key}.family must be one of {', '.join(sorted(known))}; got "
                               f"{spec['family']!r}", f"{key}.family")
        if spec.get("max_duration") is not None and spec.get("duration") is None:
            raise recipe.error(f"{key}.max_duration is a setting of hidden semi-Markov models: "
                               f"give {key}.duration too (poisson, negbinom or "
                               "nonparametric)", f"{key}.max_duration")
        if spec.get("duration") is not None:
            if spec["family"] not in SEMI_MARKOV:
                raise recipe.error(f"{key}.duration: explicit dwell times are available for the "
                                   f"{' and '.join(sorted(SEMI_MARKOV))} families, not "
                                   f"{spec['family']!r}", f"{key}.duration")
            if spec["scheme"]["type"] is not None:
                raise recipe.error(f"{key}.duration and {key}.scheme exclude each other: a "
                                   "scheme builds dwell times from chains of states, a hidden "
                                   "semi-Markov model states them explicitly", f"{key}.duration")
        takes = set(_model_class(spec)._get_param_names())
        for name in MODEL_SETTINGS:
            if spec.get(name) is not None and name not in takes:
                users = sorted(f for f, c in known.items() if name in c._get_param_names())
                raise recipe.error(f"{key}.{name} does not apply to the {spec['family']} family "
                                   f"(it is a setting of {', '.join(users)})", f"{key}.{name}")
        if spec["scheme"]["type"] is not None:
            n = sum(spec["scheme"]["group_sizes"])
            if spec["n_components"] not in (None, n):
                raise recipe.error(f"{key}: n_components = {spec['n_components']} but the scheme "
                                   f"has {n} states", key)
            spec["n_components"] = n
    return [(label if label is not None else f"{spec['n_components']}_states", key, spec)
            for label, key, spec in specs]


def _make_model(spec: dict[str, Any], fit: dict[str, Any], seed: int, *, perturb: bool,
                X: np.ndarray | None = None):
    cls = _model_class(spec)
    kw: dict[str, Any] = dict(n_iter=fit["n_iter"], tol=fit["tol"], random_state=seed,
                              ties=list(spec["ties"]) or None, tied_states=spec["tied_states"],
                              tied_transitions=spec["tied_transitions"])
    kw.update({k: spec[k] for k in MODEL_SETTINGS if spec.get(k) is not None})
    if spec["scheme"]["type"] is None and fit["restarts"] is not None:
        kw["n_init"] = fit["restarts"]
    scheme = spec["scheme"]
    structure = None
    if scheme["type"] is not None:
        if scheme["type"] == "linear":
            structure = linear_scheme(scheme["group_sizes"], stay=scheme["stay"],
                                      random_state=seed if perturb else None)
        else:
            structure = erlang_chains(scheme["group_sizes"], stay=scheme["stay"])
            if kw["tied_transitions"] is None:
                kw["tied_transitions"] = structure.tied_transitions
        if kw["tied_states"] is None and not kw["ties"]:
            kw["tied_states"] = structure.tied_states
    init = spec["init_params"] if spec["init_params"] is not None else \
        "st" + cls._emission_letters + cls._duration_letters
    if structure is not None:
        init = init.replace("s", "").replace("t", "")
    if spec["params"] is not None:
        kw["params"] = spec["params"]
    model = cls(spec["n_components"], init_params=init, **kw)
    if structure is not None:
        model.startprob_, model.transmat_ = structure.startprob, structure.transmat
        if cls.family == "gaussian" and X is not None and "m" in init:
            # one starting level per observable level, at the data's quantiles
            sizes = scheme["group_sizes"]
            q = np.quantile(X, (np.arange(len(sizes)) + 0.5) / len(sizes), axis=0)
            model.means_ = np.repeat(q, sizes, axis=0)
            model.covars_ = np.tile(X.var(axis=0) / max(4.0, len(sizes) ** 2),
                                    (model.n_components, 1))
            model.init_params = init.replace("m", "").replace("c", "")
    return model


def fit_recipe_models(spec: dict[str, Any], fit: dict[str, Any], X, lengths,
                      known_states=None, covariates=None):
    """One model spec fitted as the recipe says.

    ``fit.restarts`` is the model's ``n_init`` (its own starts, the best kept); a
    ``model.scheme``'s start is drawn here instead (perturbed exit probabilities, seeds
    ``random_state + i``), since the model starts from the scheme the recipe gives it.
    """
    if spec["scheme"]["type"] is None:
        return _make_model(spec, fit, fit["random_state"], perturb=False, X=X).fit(
            X, lengths, known_states=known_states, covariates=covariates)
    restarts = fit["restarts"] or 1
    best, best_ll = None, -np.inf
    for i in range(restarts):
        seed = fit["random_state"] + i
        model = _make_model(spec, fit, seed, perturb=restarts > 1, X=X)
        model.fit(X, lengths, known_states=known_states, covariates=covariates)
        ll = model.result_.log_likelihood
        if ll > best_ll:
            best, best_ll = model, ll
    return best


# ------------------------------------------------------------------ checks before fitting
def _placeholder(model, n_features: int) -> None:
    """Arrays of the right shapes, so that the model's group (and the ties) can be built."""
    K = model.n_components
    if not hasattr(model, "startprob_") or model.startprob_ is None:
        model.startprob_ = np.full(K, 1.0 / K)
    if not hasattr(model, "transmat_"):
        model.transmat_ = np.full((K, K), 1.0 / K)
    model._placeholder_emissions(n_features)


def _data(recipe: Recipe) -> dict[str, Any]:
    """The recipe's data, read once (by the check) and kept for the run."""
    if "hmm_data" not in recipe.cache:
        recipe.cache["hmm_data"] = _load_data(recipe)
    return recipe.cache["hmm_data"]


def _n_free_untied(spec: dict[str, Any], n_features: int, n_symbols: int) -> dict[str, int]:
    """Free scalars of the untied model by parameter, counted arithmetically by the family's
    own hmmlearn hook (``_get_n_fit_scalars_per_param``): no group, no K x K array."""
    cls = _model_class(spec)
    takes = set(cls._get_param_names())
    model = cls(spec["n_components"], **{k: spec[k] for k in MODEL_SETTINGS
                                          if spec.get(k) is not None and k in takes})
    model.n_features = (spec.get("n_features") or max(n_symbols, 2)) \
        if spec["family"] == "categorical" else n_features
    per_letter = model._get_n_fit_scalars_per_param()
    names = {"s": "startprob", "t": "transmat", "d": "dwell times",
             **{letter: name for name, letter, _ in model._emission_params()}}
    letters = spec["params"] if spec["params"] is not None else "".join(per_letter)
    return {names[k]: int(v) for k, v in per_letter.items() if k in letters}


def _check_sizes(recipe: Recipe, key: str, spec: dict[str, Any], data: dict[str, Any]) -> None:
    """Sizes before any allocation: states against rows, free parameters against the
    observed values (an untied model), memory against this machine's."""
    from .._validation import check_memory

    X, K = data["X"], spec["n_components"]
    n, D = X.shape
    where = f"{key}.n_components" if key != "model" else "model.n_components"
    source = recipe.settings["data"]["file"] or recipe.settings["data"]["dataset"]
    if K > n:
        raise recipe.error(f"{where} = {K} is more than the {n} rows of {source!r}: each state "
                           "needs data; use fewer states", where)
    untied = not (spec["ties"] or spec["tied_states"] or spec["tied_transitions"]
                  or spec["scheme"]["type"])
    values = n if spec["family"] == "categorical" else n * D
    counts = _n_free_untied(spec, D, int(X.max()) + 1 if spec["family"] == "categorical" else 0)
    if untied and sum(counts.values()) > values:
        parts = ", ".join(f"{k} {v}" for k, v in counts.items() if v)
        raise recipe.error(f"{where} = {K} gives {sum(counts.values())} free parameters ({parts}) "
                           f"for {values} observed values in {source!r}: the data cannot "
                           "identify them; use fewer states, tie them (model.ties, "
                           "model.tied_states), or give more data", where)
    per_state = 4 * n + 4 * K + n * (spec["n_mix"] or 1 if spec["family"] == "gmm" else 0)
    check_memory(8.0 * K * per_state, where,
                 what=f"forward-backward arrays of {n} rows x {K} states and a {K} x {K} "
                      "transition matrix")


def check(recipe: Recipe) -> None:
    """Files, data choices, sizes and ties, validated before any fitting starts."""
    from ._group import build_group

    d = recipe.settings["data"]
    if bool(d["dataset"]) == bool(d["file"]):
        raise recipe.error("give exactly one of data.dataset (bundled) or data.file", "data")
    if d["file"]:
        path = recipe.resolve(d["file"], "data.file")
        if d["format"] is None and path.suffix.lower() not in FORMATS:
            raise recipe.error(f"cannot tell the format of {path.name!r} from its suffix; set "
                               "data.format to csv, npy or netcdf", "data.format")
    if d["dataset"]:
        from .. import datasets

        if d["dataset"] not in datasets.list_datasets():
            raise recipe.error(f"unknown dataset {d['dataset']!r}; known: "
                               f"{', '.join(datasets.list_datasets())}", "data.dataset")
    data = _data(recipe)
    n_features = data["X"].shape[1]
    fit = recipe.settings["fit"]
    specs = _model_specs(recipe)
    for label, key, spec in specs:  # every model's sizes before any model is built
        _check_sizes(recipe, key, spec, data)
    for label, key, spec in specs:
        model = _make_model(spec, fit, fit["random_state"], perturb=False)
        saved = model.init_params
        model.init_params = "st" + model._emission_letters  # placeholders are projected
        _placeholder(model, n_features)
        try:
            build_group(model)
        except (SciTieError, ValueError, TypeError) as exc:
            raise recipe.error(f"{key}: {exc}", f"{key}.ties" if spec["ties"] else key) from None
        finally:
            model.init_params = saved


def outputs(recipe: Recipe) -> list[str]:
    """Files ``--out`` writes for this recipe."""
    return [f"{recipe.name}.nc", f"{recipe.name}.png"]


# ------------------------------------------------------------------ run
def _truth(best, attrs: dict, dt: float | None) -> tuple[dict[str, float], list[str]]:
    """Fitted vs true transition probabilities, when the data carry them (simulations)."""
    if "true_transmat" not in attrs:
        return {}, []
    At = np.asarray(attrs["true_transmat"], dtype=float).reshape(best.transmat_.shape)
    off = (At > 0) & ~np.eye(At.shape[0], dtype=bool)
    if At.shape != best.transmat_.shape or not off.any():
        return {}, []
    rel = np.abs(best.transmat_[off] / At[off] - 1)
    lines = [f"{'transition':<12}{'fitted':>12}{'true':>12}" + (" (per time unit)" if dt else "")]
    scale = 1.0 / dt if dt else 1.0
    for i, j in zip(*np.nonzero(off)):
        lines.append(f"{f'{i}->{j}':<12}{best.transmat_[i, j] * scale:>12.5g}"
                     f"{At[i, j] * scale:>12.5g}")
    return {"max_rel_err_transitions": float(rel.max())}, lines


def run(recipe: Recipe) -> RunSummary:
    """Fit every model of an ``hmm`` recipe and summarise the best (see module docstring)."""
    from ..provenance import provenance

    data = _data(recipe)
    X, lengths = data["X"], data["lengths"]
    fit = recipe.settings["fit"]
    specs = _model_specs(recipe)
    t0 = time.perf_counter()
    covariates = data["covariates"]
    fitted = [(label, key, fit_recipe_models(spec, fit, X, lengths, data["known_states"],
                                             covariates))
              for label, key, spec in specs]
    seconds = time.perf_counter() - t0
    main = [(label, m) for label, key, m in fitted if key == "model"]
    best_label, best = min(main, key=lambda lm: lm[1].result_.bic)
    if fit["order_states"] and not best._plan.statements and data["known_states"] is None:
        # (known states name states by index: their labels stay)
        best.permute_states(np.argsort(best._state_level()))
    result = best.uncertainties(X, lengths, known_states=data["known_states"],
                                covariates=covariates) \
        if fit["uncertainties"] else best.result_
    dt = recipe.settings["data"]["dt"]
    metrics: dict[str, Any] = {"log_likelihood": result.log_likelihood, "aic": result.aic,
                               "bic": result.bic, "n_free_parameters": result.nvarys,
                               "em_iterations": int(best.monitor_.iter),
                               "converged": bool(result.success), "n_samples": int(X.shape[0]),
                               "estimation": best.estimation(),
                               "starts": len(getattr(best, "starts_", [None]))}
    rows = []
    for label, key, m in fitted:
        r = m.result_
        rows.append(f"{label:<24}{r.log_likelihood:>14.4f}{r.nvarys:>5d}{r.aic:>13.3f}"
                    f"{r.bic:>13.3f}")
        metrics[f"log_likelihood_{label}"] = r.log_likelihood
        metrics[f"bic_{label}"] = r.bic
    if len(main) > 1:
        metrics["best_n_states_bic"] = int(best.n_components)
    truth_metrics, truth_lines = _truth(best, data["attrs"], dt)
    metrics.update(truth_metrics)
    parameters = result.parameters()  # fixed values too: "means[0] = 0" is a result
    if dt:
        for i, j in zip(*np.nonzero(~np.eye(best.n_components, dtype=bool))):
            name = f"transmat[{i},{j}]"
            if name in parameters and parameters[name]["status"] != "fixed":
                p = parameters[name]
                parameters[f"rate[{i},{j}]"] = {
                    "value": p["value"] / dt,
                    "stderr": None if p["stderr"] is None else p["stderr"] / dt,
                    "unit": f"1/{recipe.settings['data']['time_unit']}", "status": p["status"]}
    lines = [f"{recipe.name}: {recipe.description}".rstrip(": "),
             f"data: {X.shape[0]} samples x {X.shape[1]} features in "
             f"{1 if lengths is None else len(lengths)} sequence(s)",
             f"{'model':<24}{'logL':>14}{'k':>5}{'AIC':>13}{'BIC':>13}", *rows,
             f"chosen: {best_label} (lowest BIC among the [model] entries)", ""]
    if truth_lines:
        lines += ["fitted vs true transitions (the data are a simulation):", *truth_lines, ""]
    lines.append(best.report())
    time_values = data["time"]
    ds = best.to_xarray(X, lengths, covariates=covariates)
    unit = recipe.settings["data"]["unit"]
    if unit:
        _apply_value_unit(ds, parameters, unit, type(best)._unit_powers)
    if time_values is not None:  # the physical time is the time coordinate
        ds = ds.assign_coords(
            time=("time", np.asarray(time_values),
                  {"long_name": f"time ({recipe.settings['data']['time_column']})",
                   "units": recipe.settings["data"]["time_unit"]}),
            sample=("time", ds["time"].values, dict(ds["time"].attrs)))
    ds.attrs.update(provenance(model=type(best).__name__, settings=recipe.settings,
                               seed=fit["random_state"], inputs=data["inputs"],
                               recipe=recipe.source,
                               extra={"recipe_name": recipe.name}))

    def figure(path, _m=best, _X=X, _lengths=lengths, _t=time_values, _c=covariates):
        import matplotlib.pyplot as plt

        unit = recipe.settings["data"]["time_unit"]
        fig = plt.figure(figsize=(11, 6.5))
        grid = fig.add_gridspec(3, max(2, _m.n_groups_), height_ratios=[2, 1, 2])
        top = np.array([fig.add_subplot(grid[0, :]), fig.add_subplot(grid[1, :])])
        top[1].sharex(top[0])
        bottom = np.array([fig.add_subplot(grid[2, g]) for g in range(_m.n_groups_)])
        step = float(np.median(np.diff(_t))) if _t is not None and len(_t) > 1 else (dt or 1.0)
        with _m._covariates_given(_c):
            _m.plot(_X, _lengths, ax=top, time=_t, time_unit=unit, max_points=3000)
            _m.plot_dwell_times(_X, _lengths, ax=bottom, dt=step, time_unit=unit)
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)

    return RunSummary(dataset=recipe.name, model=f"{type(best).__name__}({best_label})",
                      seconds=seconds, metrics=metrics, parameters=parameters,
                      report="\n".join(lines), datasets={recipe.name: ds},
                      figures={recipe.name: figure})


KIND = RecipeKind(
    name="hmm", schema=SCHEMA, run=run, outputs=outputs, check=check,
    description="tied hidden Markov models (sciTie.hmm)",
    options=(
        Option(("--data",), "data.file", help="data file (CSV, .npy, netCDF)"),
        Option(("--column",), "data.columns", action="append",
               help="observation column / variable (repeat for several)"),
        Option(("--lengths-column",), "data.lengths_column", help="column of sequence labels"),
        Option(("--time-column",), "data.time_column", help="column with the time of each row"),
        Option(("--covariate-column",), "data.covariate_columns", action="append",
               help="column of a covariate that drives the transitions (repeat for several)"),
        Option(("--known-states-column",), "data.known_states_column",
               help="column with known states (-1 where unknown)"),
        Option(("--family",), "model.family",
               help="gaussian, poisson, categorical, gmm or autoregressive"),
        Option(("--states",), "model.n_components", type=int, nargs="+",
               help="number of states (several: compared by BIC)"),
        Option(("--duration",), "model.duration",
               help="poisson, negbinom or nonparametric: a hidden semi-Markov model with "
                    "explicit dwell times (gaussian and poisson families)"),
        Option(("--max-duration",), "model.max_duration", type=int,
               help="longest dwell time in samples (with --duration)"),
        Option(("--tie",), "model.ties", action="append",
               help="a tie statement, e.g. 'covars[1] = covars[0]' (repeat for several)"),
        Option(("--restarts",), "fit.restarts", type=int,
               help="starts of EM, the best kept (default: 1 untied, 10 with ties)"),
        Option(("--start-distribution",), "model.start_distribution",
               help="free (default) or stationary (the chain starts at the stationary "
                    "distribution of its transitions)"),
        Option(("--n-iter",), "fit.n_iter", type=int, help="EM iterations at most"),
        Option(("--seed",), "fit.random_state", type=int, help="first seed"),
    ),
)


def _apply_value_unit(ds, parameters: dict, unit: str, powers: dict[str, int]) -> None:
    """Label observations and emission parameters with the data's unit (netCDF and JSON);
    ``powers`` is the family's power of the unit per emission parameter."""
    def of(power: int) -> str:
        return "" if power == 0 else unit if power == 1 else f"({unit})^{power}"

    if "X" in ds:
        ds["X"].attrs["units"] = unit
    for name, power in powers.items():
        if power == 0:
            continue
        if name in ds:
            ds[name].attrs["units"] = of(power)
        for key, entry in parameters.items():
            if key.startswith(f"{name}["):
                entry["unit"] = of(power)
    dimensional = {name: of(power) for name, power in powers.items() if power}
    label_parameter_units(ds, lambda slot: dimensional.get(slot.split("[")[0]))
