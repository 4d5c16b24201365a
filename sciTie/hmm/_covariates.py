"""Covariate-dependent transitions (an input-output HMM) for the tied HMM classes.

With ``covariates`` ``c_t`` (one row per sample) the transition into time t is a multinomial
logit::

    P(z_t = j | z_{t-1} = i) = exp(β[i, j] · u_t) / Σ_k exp(β[i, k] · u_t),   u_t = [1, c_t]

with the self-transition as each row's reference (``β[i, i, :] = 0``, fixed). ``β`` is the
parameter ``beta`` (shape ``(K, K, 1 + n_covariates)``) of the model's group, so ties between
coefficients are ordinary statements; ``transmat`` becomes the function ``softmax(β[:, :,
0])`` of it (the transition matrix at ``c = 0``). The E-step is a forward-backward over the
per-time matrices ``A_t`` in log space (no underflow, whatever the covariates); the M-step
maximises ``Σ_t Σ_ij ξ_t(i, j) log A_t(i, j; β)`` through the tie map with the analytic
gradient and Hessian of the logit.
"""
from __future__ import annotations

import contextlib

import numpy as np
from numba import njit

from ..errors import ArgumentTypeError, ValidationError
from ._objectives import _Accumulator, probability_objective, sum_objectives
from ._sequences import check_sample_matrix

__all__ = ["check_covariates", "log_transition_matrices", "forward_backward_tv",
           "viterbi_tv", "logit_statistics", "logit_objective", "PER_ROW_STATISTICS",
           "intercept_softmax", "intercept_softmax_jacobian", "CovariateTransitionsMixin"]

#: E-step statistics with one row per sample (not sums over sequences): a distributed E-step
#: returns them per partition and they are put together in row order, not added.
PER_ROW_STATISTICS = ("departures",)


# ---------------------------------------------------------------------- input
def check_covariates(covariates, n_samples: int, n_covariates: int | None = None) -> np.ndarray:
    """``covariates`` as a finite float64 array (n_samples, n_covariates), or a clear error."""
    arr = check_sample_matrix(covariates, "covariates", "n_covariates")
    if arr.dtype == np.bool_:
        raise ArgumentTypeError("covariates must hold real numbers, got booleans; convert "
                                "them with covariates.astype(float)")
    if arr.shape[1] == 0:
        raise ValidationError("covariates has no columns; give at least one covariate or "
                              "leave covariates=None")
    if arr.shape[0] != n_samples:
        raise ValidationError(f"covariates has {arr.shape[0]} rows but X has {n_samples}; give "
                              "one row of covariates per sample")
    if n_covariates is not None and arr.shape[1] != n_covariates:
        raise ValidationError(f"covariates has {arr.shape[1]} columns but this model was fitted "
                              f"with {n_covariates} (n_covariates_={n_covariates})")
    arr = arr.astype(np.float64)
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ValidationError(f"covariates contains NaN or inf in rows "
                              f"{', '.join(map(str, rows[:5]))}{' ...' if rows.size > 5 else ''}"
                              "; the transition model needs finite covariates at every row")
    return np.ascontiguousarray(arr)


def design(covariates: np.ndarray) -> np.ndarray:
    """``u_t = [1, c_t]`` for every row, shape (n_samples, 1 + n_covariates)."""
    return np.hstack([np.ones((covariates.shape[0], 1)), covariates])


# ---------------------------------------------------------------------- the logit
def log_transition_matrices(beta: np.ndarray, covariates: np.ndarray) -> np.ndarray:
    """``log A_t`` of every row, shape (n_samples, K, K) (row t: the transition into t)."""
    beta = np.ascontiguousarray(beta, dtype=np.float64)
    out = np.empty((covariates.shape[0], beta.shape[0], beta.shape[1]))
    _log_softmax_rows(beta, np.ascontiguousarray(covariates, dtype=np.float64), out)
    return out


@njit(cache=True)
def _log_softmax_rows(beta, covariates, out):
    T, C = covariates.shape
    K = beta.shape[0]
    eta = np.empty(K)
    for t in range(T):
        for i in range(K):
            for j in range(K):
                v = beta[i, j, 0]
                for p in range(C):
                    v += beta[i, j, p + 1] * covariates[t, p]
                eta[j] = v
            norm = _lse(eta)
            for j in range(K):
                out[t, i, j] = eta[j] - norm


