"""Markov-switching autoregression: Gaussian emissions whose mean follows the past.

In state ``k`` the observation ``y_t`` (each feature ``d`` on its own) is Gaussian with mean
``c_kd + Σ_i φ_kid y_{t-i,d}`` and variance ``σ²_kd``: Hamilton's Markov-switching
autoregression. The likelihood is conditional on the first ``order`` observations of every
sequence (they carry no emission term), as in Hamilton (1989) and statsmodels'
``MarkovAutoregression``.

The whole family lives here: an untied hmmlearn model (:class:`ARHMM`: hmmlearn's hooks,
closed-form M-step by weighted least squares) and its tied version (:class:`TiedARHMM`), whose
M-step under any tie maximises the expected complete-data log-likelihood in the model's slots
(``intercepts``, ``coefs``, ``covars``) through the tie map. Ties are ordinary statements:
``"coefs[1] = coefs[0]"`` (one autoregression for every state), ``"intercepts[0] = 0"``.
"""
from __future__ import annotations

import numpy as np
from hmmlearn.base import BaseHMM
from sklearn import cluster
from sklearn.utils import check_random_state

from .._validation import check_float, check_int
from ..errors import ValidationError
from ._base import TiedHMMMixin, shares_tie_docs
from ._sequences import check_lengths
from ._objectives import _FAIL, _Accumulator
from ._report import ReportMixin

__all__ = ["ARHMM", "TiedARHMM", "lag_design"]

_LOG_2PI = np.log(2 * np.pi)


