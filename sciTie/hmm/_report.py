"""Uncertainties, reports, xarray results and figures of a fitted tied HMM."""
from __future__ import annotations

import copy
from typing import Any

import numpy as np
import xarray as xr

from ..core import FitResult
from ..core.report import label_parameter_units
from ..core.statistics import covariance_from_information
from ..errors import ValidationError
from ..provenance import provenance
from . import _missing
from ._group import PROBABILITY_PARAMS, write_arrays

__all__ = ["ReportMixin"]



class ReportMixin:
    """Observed-information uncertainties, report, :meth:`to_xarray` and plots of a tied HMM."""

    # ------------------------------------------------------------------ gradient
    def _set_from_slots(self, slots) -> None:
        """Write a slot vector of ``group_`` into the model's arrays."""
        write_arrays(self, np.asarray(getattr(slots, "array", slots), dtype=float), self.group_)

    def _has_slot_gradient(self) -> bool:
        return (not self._is_mixture() and not self._has_covariates()
                and getattr(self, "covariance_type", "diag") in ("diag", "spherical"))

    def loglik_gradient(self, X, lengths=None) -> np.ndarray:
        """Gradient of the log-likelihood with respect to every slot of ``group_``.

        Fisher's identity: the score equals the posterior expectation of the complete-data
        score, so one forward-backward pass gives it. The group's ``reduce_jacobian`` (the
        chain rule through the tie matrix) turns it into the gradient with respect to the
        free parameters. Available for Poisson, categorical and diagonal/spherical Gaussian
        emissions.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
            Observations.
        lengths : array-like of int, optional
            Sequence lengths.

        Returns
        -------
        ndarray, shape (n_slots,)
            ``d log L / d slot``; zero for structural zeros.
        """
        from . import _forward_backward as fb

        self._require_fitted("loglik_gradient")
        self._require_parameters("loglik_gradient")
        if not self._has_slot_gradient():
            raise ValidationError("the analytic score is implemented for diagonal and "
                                  "spherical Gaussian, Poisson and categorical emissions")
        Xv, lengths = self._validate_X(X, lengths)
        pg = self.group_
        mask = self._missing_mask(Xv)
        Xs = None if hasattr(self, "emissionprob_") or mask is not None else np.asarray(
            Xv, dtype=float)
        est = fb.forward_backward_stats(self.startprob_, self.transmat_,
                                        self._emissions(Xv, lengths), lengths, Xs)
        post, xi, sums = est.posteriors, est.xi_sum, est.sums
        if mask is not None and not hasattr(self, "emissionprob_"):
            # per-feature occupancies and moments of the observed entries
            occ, s1, s2 = _missing.diagonal_moments(np.asarray(Xv, dtype=float), mask, post)
            sums = (occ, s1, s2)
        elif sums is not None:
            sums = (sums[0][:, None], sums[1], sums[2])
        grad = np.zeros(pg.n_slots)

        def put(name, values):
            grad[np.asarray(pg.slot_index(name)).ravel()] = np.ravel(values)

        def ratio(num, den):
            den = np.asarray(den, dtype=float)
            return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)

        put("startprob", ratio(est.start_sum, self.startprob_))
        put("transmat", ratio(xi, self.transmat_))
        if hasattr(self, "lambdas_"):
            occ, obs = sums[0], sums[1]
            put("lambdas", obs / self.lambdas_ - occ)
        elif hasattr(self, "emissionprob_"):
            counts = _missing.symbol_counts(Xv, post, np.shape(self.emissionprob_)[1])
            put("emissionprob", ratio(counts, self.emissionprob_))
        else:  # occ: (K, 1), or (K, D) per-feature occupancies with missing values
            occ, obs, obs2 = sums
            mu = np.asarray(self.means_, dtype=float)
            var = np.broadcast_to(np.asarray(self._covars_, dtype=float).reshape(
                self.n_components, -1), mu.shape)
            put("means", (obs - occ * mu) / var)
            sq = obs2 - 2 * mu * obs + occ * mu ** 2
            dvar = -occ / (2 * var) + sq / (2 * var ** 2)
            put("covars", dvar.sum(axis=1) if self.covariance_type == "spherical" else dvar)
        return grad

    # ------------------------------------------------------------------ uncertainties
    def uncertainties(self, X, lengths=None, *, known_states=None, covariates=None,
                      rel_step: float = 1e-4, boundary: float = 1e-6) -> FitResult:
        """Standard errors from the observed information (numerical Hessian of log L).

        The Hessian is taken with respect to the free parameters of ``group_``: central
        differences of the analytic score (:meth:`loglik_gradient`, reduced through the tie
        matrix) where it is available, of the log-likelihood otherwise; its inverse is the
        covariance of the free parameters, and ``G Σ Gᵀ`` gives every slot's standard error,
        so tied slots carry the uncertainty of what they are tied to. Probabilities within
        ``boundary`` of 0 or 1 (a start distribution estimated from one sequence) are on the
        boundary of the parameter space, where the information matrix does not apply: they
        are held fixed. An information matrix that is not positive definite (a collapsed or
        empty state) gives no standard errors and an
        :class:`~sciTie.errors.IdentifiabilityWarning` naming the parameters involved.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
            The data the model was fitted to.
        lengths : array-like of int, optional
            Sequence lengths.
        known_states : array-like of int, optional
            The known states the model was fitted with (the information is then that of the
            observations and the known states).
        covariates : array-like, shape (n_samples, n_covariates), optional
            The covariates the model was fitted with (required for such a model; the
            coefficients ``beta`` then get standard errors like every free parameter).
        rel_step : float, optional
            Relative finite-difference step.
        boundary : float, optional
            Distance from 0 or 1 below which a probability is held fixed.

        Returns
        -------
        sciTie.FitResult
            ``result_`` with the covariance (also stored as the new ``result_``).
        """
        with self._covariates_given(covariates), self._states_known(known_states):
            return self._observed_information(X, lengths, rel_step, boundary)

    def _observed_information(self, X, lengths, rel_step, boundary) -> FitResult:
        from .._validation import check_float

        self._require_fitted("uncertainties")
        try:
            check_float(rel_step, "rel_step", minimum=0.0, maximum=0.1, low_open=True,
                        high_open=True)
        except ValidationError:
            raise ValidationError(f"rel_step must lie in (0, 0.1), got {rel_step!r}") from None
        boundary = check_float(boundary, "boundary", minimum=0.0, maximum=0.5, high_open=True)
        Xv, lengths = self._validate_X(X, lengths)
        pg = self.group_.copy()
        at_edge = [n for n, v in zip(pg.free_names, pg.pack())
                   if n.split("[")[0] in PROBABILITY_PARAMS and (v < boundary or v > 1 - boundary)]
        if at_edge:
            pg.fix(*at_edge)
        x0 = pg.pack()
        n = x0.size
        work = copy.copy(self)
        work.group_ = pg

        def loglik(free):
            slots = pg.unpack(free)
            c = pg.tie_map()
            for name in PROBABILITY_PARAMS:
                if name in pg.parameters:
                    idx = np.asarray(c.select(name))
                    p = slots[idx]
                    if np.any(p < -1e-12) or np.any(p > 1 + 1e-12):
                        return np.nan
                    slots[idx] = np.clip(p, 0.0, 1.0)  # rounding of 1 - sum(others)
            write_arrays(work, slots, pg)
            return work.score(Xv, lengths)

        h = rel_step * np.maximum(np.abs(x0), 1e-3)
        f0 = loglik(x0)
        for i in range(n):  # shrink steps that leave the parameter space
            for _ in range(20):
                e = np.zeros(n)
                e[i] = h[i]
                if np.isfinite(loglik(x0 + e)) and np.isfinite(loglik(x0 - e)):
                    break
                h[i] /= 10
        H = np.empty((n, n))
        if self._has_slot_gradient():
            def grad_free(free):
                write_arrays(work, pg.unpack(free), pg)
                return pg.reduce_jacobian(work.loglik_gradient(Xv, lengths)[None, :], free)[0]

            for i in range(n):
                ei = np.zeros(n)
                ei[i] = h[i]
                H[:, i] = (grad_free(x0 + ei) - grad_free(x0 - ei)) / (2 * h[i])
            H = 0.5 * (H + H.T)
        else:
            for i in range(n):
                ei = np.zeros(n)
                ei[i] = h[i]
                H[i, i] = (loglik(x0 + ei) - 2 * f0 + loglik(x0 - ei)) / h[i] ** 2
                for j in range(i):
                    ej = np.zeros(n)
                    ej[j] = h[j]
                    H[i, j] = H[j, i] = (loglik(x0 + ei + ej) - loglik(x0 + ei - ej)
                                         - loglik(x0 - ei + ej) + loglik(x0 - ei - ej)
                                         ) / (4 * h[i] * h[j])
        reduced = covariance_from_information(-H, pg.free_names)
        full_names = self.group_.free_names
        cov = None
        if reduced is not None:
            # parameters held at a boundary keep their place with zero variance, so the
            # result still counts every free parameter (AIC/BIC) and names them
            cov = np.zeros((len(full_names), len(full_names)))
            idx = np.array([full_names.index(n) for n in pg.free_names], dtype=np.intp)
            cov[np.ix_(idx, idx)] = reduced
        method = ("observed information (central differences of the "
                  + ("analytic score)" if self._has_slot_gradient() else "log-likelihood)"))
        result = self.result_.with_covariance(
            cov, statistics={**self.result_.statistics, "uncertainty_method": method,
                             "held_at_boundary": ", ".join(at_edge) or "none"})
        self.result_ = result
        return result

    # ------------------------------------------------------------------ text report
    def report(self, *, min_correl: float = 0.1) -> str:
        """A readable summary: the ties, then the fit report of ``result_``.

        Parameters
        ----------
        min_correl : float, optional
            Correlations of the free parameters smaller than this (in magnitude) are not
            listed (the same default in every sciTie estimator).

        Returns
        -------
        str
        """
        self._require_fitted("report")
        plan = self._plan
        lines = [f"[[{type(self).__name__}]]",
                 f"    states             = {self.n_components}",
                 f"    emission groups    = {self.state_groups_}",
                 f"    ties               = {plan.statements or 'none'}",
                 f"    free parameters    = {self.n_free_parameters()}",
                 f"    EM iterations      = {self.monitor_.iter} "
                 f"({'converged' if self._em_converged() else 'not converged'})",
                 f"    M-step             = transitions {plan.transitions}, "
                 f"emissions {plan.emissions}"]
        return "\n".join(lines) + "\n" + self.result_.report(show_fixed=False,
                                                              min_correl=min_correl)

    # ------------------------------------------------------------------ xarray
    def _provenance(self) -> dict[str, Any]:
        import hmmlearn

        settings = {k: (v if not hasattr(v, "describe") else v.describe())
                    for k, v in self.get_params().items()}
        return provenance(model=type(self).__name__, settings=settings,
                          seed=self.random_state if not hasattr(self.random_state, "get_state")
                          else "RandomState instance",
                          extra={"hmmlearn_version": hmmlearn.__version__})

    def to_xarray(self, X=None, lengths=None, *, covariates=None, client=None) -> xr.Dataset:
        """Fitted parameters (``result_.to_xarray()``), plus the decoding of ``X`` if given.

        With ``X``: dimensions ``time``, ``state``, ``group`` (plus ``feature``/``symbol``):
        ``state_posterior``, ``group_posterior`` (probability of each tied group, i.e. of the
        observable level), ``viterbi_state``, ``viterbi_group``, ``sequence``, the
        observations. Always: ``startprob``, ``transmat``, ``state_group``, the emission
        arrays per state, and the parameter layout of :meth:`sciTie.FitResult.to_xarray`
        (values, standard errors, covariance, every slot), with provenance in ``attrs``.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features), optional
            Observations to decode; with ``client``, also a dask array or a list of
            ``.npy``/netCDF/zarr files read by the workers.
        lengths : array-like of int, optional
            Sequence lengths.
        covariates : array-like, shape (n_samples, n_covariates), optional
            The covariates of ``X``, for a model fitted with covariates.
        client : dask.distributed.Client, optional
            Decode on this Dask cluster: the per-time variables are then dask arrays whose
            blocks (whole sequences) are kept on the workers.

        Returns
        -------
        xarray.Dataset
        """
        with self._covariates_given(covariates):
            return self._to_xarray(X, lengths, client)

    def _to_xarray(self, X, lengths, client) -> xr.Dataset:
        self._require_fitted("to_xarray")
        K = self.n_components
        s2g = self.state_to_group_
        ds = xr.Dataset(coords={
            "state": ("state", np.arange(K), {"long_name": "hidden state", "units": "1"}),
            "group": ("group", np.arange(self.n_groups_),
                      {"long_name": "emission group (states sharing their emissions)",
                       "units": "1"}),
            "state_to": ("state_to", np.arange(K),
                         {"long_name": "hidden state at the next step", "units": "1"})})
        ds["state_group"] = ("state", s2g, {"long_name": "emission group of each state",
                                            "units": "1"})
        ds["startprob"] = ("state", np.asarray(self.startprob_),
                           {"long_name": "start probability", "units": "1"})
        ds["transmat"] = (("state", "state_to"), np.asarray(self.transmat_),
                          {"long_name": "transition probability per step", "units": "1"})
        dimensionless = {"startprob", "transmat"}
        for name, _, _ in self._emission_params():
            arr = self._get_param(name)
            dims = self._emission_dims(name, arr.ndim)
            attrs = {"long_name": f"emission {name} of each state"}
            if self._unit_powers.get(name) == 0:  # the data's unit is known to the recipe only
                attrs["units"] = "1"
                dimensionless.add(name)
            ds[name] = (dims, arr, attrs)
        index_names = {"feature": "observed feature", "feature_j": "observed feature (column)",
                       "mix": "mixture component", "symbol": "observed symbol"}
        for dim, long_name in index_names.items():
            if dim in ds.dims:
                ds = ds.assign_coords({dim: (dim, np.arange(ds.sizes[dim]),
                                             {"long_name": long_name, "units": "1"})})
        if X is None:
            decoding = xr.Dataset()
        elif client is not None:
            from . import _distributed
            decoding = _distributed.decoding(self, X, lengths, client=client)
        else:
            decoding = self._decoding(X, lengths)
        result = label_parameter_units(
            self.result_.to_xarray(),
            lambda slot: "1" if slot.split("[")[0] in dimensionless else None)
        out = xr.merge([ds, decoding, result], combine_attrs="drop_conflicts")
        out.attrs = {**result.attrs, **decoding.attrs}
        out.attrs.update({"ties": str(self._plan.statements),
                          "tied_states": str(self.state_groups_),
                          "tied_transitions": str(self.tied_transitions or []),
                          "n_free_parameters": int(self.n_free_parameters()),
                          "parameter_group": self.group_.describe()})
        return out

    def _emission_dims(self, name: str, ndim: int) -> tuple[str, ...]:
        if name == "emissionprob":
            return ("state", "symbol")
        if name == "lambdas":
            return ("state", "feature")
        if self._is_mixture():
            full = {"weights": ("state", "mix"), "means": ("state", "mix", "feature"),
                    "covars": {"diag": ("state", "mix", "feature"), "spherical": ("state", "mix"),
                               "full": ("state", "mix", "feature", "feature_j"),
                               "tied": ("state", "feature", "feature_j")}}[name]
            return full[self.covariance_type] if isinstance(full, dict) else full
        if name == "means":
            return ("state", "feature")
        return {"diag": ("state", "feature"), "spherical": ("state",),
                "full": ("state", "feature", "feature_j"),
                "tied": ("feature", "feature_j")}[self.covariance_type]

    def _decoding(self, X, lengths) -> xr.Dataset:
        Xv, lengths = self._validate_X(X, lengths)
        log_prob, post = self.score_samples(Xv, lengths)
        vit_ll, path = self.decode(Xv, lengths, algorithm="viterbi")
        s2g = self.state_to_group_
        arrays = {"X": Xv, "sequence": np.repeat(np.arange(len(lengths)), lengths),
                  "state_posterior": post, "group_posterior": post @ self._group_onehot(),
                  "viterbi_state": path, "viterbi_group": s2g[path]}
        return self._decoding_dataset(arrays, n_sequences=len(lengths), log_prob=log_prob,
                                      viterbi_log_prob=vit_ll)

    def _group_onehot(self) -> np.ndarray:
        """(state, group) indicator: posteriors times it give the group posteriors."""
        onehot = np.zeros((self.n_components, self.n_groups_))
        onehot[np.arange(self.n_components), self.state_to_group_] = 1.0
        return onehot

    def _decoding_dataset(self, arrays: dict, *, n_sequences: int, log_prob: float,
                          viterbi_log_prob: float) -> xr.Dataset:
        """The decoding part of :meth:`to_xarray` from per-time arrays (numpy or dask)."""
        Xv = arrays["X"]
        n = Xv.shape[0]
        ds = xr.Dataset(coords={"time": ("time", np.arange(n),
                                         {"long_name": "sample index", "units": "1"})})
        if hasattr(self, "emissionprob_"):
            ds["X"] = ("time", Xv[:, 0], {"long_name": "observed symbol", "units": "1"})
        else:  # the data's unit is known to the recipe (or the caller) only
            ds["X"] = (("time", "feature"), Xv.astype(float, copy=False),
                       {"long_name": "observations"})
        ds["sequence"] = ("time", arrays["sequence"],
                          {"long_name": "index of the sequence", "units": "1"})
        ds["state_posterior"] = (("time", "state"), arrays["state_posterior"],
                                 {"long_name": "P(state | all observations)", "units": "1"})
        ds["group_posterior"] = (("time", "group"), arrays["group_posterior"],
                                 {"long_name": "P(tied group | all observations)", "units": "1"})
        ds["viterbi_state"] = ("time", arrays["viterbi_state"],
                               {"long_name": "Viterbi state path", "units": "1"})
        ds["viterbi_group"] = ("time", arrays["viterbi_group"],
                               {"long_name": "group of the Viterbi state", "units": "1"})
        ds.attrs.update({"decoded_log_likelihood": float(log_prob),
                         "viterbi_log_prob": float(viterbi_log_prob), "n_samples": int(n),
                         "n_sequences": int(n_sequences)})
        return ds

    # ------------------------------------------------------------------ figures
    def _plot_result(self, result: FitResult, ax=None, **kwargs):
        """Default figure of ``result_``: the transition matrix and the emission levels."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(5.5, 4.5))
        A = np.asarray(self.transmat_)
        im = ax.imshow(A, vmin=0, vmax=1, cmap=kwargs.pop("cmap", "viridis"))
        ax.figure.colorbar(im, ax=ax, label="transition probability per step")
        ax.set_xlabel("to state")
        ax.set_ylabel("from state")
        K = self.n_components
        ax.set_xticks(range(K))
        ax.set_yticks(range(K))
        for i in range(K):
            for j in range(K):
                if A[i, j] > 0:
                    ax.text(j, i, f"{A[i, j]:.2g}", ha="center", va="center", fontsize=7,
                            color="w" if A[i, j] < 0.5 else "k")
        ax.set_title(f"{type(self).__name__}: {K} states, "
                     f"log L = {result.log_likelihood:.6g}")
        return ax

    def _state_level(self, feature: int = 0) -> np.ndarray:
        """The mean observation of each state (for drawing the decoded path)."""
        if hasattr(self, "lambdas_"):
            return np.asarray(self.lambdas_)[:, feature]
        if hasattr(self, "emissionprob_"):
            p = np.asarray(self.emissionprob_)
            return p @ np.arange(p.shape[1])
        if self._is_mixture():
            return (np.asarray(self.weights_)[:, :, None] * np.asarray(self.means_)).sum(1)[:, feature]
        return np.asarray(self.means_)[:, feature]

    def plot_dwell_times(self, X, lengths=None, *, ax=None, dt: float = 1.0,
                         time_unit: str = "samples", levels=None):
        """Dwell-time histograms per observed level, with the fitted dwell distribution.

        Parameters
        ----------
        X : array-like
            Observations to decode.
        lengths : array-like of int, optional
            Sequence lengths.
        ax : array of matplotlib Axes, optional
            One per level.
        dt : float, optional
            Time per sample (dwell times are drawn in ``dt`` units).
        time_unit : str, optional
            Label of the time unit.
        levels : sequence of int, optional
            Which emission groups (default: all that occur).

        Returns
        -------
        array of matplotlib Axes
        """
        from ._plots import plot_dwell_times

        self._require_fitted("plot_dwell_times")
        return plot_dwell_times(self, X, lengths, ax=ax, dt=dt, time_unit=time_unit,
                                levels=levels)

    def plot(self, X=None, lengths=None, *, ax=None, time=None, time_unit: str = "samples",
             max_points: int = 5000, **kwargs):
        """Figure of the fit: the decoded record of ``X``, or the transition matrix.

        With ``X`` (one feature shown): the observations in physical time (``time`` values,
        ``time_unit`` label), the Viterbi path drawn at the level of each state, and the
        state posteriors underneath. Without ``X``: :meth:`sciTie.FitResult.plot`.

        Parameters
        ----------
        X : array-like, optional
            Observations to decode and draw.
        lengths : array-like of int, optional
            Sequence lengths.
        ax : matplotlib Axes or array of two Axes, optional
            Where to draw.
        time : array-like, optional
            Time of each sample (default: the sample index).
        time_unit : str, optional
            Label of the time axis.
        max_points : int, optional
            Draw at most this many samples (the first ones).

        Returns
        -------
        matplotlib Axes (or array of Axes)
        """
        from ._plots import plot_decoded

        self._require_fitted("plot")
        if X is None:
            return self.result_.plot(ax=ax, **kwargs)
        return plot_decoded(self, X, lengths, ax=ax, time=time, time_unit=time_unit,
                            max_points=max_points)
