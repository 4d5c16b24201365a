"""``scitie fit earthquakes`` and ``scitie fit ion-channel``."""
from __future__ import annotations

import argparse
import time
from typing import Sequence

import numpy as np

from sciTie.core import RunSummary

from ._fitting import fit_linear_scheme, fit_poisson_restarts
from .data import ion_channel_truth, load_earthquakes, load_ion_channel

__all__ = ["run", "dwell_times"]


def dwell_times(levels: np.ndarray) -> dict[int, np.ndarray]:
    """Lengths of the runs of equal values in ``levels``, per value.

    Parameters
    ----------
    levels : ndarray of int, shape (n_samples,)
        A level sequence (e.g. the Viterbi group path).

    Returns
    -------
    dict of int to ndarray
        Run lengths (in samples) for each level; the first and last runs are dropped
        (censored).
    """
    levels = np.asarray(levels)
    change = np.flatnonzero(np.diff(levels)) + 1
    starts = np.r_[0, change]
    lengths = np.diff(np.r_[starts, levels.size])
    vals = levels[starts]
    keep = slice(1, -1) if len(starts) > 2 else slice(0, 0)
    return {int(v): lengths[keep][vals[keep] == v] for v in np.unique(levels)}


def _finite(value):
    """A float, or None when missing or not finite (JSON has no NaN)."""
    if value is None or not np.isfinite(value):
        return None
    return float(value)


def _parser(name: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"scitie fit {name}", add_help=False)
    p.add_argument("--help-model", action="help", help="show the model options")
    p.add_argument("--quick", action="store_true", help="small budget (demo)")
    p.add_argument("--seed", type=int, default=0, help="first seed of the restarts")
    return p


def _run_earthquakes(argv: Sequence[str]) -> RunSummary:
    p = _parser("earthquakes")
    p.add_argument("--states", type=int, nargs="+", default=[1, 2, 3, 4],
                   help="numbers of states to compare")
    p.add_argument("--restarts", type=int, default=10, help="seeded EM restarts per model")
    a = p.parse_args(list(argv))
    if min(a.states) < 1:
        raise ValueError(f"--states must be positive integers, got {a.states}")
    if a.restarts < 1:
        raise ValueError(f"--restarts must be >= 1, got {a.restarts}")
    ds = load_earthquakes()
    X = ds["count"].values[:, None]
    t0 = time.perf_counter()
    models = {K: fit_poisson_restarts(X, K, n_restarts=2 if a.quick else a.restarts,
                                      random_state=a.seed) for K in sorted(set(a.states))}
    seconds = time.perf_counter() - t0
    rows, metrics = [], {}
    for K, m in models.items():
        ll, k = m.score(X), m.n_free_parameters()
        aic, bic = -2 * ll + 2 * k, -2 * ll + k * np.log(len(X))
        rows.append((K, ll, k, aic, bic))
        metrics[f"log_likelihood_{K}"] = float(ll)
        metrics[f"bic_{K}"] = float(bic)
    best_K = min(rows, key=lambda r: r[4])[0]
    best = models[best_K]
    metrics["best_n_states_bic"] = int(best_K)
    order = np.argsort(best.lambdas_[:, 0])
    unc = best.uncertainties(X)
    se = dict(zip(unc["slot"].values, unc["slot_stderr"].values))
    params = {f"lambda[{i}]": {"value": float(best.lambdas_[s, 0]),
                               "stderr": _finite(se.get(f"emissions.lambdas[{s},0]"))}
              for i, s in enumerate(order)}
    lines = ["Poisson HMMs of the annual counts of major earthquakes, 1900-2006",
             f"{'states':>6} {'logL':>12} {'k':>4} {'AIC':>10} {'BIC':>10}"]
    lines += [f"{K:>6d} {ll:>12.4f} {k:>4d} {aic:>10.3f} {bic:>10.3f}"
              for K, ll, k, aic, bic in rows]
    lines += ["(published: -341.8787 for 2 states, -328.5275 for 3 states)",
              f"BIC chooses {best_K} states; state rates (observed-information "
              "standard errors):"]
    lines += [f"    {k} = {v['value']:.4f} +/- {v['stderr']:.4f}" for k, v in params.items()]
    lines += ["", best.report(X)]
    result = best.to_xarray(X)
    result = result.assign_coords(year=("time", ds["year"].values))
    result.attrs["dataset"] = "earthquakes"

    def figure(path, _ds=ds, _m=best):
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        path_states = _m.predict(X)
        fig, ax = plt.subplots(figsize=(8, 3.2))
        ax.plot(_ds["year"], X[:, 0], "o-", ms=3, lw=0.8, label="count")
        ax.step(_ds["year"], _m.lambdas_[path_states, 0], where="mid", lw=2,
                label=f"Viterbi state mean ({_m.n_components} states)")
        ax.set_xlabel("year")
        ax.set_ylabel("major earthquakes")
        ax.legend(frameon=False)
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)

    return RunSummary(dataset="earthquakes", model=f"TiedPoissonHMM({best_K} states)",
                      seconds=seconds, metrics=metrics, parameters=params,
                      report="\n".join(lines), datasets={"earthquakes_hmm": result},
                      figures={"earthquakes_hmm": figure})