def lag_design(X: np.ndarray, lengths: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Regressors of every row: ``Z[t, d] = (1, y_{t-1,d}, ..., y_{t-order,d})``.

    Parameters
    ----------
    X : ndarray, shape (n_samples, n_features)
    lengths : ndarray of int
        Sequence lengths (lags never cross from one sequence into the next).
    order : int
        Number of lags.

    Returns
    -------
    Z : ndarray, shape (n_samples, n_features, order + 1)
        Zero on the rows without ``order`` predecessors.
    conditioned : ndarray of bool, shape (n_samples,)
        Rows with ``order`` predecessors in their sequence (the others have no emission term).
    """
    n, D = X.shape
    Z = np.zeros((n, D, order + 1))
    conditioned = np.zeros(n, dtype=bool)
    start = 0
    for length in lengths:
        stop = start + int(length)
        if length > order:
            rows = np.arange(start + order, stop)
            conditioned[rows] = True
            Z[rows, :, 0] = 1.0
            for i in range(1, order + 1):
                Z[rows, :, i] = X[rows - i]
        start = stop
    return Z, conditioned


class ARHMM(BaseHMM):
    """Hidden Markov model with autoregressive Gaussian emissions (no ties).

    An hmmlearn model in hmmlearn's terms (``params`` letters ``s``, ``t``, ``m``
    intercepts, ``a`` autoregressive coefficients, ``c`` variances); :class:`TiedARHMM` is the
    class to fit, this one holds the family's arrays, statistics and closed-form M-step.

    Parameters
    ----------
    n_components : int
        Number of states.
    order : int
        Number of lags ``p``.
    min_covar : float
        Floor on the variances of the start.
    startprob_prior, transmat_prior : float or array
        Dirichlet priors of the start and transition probabilities.
    algorithm, random_state, n_iter, tol, verbose, params, init_params, implementation
        As in :class:`hmmlearn.hmm.GaussianHMM`.
    """

    def __init__(self, n_components=1, order=1, min_covar=1e-3, startprob_prior=1.0,
                 transmat_prior=1.0, algorithm="viterbi", random_state=None, n_iter=10,
                 tol=1e-2, verbose=False, params="stmac", init_params="stmac",
                 implementation="log"):
        super().__init__(n_components, startprob_prior=startprob_prior,
                         transmat_prior=transmat_prior, algorithm=algorithm,
                         random_state=random_state, n_iter=n_iter, tol=tol, verbose=verbose,
                         params=params, init_params=init_params,
                         implementation=implementation)
        self.order = order
        self.min_covar = min_covar

    # -- hmmlearn's hooks -------------------------------------------------------------------
    def _get_n_fit_scalars_per_param(self):
        K, D, p = self.n_components, self.n_features, self.order
        return {"s": K - 1, "t": K * (K - 1), "m": K * D, "a": K * p * D, "c": K * D}

    def _check(self):
        super()._check()
        K, p = self.n_components, self.order
        D = np.shape(self.intercepts_)[-1]
        for name, shape in (("intercepts_", (K, D)), ("coefs_", (K, p, D)), ("covars_", (K, D))):
            arr = np.asarray(getattr(self, name), dtype=float)
            if arr.shape != shape or not np.all(np.isfinite(arr)):
                raise ValueError(f"{name} must be finite with shape {shape}, got "
                                 f"{np.array2string(arr, precision=4)}")
        if np.any(np.asarray(self.covars_) <= 0):
            raise ValueError("covars_ must be positive")

    def _init(self, X, lengths=None):
        super()._init(X, lengths)
        lengths = check_lengths(lengths, len(X))
        K, p = self.n_components, self.order
        Z, cond = lag_design(np.asarray(X, dtype=float), lengths, p)
        rs = check_random_state(self.random_state)
        labels = cluster.KMeans(n_clusters=K, random_state=rs, n_init=10).fit(
            X[cond]).labels_ if cond.sum() >= K else np.arange(cond.sum()) % K
        post = np.zeros((len(X), K))
        post[np.flatnonzero(cond), labels] = 1.0
        stats = _zero_sums(K, X.shape[1], p)
        _accumulate(stats, np.asarray(X, dtype=float), Z, cond, post)
        beta, var = _least_squares(stats, self.min_covar)
        D = X.shape[1]
        if self._needs_init("m", "intercepts_"):
            self.intercepts_ = beta[:, :, 0]
        if self._needs_init("a", "coefs_"):
            self.coefs_ = np.transpose(beta[:, :, 1:], (0, 2, 1)).reshape(K, p, D)
        if self._needs_init("c", "covars_"):
            self.covars_ = var + self.min_covar

    def _compute_log_likelihood(self, X):
        """One sequence (hmmlearn's contract): its first ``order`` rows carry no term."""
        X = np.asarray(X, dtype=float)
        return self._log_likelihood_rows(X, np.array([len(X)], dtype=np.int64))

    def _design(self, X, lengths):
        """``lag_design`` of ``X``, built once while a fit passes the same array: the
        E-step's densities and its statistics both read it. The fit's scratch
        ``_workspace`` holds the array itself, so identity cannot be a reused address."""
        work = getattr(self, "_workspace", None)
        lengths = np.asarray(lengths)
        if work is None:
            return lag_design(X, lengths, self.order)
        hit = work.get("ar_X") is X and np.array_equal(work.get("ar_lengths"), lengths)
        if not hit:
            work["ar_X"], work["ar_lengths"] = X, lengths.copy()
            work["ar_design"] = lag_design(X, lengths, self.order)
        return work["ar_design"]

    def _log_likelihood_rows(self, X, lengths):
        Z, cond = self._design(X, lengths)
        beta = self._beta()
        mean = np.einsum("tdi,kdi->tkd", Z, beta)
        var = np.asarray(self.covars_, dtype=float)
        resid = X[:, None, :] - mean
        out = -0.5 * np.sum(_LOG_2PI + np.log(var)[None] + resid ** 2 / var[None], axis=2)
        out[~cond] = 0.0
        return out

    def _beta(self) -> np.ndarray:
        """(K, D, order + 1): intercept then the lag coefficients of each state and feature."""
        c = np.asarray(self.intercepts_, dtype=float)
        a = np.asarray(self.coefs_, dtype=float)
        return np.concatenate([c[:, :, None], np.transpose(a, (0, 2, 1))], axis=2)

    def _initialize_sufficient_statistics(self):
        stats = super()._initialize_sufficient_statistics()
        stats.update(_zero_sums(self.n_components, self.n_features, self.order))
        return stats

    def _accumulate_sufficient_statistics(self, stats, X, lattice, posteriors, fwdlattice,
                                          bwdlattice):
        """hmmlearn's per-sequence hook: the regression sums of one sequence."""
        super()._accumulate_sufficient_statistics(stats, X, lattice, posteriors, fwdlattice,
                                                  bwdlattice)
        X = np.asarray(X, dtype=float)
        Z, cond = lag_design(X, np.array([len(X)]), self.order)
        _accumulate(stats, X, Z, cond, posteriors)

    def _do_mstep(self, stats):
        super()._do_mstep(stats)
        if not set("mac") & set(self.params):
            return
        beta, var = _least_squares(stats, 0.0)
        K, D, p = beta.shape[0], beta.shape[1], self.order
        if "m" in self.params:
            self.intercepts_ = beta[:, :, 0]
        if "a" in self.params:
            self.coefs_ = np.transpose(beta[:, :, 1:], (0, 2, 1)).reshape(K, p, D)
        if "c" in self.params:
            # the residual sum at the updated coefficients (at the kept ones if not updated)
            self.covars_ = _residual_variance(stats, self._beta())

    def _generate_sample_from_state(self, state, random_state):  # pragma: no cover
        raise ValidationError("an autoregressive emission depends on earlier observations; "
                              "use sample(), which draws whole sequences")

    def sample(self, n_samples=1, random_state=None, currstate=None):
        """A state path and observations; the first ``order`` values are the first state's
        level ``c / (1 - Σφ)`` (its intercept when that is not finite)."""
        n_samples = check_int(n_samples, "n_samples", minimum=1)
        rs = check_random_state(self.random_state if random_state is None else random_state)
        K, p = self.n_components, self.order
        beta, sd = self._beta(), np.sqrt(np.asarray(self.covars_, dtype=float))
        D = beta.shape[1]
        state = rs.choice(K, p=self.startprob_) if currstate is None else int(currstate)
        states = np.empty(n_samples, dtype=np.int64)
        X = np.empty((n_samples, D))
        for t in range(n_samples):
            if t:
                state = rs.choice(K, p=self.transmat_[state])
            states[t] = state
            if t < p:
                denom = 1 - beta[state, :, 1:].sum(axis=1)
                level = np.where(np.abs(denom) > 1e-8, beta[state, :, 0] / np.where(
                    np.abs(denom) > 1e-8, denom, 1.0), beta[state, :, 0])
                X[t] = level + sd[state] * rs.standard_normal(D)
                continue
            lags = X[t - np.arange(1, p + 1)]          # (p, D)
            mean = beta[state, :, 0] + np.einsum("di,id->d", beta[state, :, 1:], lags)
            X[t] = mean + sd[state] * rs.standard_normal(D)
        return X, states


def _zero_sums(K: int, D: int, order: int) -> dict:
    m = order + 1
    return {"post": np.zeros(K), "zz": np.zeros((K, D, m, m)), "zy": np.zeros((K, D, m)),
            "yy": np.zeros((K, D))}


def _accumulate(stats: dict, X: np.ndarray, Z: np.ndarray, cond: np.ndarray,
                post: np.ndarray) -> None:
    """Add one batch's weighted regression sums (conditioned rows only)."""
    w = post[cond]
    Zc, Yc = Z[cond], X[cond]
    stats["post"] += w.sum(axis=0)
    stats["zz"] += np.einsum("tk,tdi,tdj->kdij", w, Zc, Zc)
    stats["zy"] += np.einsum("tk,tdi,td->kdi", w, Zc, Yc)
    stats["yy"] += np.einsum("tk,td->kd", w, Yc ** 2)


def _least_squares(stats: dict, floor: float) -> tuple[np.ndarray, np.ndarray]:
    """Weighted least squares of every state and feature: coefficients and residual
    variances (a state without weight keeps zeros and the floor)."""
    A, b = np.asarray(stats["zz"], dtype=float), np.asarray(stats["zy"], dtype=float)
    K, D, m = b.shape
    beta = np.zeros((K, D, m))
    for k in range(K):
        for d in range(D):
            if stats["post"][k] > 0:
                beta[k, d] = np.linalg.lstsq(A[k, d], b[k, d], rcond=None)[0]
    return beta, np.maximum(_residual_variance(stats, beta), floor)


def _residual_variance(stats: dict, beta: np.ndarray) -> np.ndarray:
    A, b, yy = stats["zz"], stats["zy"], stats["yy"]
    R = yy - 2 * np.einsum("kdi,kdi->kd", beta, b) + np.einsum("kdi,kdij,kdj->kd", beta, A, beta)
    N = np.asarray(stats["post"], dtype=float)[:, None]
    return np.where(N > 0, R / np.where(N > 0, N, 1.0), np.nan)


def ar_objective(beta_idx: np.ndarray, var_idx: np.ndarray, stats: dict, n_slots: int):
    """Expected complete-data log-likelihood of the emissions, in slots (no priors).

    Per state k and feature d, with ``β`` the intercept and coefficients, ``A = Σ γ z zᵀ``,
    ``b = Σ γ z y``, ``S = Σ γ y²``, ``N = Σ γ``::

        F = -N/2 log v - R / (2 v),    R = S - 2 βᵀb + βᵀAβ

    whose maximiser is the weighted least-squares update.
    """
    A, b, S = stats["zz"], stats["zy"], stats["yy"]
    N = np.asarray(stats["post"], dtype=float)[:, None]
    K, D, m = b.shape

    def objective(slots: np.ndarray):
        beta, v = slots[beta_idx], slots[var_idx]
        if np.any(v <= 0):
            return _FAIL
        Ab = np.einsum("kdij,kdj->kdi", A, beta)
        R = S - 2 * np.einsum("kdi,kdi->kd", beta, b) + np.einsum("kdi,kdi->kd", beta, Ab)
        value = float(np.sum(-0.5 * N * np.log(v) - R / (2 * v)))
        acc = _Accumulator(n_slots)
        gb = (b - Ab) / v[..., None]
        acc.add_grad(beta_idx, gb)
        acc.add_grad(var_idx, -N / (2 * v) + R / (2 * v ** 2))
        acc.add_hess(beta_idx[..., :, None], beta_idx[..., None, :], -A / v[..., None, None])
        acc.add_hess(beta_idx, np.broadcast_to(var_idx[..., None], beta_idx.shape),
                     -gb / v[..., None], symmetric=True)
        acc.add_hess(var_idx, var_idx, N / (2 * v ** 2) - R / v ** 3)
        return acc.result(value)

    return objective


@shares_tie_docs
class TiedARHMM(ReportMixin, TiedHMMMixin, ARHMM):
    """Markov-switching autoregression whose parameters can be tied.

    The emission parameters are ``intercepts`` (K, D), ``coefs`` (K, order, D) and
    ``covars`` (K, D). The likelihood is conditional on the first ``order`` observations of
    each sequence.

    Parameters
    ----------
    n_components, order, min_covar, startprob_prior, transmat_prior, algorithm, random_state, \
n_iter, tol, verbose, params, init_params, implementation
        As in :class:`ARHMM` (``params`` letters ``s``, ``t``, ``m`` intercepts, ``a``
        coefficients, ``c`` variances).
    %(tie_parameters)s

    Examples
    --------
    One autoregressive coefficient shared by two regimes that differ in level and spread
    (Hamilton's model of a switching mean with common dynamics)::

        TiedARHMM(2, order=1, ties=["coefs[1] = coefs[0]"]).fit(X, lengths)
    """

    family = "autoregressive"
    _unit_powers = {"intercepts": 1, "coefs": 0, "covars": 2}
    _emission_letters = "mac"
    _emission_stats = ("post", "zz", "zy", "yy")
    #: variances are per state and feature (the group's bounds and ties read this)
    covariance_type = "diag"

    def __init__(self, n_components=1, order=1, min_covar=1e-3, startprob_prior=1.0,
                 transmat_prior=1.0, algorithm="viterbi", random_state=None, n_iter=10,
                 tol=1e-2, verbose=False, params="stmac", init_params="stmac",
                 implementation="log", *, ties=None, tied_states=None, tied_transitions=None,
                 n_init="auto", start_distribution="free"):
        super().__init__(n_components, order=order, min_covar=min_covar,
                         startprob_prior=startprob_prior, transmat_prior=transmat_prior,
                         algorithm=algorithm, random_state=random_state, n_iter=n_iter,
                         tol=tol, verbose=verbose, params=params, init_params=init_params,
                         implementation=implementation)
        self._store_tie_arguments(ties, tied_states, tied_transitions, n_init,
                                  start_distribution)

    # -- the family's declarations ------------------------------------------------------------
    def _placeholder_emissions(self, n_features: int) -> None:
        K, p = self.n_components, self.order
        self.intercepts_ = np.arange(K * n_features, dtype=float).reshape(K, n_features)
        self.coefs_ = np.zeros((K, p, n_features))
        self.covars_ = np.ones((K, n_features))

    def _emission_params(self):
        return [("intercepts", "m", "intercepts_"), ("coefs", "a", "coefs_"),
                ("covars", "c", "covars_")]

    def _n_features_of_fit(self):
        c = getattr(self, "intercepts_", None)
        return None if c is None else int(np.shape(c)[1])

    def _validate_family_settings(self):
        check_int(self.order, "order", minimum=1)
        check_float(self.min_covar, "min_covar", minimum=0.0)

    def _validate_family_X(self, X):
        return np.asarray(X, dtype=np.float64)

    def _missing_refusal(self):
        return (f": a missing y_t is also a lag of the next {self.order} rows, whose "
                "likelihood would then need integrating over it under every state path; "
                "impute X, or split the sequence at the gap (lengths)")

    def _check_emissions(self):
        try:
            ARHMM._check(self)
        except ValueError as exc:
            raise ValidationError(f"{type(self).__name__}: {exc}") from None

    def _frame_log_likelihood(self, X, lengths):
        return self._log_likelihood_rows(np.asarray(X, dtype=float), lengths)

    def _accumulate_emission_statistics(self, stats, X, post, sums=None, lengths=None):
        if set("mac") & set(self.params):
            X = np.asarray(X, dtype=float)
            Z, cond = self._design(X, check_lengths(lengths, len(X)))
            _accumulate(stats, X, Z, cond, post)

    def _emission_objective(self, stats, idx, n_slots):
        K, p = self.n_components, self.order
        c_idx = np.asarray(idx["intercepts"])                    # (K, D)
        a_idx = np.asarray(idx["coefs"])                         # (K, p, D)
        beta_idx = np.concatenate([c_idx[:, :, None], np.transpose(a_idx, (0, 2, 1))], axis=2)
        return ar_objective(beta_idx, np.asarray(idx["covars"]), stats, n_slots)

    def _has_slot_gradient(self) -> bool:
        return not self._has_covariates()

    def loglik_gradient(self, X, lengths=None) -> np.ndarray:
        """Gradient of the log-likelihood with respect to every slot of ``group_`` (Fisher's
        identity: the gradient of the expected complete-data log-likelihood at the current
        parameters, from one E-step)."""
        from ._objectives import probability_objective

        self._require_fitted("loglik_gradient")
        self._require_parameters("loglik_gradient")
        Xv, lengths = self._validate_X(X, lengths)
        saved = self.params
        try:
            self.params = "stmac"
            stats, _ = self._do_estep(Xv, lengths)
        finally:
            self.params = saved
        tm = self.group_.tie_map()
        slots = tm.evaluate(self.group_.pack())
        idx = {name: np.asarray(tm.select(name)) for name, _, _ in self._emission_params()}
        _, g_em, _ = self._emission_objective(stats, idx, tm.n_slots)(slots)
        _, g_tr, _ = probability_objective(
            [(np.asarray(tm.select("startprob")), stats["start"]),
             (np.asarray(tm.select("transmat")), stats["trans"])], tm.n_slots)(slots)
        return g_em + g_tr

    def _emission_dims(self, name, ndim):
        return {"intercepts": ("state", "feature"), "coefs": ("state", "lag", "feature"),
                "covars": ("state", "feature")}[name]

    def _state_level(self, feature: int = 0) -> np.ndarray:
        """Each state's long-run level ``c / (1 - Σφ)`` (its intercept if not stationary)."""
        beta = self._beta()[:, feature]
        denom = 1 - beta[:, 1:].sum(axis=1)
        ok = np.abs(denom) > 1e-8
        return np.where(ok, beta[:, 0] / np.where(ok, denom, 1.0), beta[:, 0])
