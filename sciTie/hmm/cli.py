"""``scitie fit earthquakes`` and ``scitie fit ion-channel``."""
from __future__ import annotations

import argparse
import time
from typing import Sequence

import numpy as np

from sciTie.core import RunSummary

from ._fitting import fit_linear_scheme, fit_poisson_restarts
from .data import ion_channel_truth, load_earthquakes, load_ion_channel

__all__ = ["run"]


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
    # one labelling everywhere (report, JSON, netCDF, figure): states by increasing rate
    best.permute_states(np.argsort(best.lambdas_[:, 0]))
    unc = best.uncertainties(X)
    params = unc.parameters(include_fixed=False)
    lines = ["Poisson HMMs of the annual counts of major earthquakes, 1900-2006",
             f"{'states':>6} {'logL':>12} {'k':>4} {'AIC':>10} {'BIC':>10}"]
    lines += [f"{K:>6d} {ll:>12.4f} {k:>4d} {aic:>10.3f} {bic:>10.3f}"
              for K, ll, k, aic, bic in rows]
    lines += ["(published: -341.8787 for 2 states, -328.5275 for 3 states)",
              f"BIC chooses {best_K} states; state rates (observed-information "
              "standard errors):"]
    lines += [f"    {k} = {v['value']:.4f} +/- {v['stderr']:.4f}" for k, v in params.items()
              if k.startswith("lambdas")]
    lines += ["", best.report()]
    result = best.to_xarray(X)
    result = result.assign_coords(year=("time", ds["year"].values))
    result.attrs["dataset"] = "earthquakes"

    def figure(path, _ds=ds, _m=best):
        import matplotlib.pyplot as plt

        axes = _m.plot(X, time=_ds["year"].values, time_unit="year")
        axes[0].set_ylabel("major earthquakes per year")
        fig = axes[0].figure
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
    params["closed_level"]["stderr"] = _finite(unc.error("means[0,0]"))
    params["open_level"]["stderr"] = _finite(unc.error("means[3,0]"))
    for i, j in zip(*np.nonzero(off)):
        s_ij = _finite(unc.error(f"transmat[{i},{j}]"))
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
              "", tied.report()]
    result = tied.to_xarray(X)
    result = result.assign_coords(time_ms=("time", ds["time"].values))
    result["true_state"] = ("time", ds["state"].values)
    result.attrs["dataset"] = "ion-channel"

    def figure(path, _X=X, _m=tied):
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=(11, 6.5))
        grid = fig.add_gridspec(3, 2, height_ratios=[2, 1, 2])
        top = [fig.add_subplot(grid[0, :]), fig.add_subplot(grid[1, :])]
        top[1].sharex(top[0])
        _m.plot(_X, ax=np.array(top), time=np.arange(len(_X)) * dt, time_unit="ms",
                max_points=3000)
        top[0].set_ylabel("current (pA)")
        bottom = [fig.add_subplot(grid[2, 0]), fig.add_subplot(grid[2, 1])]
        _m.plot_dwell_times(_X, ax=np.array(bottom), dt=dt, time_unit="ms")
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