def _run_ion_channel(argv: Sequence[str]) -> RunSummary:
    p = _parser("ion-channel")
    p.add_argument("--n-samples", type=int, default=None,
                   help="length of the simulated record (default 200000, --quick 50000)")
    p.add_argument("--restarts", type=int, default=2, help="seeded EM restarts")
    p.add_argument("--n-iter", type=int, default=None, help="EM iterations per restart")
    a = p.parse_args(list(argv))
    n = a.n_samples or (50_000 if a.quick else 200_000)
    if n < 1000:
        raise ValueError(f"--n-samples must be at least 1000, got {n}")
    n_iter = a.n_iter or (150 if a.quick else 500)
    restarts = 1 if a.quick else max(1, a.restarts)
    ds = load_ion_channel(n_samples=n)
    X = ds["current"].values[:, None]
    truth = ion_channel_truth()
    t0 = time.perf_counter()
    tied = fit_linear_scheme(X, [3, 2], n_restarts=restarts, n_iter=n_iter, tol=1e-3,
                             random_state=a.seed)
    seconds = time.perf_counter() - t0
    two = fit_linear_scheme(X, [1, 1], n_iter=n_iter, tol=1e-3)
    ll, k = tied.score(X), tied.n_free_parameters()
    A, At = tied.transmat_, truth["transmat"]
    off = (At > 0) & ~np.eye(5, dtype=bool)
    rel = np.abs(A[off] / At[off] - 1)
    dt = truth["dt_ms"]
    metrics = {"log_likelihood": float(ll), "n_free_parameters": int(k),
               "bic": float(tied.bic(X)), "bic_two_state": float(two.bic(X)),
               "closed_level_pA": float(tied.means_[0, 0]),
               "open_level_pA": float(tied.means_[-1, 0]),
               "noise_sd_pA": float(np.sqrt(tied.covars_[0, 0, 0])),
               "max_rel_err_rates": float(rel.max()), "em_iterations": int(tied.monitor_.iter)}
    names = truth["states"]
    params = {"closed_level": {"value": metrics["closed_level_pA"], "stderr": None},
              "open_level": {"value": metrics["open_level_pA"], "stderr": None},
              "noise_sd": {"value": metrics["noise_sd_pA"], "stderr": None}}
    unc = tied.uncertainties(X)
    se = dict(zip(unc["slot"].values, unc["slot_stderr"].values))
    params["closed_level"]["stderr"] = _finite(se.get("emissions.means[0,0]"))
    params["open_level"]["stderr"] = _finite(se.get("emissions.means[3,0]"))
    for i, j in zip(*np.nonzero(off)):
        s_ij = _finite(se.get(f"transitions.transmat[{i},{j}]"))
        params[f"k_{names[i]}->{names[j]}_per_ms"] = {
            "value": float(A[i, j] / dt), "stderr": None if s_ij is None else s_ij / dt}
    lines = [f"Synthetic ion channel, {n} samples ({n * dt:.0f} ms), scheme "
             "C1-C2-C3-O4-O5 with tied closed/open levels",
             f"{'rate (1/ms)':<16}{'fitted':>10}{'stderr':>10}{'true':>10}"]
    for i, j in zip(*np.nonzero(off)):
        p_ij = params[f"k_{names[i]}->{names[j]}_per_ms"]
        s_txt = "n/a" if p_ij["stderr"] is None else f"{p_ij['stderr']:.4f}"
        lines.append(f"{names[i] + '->' + names[j]:<16}{A[i, j] / dt:>10.4f}"
                     f"{s_txt:>10}{At[i, j] / dt:>10.4f}")
    lines += [f"levels: closed {metrics['closed_level_pA']:.4f} pA (true 0), open "
              f"{metrics['open_level_pA']:.4f} pA (true 1); noise sd "
              f"{metrics['noise_sd_pA']:.4f} (true {truth['noise_sd']})",
              f"BIC tied 5-state {metrics['bic']:.1f} vs 2-state {metrics['bic_two_state']:.1f}",
              "", tied.report(X)]
    result = tied.to_xarray(X)
    result = result.assign_coords(time_ms=("time", ds["time"].values))
    result["true_state"] = ("time", ds["state"].values)
    result.attrs["dataset"] = "ion-channel"

    def figure(path, _X=X, _m=tied, _two=two):
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
        w = slice(0, min(3000, len(_X)))
        g = _m.state_to_group_[_m.predict(_X)]
        axes[0].plot(np.arange(len(_X))[w] * dt, _X[w, 0], lw=0.4, color="0.6")
        axes[0].step(np.arange(len(_X))[w] * dt, _m.means_[:, 0][np.where(g == 0, 0, 4)][w],
                     color="C3", lw=1)
        axes[0].set_xlabel("time (ms)")
        axes[0].set_ylabel("current (pA)")
        closed = dwell_times(g).get(0, np.array([]))
        closed2 = dwell_times(_two.predict(_X)).get(0, np.array([]))
        bins = np.logspace(0, np.log10(max(closed.max(initial=10), 10)) + 0.1, 30)
        axes[1].hist(closed, bins=bins, histtype="step", label="tied 5-state Viterbi")
        axes[1].hist(closed2, bins=bins, histtype="step", label="2-state Viterbi")
        axes[1].set_xscale("log")
        axes[1].set_xlabel("closed dwell (samples)")
        axes[1].set_ylabel("count")
        axes[1].legend(frameon=False)
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)

    return RunSummary(dataset="ion-channel", model="TiedGaussianHMM(C-C-C-O-O, tied levels)",
                      seconds=seconds, metrics=metrics, parameters=params,
                      report="\n".join(lines), datasets={"ion_channel_hmm": result},
                      figures={"ion_channel_hmm": figure})


def run(name: str, argv: Sequence[str]) -> RunSummary:
    """Fit one of the HMM datasets (called by ``scitie fit NAME``).

    Parameters
    ----------
    name : {"earthquakes", "ion-channel"}
        The dataset.
    argv : list of str
        Model options, e.g. ``["--quick"]`` or ``["--states", "2", "3"]``.

    Returns
    -------
    sciTie.core.RunSummary
        Metrics, parameters, report, xarray results and figures.
    """
    if name == "earthquakes":
        return _run_earthquakes(argv)
    if name == "ion-channel":
        return _run_ion_channel(argv)
    raise ValueError(f"sciTie.hmm.cli.run fits 'earthquakes' or 'ion-channel', not {name!r}")