def intercept_softmax(x: np.ndarray) -> np.ndarray:
    """``transmat = softmax(β[:, :, 0])`` row by row, from the flattened ``β``."""
    beta = _beta_of(x)
    eta = beta[:, :, 0]
    p = np.exp(eta - eta.max(axis=1, keepdims=True))
    return (p / p.sum(axis=1, keepdims=True)).ravel()


def intercept_softmax_jacobian(x: np.ndarray) -> np.ndarray:
    """``d transmat[i, j] / d β[i, k, 0] = A_ij (δ_jk - A_ik)``, shape (K*K, K*K*P)."""
    beta = _beta_of(x)
    K, _, P = beta.shape
    A = intercept_softmax(x).reshape(K, K)
    J = np.zeros((K, K, K, K, P))
    for i in range(K):
        J[i, :, i, :, 0] = np.diag(A[i]) - np.outer(A[i], A[i])
    return J.reshape(K * K, K * K * P)


def _beta_of(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=float).ravel()
    # K*K*P entries with P >= 2: K is the largest integer whose square divides the size
    for K in range(int(np.sqrt(x.size)), 0, -1):
        if x.size % (K * K) == 0:
            return x.reshape(K, K, x.size // (K * K))
    raise ValidationError(f"beta has {x.size} entries, not K*K*P")  # pragma: no cover


def initial_beta(transmat: np.ndarray, n_covariates: int) -> np.ndarray:
    """Coefficients that give ``transmat`` at every covariate value: intercepts
    ``log(A_ij / A_ii)``, slopes 0 (a zero probability becomes a very small one)."""
    A = np.maximum(np.asarray(transmat, dtype=float), 1e-12)
    K = A.shape[0]
    beta = np.zeros((K, K, 1 + n_covariates))
    beta[:, :, 0] = np.log(A) - np.log(np.diag(A))[:, None]
    beta[np.arange(K), np.arange(K), :] = 0.0
    return beta


def logit_statistics(xi: np.ndarray, covariates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What the logit's M-step needs of the E-step's ``ξ`` (T, K, K): the sums
    ``Σ_t ξ_t(i, j) u_t`` (K, K, P; additive over sequences) and the expected departures
    ``Σ_j ξ_t(i, j)`` of every row (T, K; per row, as the logit's normaliser is)."""
    return np.einsum("tij,tp->ijp", xi, design(covariates)), xi.sum(axis=2)


def logit_objective(beta_idx: np.ndarray, xi_u: np.ndarray, departures: np.ndarray,
                    covariates: np.ndarray, n_slots: int):
    """``Q(β) = Σ_t Σ_ij ξ_t(i, j) log A_t(i, j; β)`` over the slots ``beta_idx``
    (shape (K, K, P)), with its analytic gradient and Hessian.

    ``Q = Σ_ij β_ij · xi_u[i, j] - Σ_t Σ_i n_t(i) log Σ_k exp(β_ik · u_t)``, so ``ξ``
    enters only through ``xi_u`` and the departures ``n`` (:func:`logit_statistics`).
    """
    U = design(covariates)
    beta_idx = np.asarray(beta_idx)
    K, _, P = beta_idx.shape
    live = departures.sum(axis=1) > 0                     # rows that start a sequence give 0
    U, n_from = U[live], departures[live]

    def objective(slots):
        beta = slots[beta_idx]
        eta = np.einsum("ijp,tp->tij", beta, U)
        top = eta.max(axis=2, keepdims=True)
        lse = top[:, :, 0] + np.log(np.exp(eta - top).sum(axis=2))      # (T, K)
        A = np.exp(eta - lse[:, :, None])
        value = float(np.sum(beta * xi_u) - np.sum(n_from * lse))
        acc = _Accumulator(n_slots)
        acc.add_grad(beta_idx, xi_u - np.einsum("ti,tij,tp->ijp", n_from, A, U))
        eye = np.eye(K)
        for i in range(K):
            w = n_from[:, i, None, None] * (A[:, i, :, None] * eye - A[:, i, :, None]
                                            * A[:, i, None, :])       # (T, K, K)
            h = -np.einsum("tjk,tp,tq->jpkq", w, U, U).reshape(K * P, K * P)
            rows = beta_idx[i].reshape(-1)
            acc.add_hess(rows[:, None], rows[None, :], h)
        return acc.result(value)

    return objective


# ---------------------------------------------------------------------- compiled passes
@njit(cache=True)
def _lse(v):
    m = v.max()
    if m == -np.inf:
        return -np.inf
    return m + np.log(np.exp(v - m).sum())


@njit(cache=True)
def _fb_kernel(log_start, logA, lp, offsets, post, xi, start_sum, want):
    """Log-space forward-backward over per-time transition matrices; returns log p(X)
    (-inf when a sequence is impossible). ``want``: fill ``post``, ``xi``, ``start_sum``."""
    T, K = lp.shape
    la = np.empty((T, K))
    lb = np.empty((T, K))
    total = 0.0
    tmp = np.empty(K)
    for s_i in range(offsets.size - 1):
        s, e = offsets[s_i], offsets[s_i + 1]
        for j in range(K):
            la[s, j] = log_start[j] + lp[s, j]
        for t in range(s + 1, e):
            for j in range(K):
                for i in range(K):
                    tmp[i] = la[t - 1, i] + logA[t, i, j]
                la[t, j] = _lse(tmp) + lp[t, j]
        ll = _lse(la[e - 1])
        if ll == -np.inf:
            return -np.inf
        total += ll
        if not want:
            continue
        for j in range(K):
            lb[e - 1, j] = 0.0
        for t in range(e - 2, s - 1, -1):
            for i in range(K):
                for j in range(K):
                    tmp[j] = logA[t + 1, i, j] + lp[t + 1, j] + lb[t + 1, j]
                lb[t, i] = _lse(tmp)
        for t in range(s, e):
            for j in range(K):
                post[t, j] = np.exp(la[t, j] + lb[t, j] - ll)
        for j in range(K):
            start_sum[j] += post[s, j]
        for t in range(s + 1, e):
            for i in range(K):
                for j in range(K):
                    xi[t, i, j] = np.exp(la[t - 1, i] + logA[t, i, j] + lp[t, j]
                                         + lb[t, j] - ll)
    return total


@njit(cache=True)
def _viterbi_kernel(log_start, logA, lp, offsets, path):
    T, K = lp.shape
    delta = np.empty((T, K))
    back = np.zeros((T, K), dtype=np.int64)
    total = 0.0
    for s_i in range(offsets.size - 1):
        s, e = offsets[s_i], offsets[s_i + 1]
        for j in range(K):
            delta[s, j] = log_start[j] + lp[s, j]
        for t in range(s + 1, e):
            for j in range(K):
                best, arg = -np.inf, 0
                for i in range(K):
                    v = delta[t - 1, i] + logA[t, i, j]
                    if v > best:
                        best, arg = v, i
                delta[t, j] = best + lp[t, j]
                back[t, j] = arg
        k = int(np.argmax(delta[e - 1]))
        total += delta[e - 1, k]
        path[e - 1] = k
        for t in range(e - 1, s, -1):
            k = back[t, k]
            path[t - 1] = k
    return total


def _prepared(startprob, beta, covariates, log_frames, lengths):
    with np.errstate(divide="ignore"):
        log_start = np.log(np.asarray(startprob, dtype=float))
    logA = np.ascontiguousarray(log_transition_matrices(beta, covariates))
    lp = np.ascontiguousarray(np.asarray(log_frames, dtype=float))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return log_start, logA, lp, offsets


def forward_backward_tv(startprob, beta, covariates, log_frames, lengths, *,
                        posteriors: bool = True):
    """``(log p(X), posteriors (T, K), ξ (T, K, K), start posteriors summed)`` of the chain
    with the covariate-dependent transitions; ``ξ[t]`` is the transition into row t (zero
    at each sequence's first row). With ``posteriors=False`` only ``log p(X)``."""
    from ._forward_backward import ImpossibleObservationError

    log_start, logA, lp, offsets = _prepared(startprob, beta, covariates, log_frames, lengths)
    T, K = lp.shape
    post = np.zeros((T, K) if posteriors else (0, K))
    xi = np.zeros((T, K, K) if posteriors else (0, K, K))
    start_sum = np.zeros(K)
    ll = _fb_kernel(log_start, logA, lp, offsets, post, xi, start_sum, posteriors)
    if not np.isfinite(ll):
        raise ImpossibleObservationError("the observations have probability zero under "
                                         "every state path of this model")
    return float(ll), post, xi, start_sum


def viterbi_tv(startprob, beta, covariates, log_frames, lengths):
    """Most likely state path under the covariate-dependent transitions."""
    log_start, logA, lp, offsets = _prepared(startprob, beta, covariates, log_frames, lengths)
    path = np.empty(lp.shape[0], dtype=np.int64)
    return float(_viterbi_kernel(log_start, logA, lp, offsets, path)), path


# ---------------------------------------------------------------------- the model's part
class CovariateTransitionsMixin:
    """What a tied HMM does when it has covariates (``n_covariates_ > 0``)."""

    def _has_covariates(self) -> bool:
        return int(getattr(self, "n_covariates_", 0) or 0) > 0

    @contextlib.contextmanager
    def _covariates_given(self, covariates, *, fitting: bool = False):
        """``covariates`` in force for one call (checked against X where X is read; on a
        cluster each partition carries its own rows of them, :mod:`._distributed`)."""
        if covariates is None and not fitting and getattr(self, "_covariates", None) is not None:
            yield  # an inner call (predict -> decode) keeps the caller's covariates
            return
        if fitting:
            if covariates is None:
                self.n_covariates_ = 0
            else:
                shape = np.shape(covariates)
                if len(shape) != 2:
                    raise ValidationError(f"covariates must be 2-D with shape (n_samples, "
                                          f"n_covariates), got shape {shape}; reshape a single "
                                          "covariate with c[:, None]")
                self.n_covariates_ = int(shape[1])
                self._check_covariate_settings()
        elif covariates is not None and not self._has_covariates():
            raise ValidationError(f"covariates were given but this {type(self).__name__} has "
                                  "no covariate-dependent transitions (it was fitted without "
                                  "covariates); leave covariates=None")
        self._covariates = covariates
        try:
            yield
        finally:
            self.__dict__.pop("_covariates", None)

    def _check_covariate_settings(self) -> None:
        if self.start_distribution != "free":
            raise ValidationError("covariates: start_distribution='stationary' needs one "
                                  "transition matrix; with covariates use 'free'")
        if np.any(np.asarray(self.transmat_prior, dtype=float) != 1.0):
            raise ValidationError("covariates: transmat_prior (a Dirichlet prior on one "
                                  "transition matrix) does not apply to the covariate "
                                  "coefficients beta; leave transmat_prior=1.0")
        from ._group import _user_statements
        on_transmat = [s for s in _user_statements(self.ties) if "transmat" in s]
        if self.tied_transitions is not None or on_transmat:
            raise ValidationError("covariates: the transitions are a function of beta, so "
                                  "ties on transmat (tied_transitions, "
                                  f"{on_transmat or 'statements'}) cannot hold; tie the "
                                  "coefficients instead, e.g. 'beta[0,1,1] = beta[1,0,1]'")

    def _covariate_rows(self, n_samples: int) -> np.ndarray | None:
        """The checked covariates of this call, or None for a model without covariates."""
        given = getattr(self, "_covariates", None)
        if not self._has_covariates():
            return None
        if given is None:
            raise ValidationError(f"this {type(self).__name__} has covariate-dependent "
                                  f"transitions ({self.n_covariates_} covariates): pass "
                                  "covariates=, shape (n_samples, n_covariates)")
        return check_covariates(given, n_samples, self.n_covariates_)

    def _init_beta(self) -> None:
        """``beta_`` at the start of a fit: from the initial ``transmat_`` when fit draws
        the transitions (or none was given), else the user's ``beta_`` (shape checked)."""
        K, P = self.n_components, 1 + self.n_covariates_
        given = getattr(self, "beta_", None)
        if "t" in self.init_params or given is None:
            self.beta_ = initial_beta(self.transmat_, self.n_covariates_)
            return
        given = np.asarray(given, dtype=float)
        if given.shape != (K, K, P) or not np.all(np.isfinite(given)):
            raise ValidationError(f"beta_ must be finite with shape {(K, K, P)} (states, "
                                  f"states, 1 + n_covariates), got shape {given.shape}")
        if np.any(given[np.arange(K), np.arange(K)] != 0):
            raise ValidationError("beta_[i, i, :] must be 0 (the self-transition is each "
                                  "row's reference)")
        self.beta_ = given
        self.transmat_ = intercept_softmax(given).reshape(K, K)

    def _covariate_estep(self, X, lengths, covariates):
        ll, post, xi, start_sum = forward_backward_tv(
            self.startprob_, self.beta_, covariates, self._log_frames(X, lengths), lengths)
        stats = self._initialize_sufficient_statistics()
        stats["nobs"] = len(lengths)
        missing = self._missing_mask(X)  # the emission M-step reads it (missing values)
        stats["n_missing"] = 0 if missing is None else int(missing.sum())
        if "s" in self.params:
            stats["start"] += start_sum
        stats["trans"] += xi.sum(axis=0)
        xi_u, stats["departures"] = logit_statistics(xi, covariates)
        stats["xi_u"] += xi_u
        self._accumulate_emission_statistics(stats, X, post, None, lengths)
        return stats, ll

    def _covariate_mstep(self, stats) -> None:
        """The transitions' M-step: ``beta`` by Newton through the tie map on the logit's
        Q; the start probabilities in closed form when no tie reaches them (Newton would
        crawl towards the vertex that one sequence's start distribution tends to), else
        jointly with ``beta``."""
        from ..core import ParameterGroup

        c = self.group_.tie_map()
        n = len(c.names)
        columns = self._plan.block_columns["transitions"]
        covariates = self._covariate_rows(stats["departures"].shape[0])
        logit = (logit_objective(np.asarray(c.select("beta")), stats["xi_u"],
                                 stats["departures"], covariates, n)
                 if "t" in self.params else None)
        start_tied = (isinstance(self.ties, ParameterGroup)
                      or any("startprob" in text for text in self._plan.statements))
        if "s" in self.params and not start_tied:
            self._hmmlearn_mstep(stats, "s")
            beta_cols = [j for j in columns
                         if not c.names[c.free_index[j]].startswith("startprob")]
            if logit is not None and beta_cols:
                self._general_mstep("transitions", logit, columns=np.asarray(beta_cols))
            return
        parts = [] if logit is None else [logit]
        if "s" in self.params:
            cnt = np.maximum(self.startprob_prior - 1 + stats["start"], 0)
            parts.append(probability_objective(
                [(np.asarray(c.select("startprob")), np.where(self.startprob_ == 0, 0, cnt))],
                n))
        if parts:
            self._general_mstep("transitions", sum_objectives(*parts))

    def _sample_with_covariates(self, n_samples: int, random_state, currstate):
        """hmmlearn's sampler with the transition into sample t drawn from ``A_t``."""
        from sklearn.utils import check_random_state

        covariates = self._covariate_rows(n_samples)
        if covariates is None:
            raise ValidationError("covariates were given but this model has no "
                                  "covariate-dependent transitions; leave covariates=None")
        rng = check_random_state(self.random_state if random_state is None else random_state)
        cdf = np.cumsum(np.exp(log_transition_matrices(self.beta_, covariates)), axis=2)
        if currstate is None:
            currstate = int((np.cumsum(self.startprob_) > rng.rand()).argmax())
        states = np.empty(n_samples, dtype=int)
        states[0] = currstate
        X = [self._generate_sample_from_state(currstate, random_state=rng)]
        for t in range(1, n_samples):
            currstate = int((cdf[t, currstate] > rng.rand()).argmax())
            states[t] = currstate
            X.append(self._generate_sample_from_state(currstate, random_state=rng))
        return np.atleast_2d(X), states
