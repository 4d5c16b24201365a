"""Hidden semi-Markov models: explicit dwell-time distributions, fitted by EM through the ties.

:class:`SemiMarkovMixin` turns a tied HMM family into a hidden semi-Markov model (HSMM): a
state, once entered, stays for a duration ``d`` in ``1..max_duration`` drawn from its dwell
distribution (:mod:`._durations`: ``"poisson"``, ``"negbinom"`` or ``"nonparametric"``) and
then moves to a different state with ``transmat_`` (whose diagonal is zero). The emissions
are the family's own, so their statistics, M-step and ties are unchanged; the E-step is the
exact segment forward-backward of :mod:`._segments`, and the dwell parameters are one more
block of ``group_`` (``dwell_rate``, also ``dwell_shape`` for the negative binomial, or
``dwell_pmf``), so statements such as ``"dwell_rate[1] = dwell_rate[0]"`` tie them, they
count in ``n_free_parameters``/AIC/BIC and get standard errors from ``uncertainties``. The last
segment of every sequence is right-censored (it has lasted at least its observed length):
the model is the ordinary HMM on an expanded state space of countdown chains, which the
tests check.
"""
from __future__ import annotations

import contextlib

import numpy as np
from sklearn.utils import check_random_state as as_random_state

from .._validation import check_choice, check_int, check_random_state
from ..errors import ValidationError, not_fitted
from ._durations import DURATIONS, dwell_bounds, dwell_objective, dwell_pmf, initial_dwell
from ._group import model_slots
from ._models import TiedGaussianHMM, TiedPoissonHMM
from ._segments import segment_loglik, segment_statistics, segment_viterbi, spread_censored

__all__ = ["SemiMarkovMixin", "TiedGaussianHSMM", "TiedPoissonHSMM", "SEMI_MARKOV"]


class SemiMarkovMixin:
    """The semi-Markov part of an HSMM class placed before a tied HMM family class.

    The class stores ``max_duration`` and ``duration`` in its ``__init__`` (keyword-only);
    ``params``/``init_params`` take the letter ``"d"`` for the dwell parameters.
    """

    _duration_letters = "d"

    # ------------------------------------------------------------------ parameters
    def _duration_params(self) -> list[tuple[str, str, str]]:
        return [(name, "d", name + "_") for name in DURATIONS[self.duration]]

    def _get_n_fit_scalars_per_param(self):
        # hmmlearn's count (its warning when data are too few) with the dwell parameters
        out = dict(super()._get_n_fit_scalars_per_param())
        K, D = self.n_components, self.max_duration
        out["d"] = {"poisson": K, "negbinom": 2 * K, "nonparametric": K * (D - 1)}[self.duration]
        return out

    def _duration_bounds(self, name: str) -> tuple:
        return dwell_bounds(name)

    @property
    def dwell_distribution_(self) -> np.ndarray:
        """``p_k(d)``: row k is state k's dwell pmf over ``d = 1..max_duration``."""
        self._check_durations("dwell_distribution_")
        return self._dwell()

    def _dwell(self) -> np.ndarray:
        params = {name: np.asarray(getattr(self, attr), dtype=float)
                  for name, _, attr in self._duration_params()}
        return dwell_pmf(self.duration, params, self.max_duration)

    def mean_durations(self) -> np.ndarray:
        """Expected dwell time of each state (in samples), from ``dwell_distribution_``.

        Returns
        -------
        ndarray, shape (n_components,)
        """
        return self.dwell_distribution_ @ np.arange(1, self.max_duration + 1)

    # ------------------------------------------------------------------ checks
    def _validate_family_settings(self) -> None:
        super()._validate_family_settings()
        self._validate_duration_settings()

    def _validate_duration_settings(self) -> None:
        check_choice(self.duration, "duration", tuple(DURATIONS))
        check_int(self.max_duration, "max_duration", minimum=1)
        K = self.n_components
        if isinstance(K, (int, np.integer)) and not isinstance(K, bool) and K < 2:
            raise ValidationError(f"n_components must be at least 2 for a hidden semi-Markov "
                                  f"model (a state never follows itself), got {K}")
        if self.tied_transitions is not None:
            raise ValidationError("tied_transitions ties self-transitions, which a hidden "
                                  "semi-Markov model does not have; tie the dwell parameters "
                                  "instead (ties=['dwell_rate[1] = dwell_rate[0]'])")
        if self.start_distribution != "free":
            raise ValidationError(f"start_distribution={self.start_distribution!r} is not "
                                  "supported by a hidden semi-Markov model (the stationary "
                                  "distribution of transmat_ is not that of the states); use "
                                  "'free'")

    def _check_durations(self, what: str = "") -> None:
        """Dwell arrays and the zero diagonal of ``transmat_``, before a kernel reads them."""
        self._validate_duration_settings()
        K, D = self.n_components, self.max_duration
        for name, _, attr in self._duration_params():
            if not hasattr(self, attr):
                if what:
                    raise not_fitted(self, what)
                raise ValidationError(f"{attr} is not set; fit the model or set it (init_params "
                                      "without 'd' keeps the dwell parameters you give)")
            arr = np.asarray(getattr(self, attr), dtype=float)
            shape = (K, D) if name == "dwell_pmf" else (K,)
            if arr.shape != shape:
                raise ValidationError(f"{attr} must have shape {shape} (n_components"
                                      f"{', max_duration' if len(shape) == 2 else ''}) for "
                                      f"duration={self.duration!r}, got {arr.shape}")
            lo, hi = dwell_bounds(name)
            bad = ~np.isfinite(arr) | (arr < lo) | (arr > hi)
            if name != "dwell_pmf":
                bad |= arr == lo
            if bad.any():
                interval = f"[{lo:g}, {hi:g}]" if name == "dwell_pmf" else f"({lo:g}, {hi:g}]"
                raise ValidationError(f"{attr} must lie in {interval}, got "
                                      f"{np.array2string(arr, precision=4)}")
            if name == "dwell_pmf" and not np.allclose(arr.sum(axis=1), 1.0, atol=1e-8):
                raise ValidationError(f"each row of dwell_pmf_ must sum to 1 (a pmf over "
                                      f"durations 1..{D}), got sums {arr.sum(axis=1)}")
        diag = np.diag(np.asarray(self.transmat_, dtype=float))
        if np.any(diag != 0):
            raise ValidationError(f"transmat_ of a hidden semi-Markov model must have a zero "
                                  f"diagonal (the dwell distributions say how long a state "
                                  f"lasts), got diagonal {diag}")

    def _require_parameters(self, what: str = "") -> None:
        super()._require_parameters(what)
        self._check_durations()

    # ------------------------------------------------------------------ start
    def _init_structure(self, X, lengths) -> None:
        if "t" in self.init_params:
            A = np.array(self.transmat_, dtype=float)
            np.fill_diagonal(A, 0.0)
            self.transmat_ = A / A.sum(axis=1, keepdims=True)
        if "d" in self.init_params:
            for name, value in initial_dwell(self.duration, self.n_components,
                                             self.max_duration).items():
                setattr(self, name + "_", value)

    def _placeholder_emissions(self, n_features: int) -> None:
        # the group of a model checked before fitting (recipes) needs the dwell arrays and
        # the zero diagonal too
        super()._placeholder_emissions(n_features)
        K = self.n_components
        self.transmat_ = (np.ones((K, K)) - np.eye(K)) / (K - 1)
        for name, value in initial_dwell(self.duration, K, self.max_duration).items():
            setattr(self, name + "_", value)

    def _forget_initialised(self) -> None:
        super()._forget_initialised()
        if "d" in self.init_params:
            for _, _, attr in self._duration_params():
                self.__dict__.pop(attr, None)

    def _other_first_states(self, X, lengths) -> None:
        """Not for semi-Markov models: the start search reads an HMM's transitions."""

    @contextlib.contextmanager
    def _covariates_given(self, covariates, *, fitting: bool = False):
        if covariates is not None:
            raise ValidationError(f"covariates: {type(self).__name__} does not support "
                                  "covariate-dependent transitions (the transitions between "
                                  "segments are constant); leave covariates=None")
        with super()._covariates_given(None, fitting=fitting):
            yield

    # ------------------------------------------------------------------ E-step / M-step
    def _initialize_sufficient_statistics(self):
        stats = super()._initialize_sufficient_statistics()
        stats["dwell"] = np.zeros((self.n_components, self.max_duration))
        return stats

    def _do_estep(self, X, lengths):
        X, lengths = np.asarray(X), np.asarray(lengths, dtype=np.int64)
        dwell = self._dwell()
        est = segment_statistics(self.startprob_, self.transmat_, dwell,
                                 self._log_frames(X, lengths), lengths)
        stats = self._initialize_sufficient_statistics()
        missing = self._missing_mask(X)
        stats["nobs"] = len(lengths)
        stats["n_missing"] = 0 if missing is None else int(missing.sum())
        stats["start"] += est.start
        if "t" in self.params:
            stats["trans"] += est.trans
        # censored last segments are spread over their possible full durations here, so the
        # statistic is additive over partitions (the Dask E-step sums it)
        stats["dwell"] += spread_censored(est.complete, est.censored, dwell)
        self._accumulate_emission_statistics(stats, X, est.posteriors, None, lengths)
        return stats, est.log_prob

    def _do_mstep(self, stats):
        super()._do_mstep(stats)
        columns = self._plan.block_columns.get("durations", np.zeros(0, dtype=np.intp))
        if "d" in self.params and columns.size:
            c = self.group_.tie_map()
            idx = {name: np.asarray(c.select(name)) for name, _, _ in self._duration_params()}
            objective = dwell_objective(self.duration, idx, stats["dwell"], len(c.names))
            columns = self._off_bounds(columns, objective)
            if columns.size:
                self._general_mstep("durations", objective, columns)

    def _off_bounds(self, columns: np.ndarray, objective) -> np.ndarray:
        """The free dwell parameters the M-step moves: not those at a bound of their domain
        that Q pushes past it (a negative binomial's shape at its cap on Poisson-like data);
        Newton would only creep towards the bound there, step after step."""
        c = self.group_.tie_map()
        slots = c.evaluate(model_slots(self, self.group_, self._slots)[c.free_index])
        _, grad, _ = objective(slots)
        if grad is None:
            return columns
        x = slots[c.free_index][columns]
        g = np.asarray(c.matrix()[:, columns].T @ grad).ravel()
        lo, hi = c.lower[c.free_index][columns], c.upper[c.free_index][columns]
        with np.errstate(invalid="ignore"):
            at_hi = np.isfinite(hi) & (x >= hi - 1e-6 * np.abs(hi)) & (g > 0)
            at_lo = np.isfinite(lo) & (x <= lo + 1e-10 * np.maximum(np.abs(lo), 1.0)) & (g < 0)
        return columns[~(at_hi | at_lo)]

    # ------------------------------------------------------------------ score / decode
    def _score(self, X, lengths=None, *, compute_posteriors):
        self._require_parameters("score")
        X, lengths = self._validate_X(X, lengths)
        frames = self._log_frames(X, lengths)
        if compute_posteriors:
            est = segment_statistics(self.startprob_, self.transmat_, self._dwell(), frames,
                                     lengths)
            return est.log_prob, est.posteriors
        return (segment_loglik(self.startprob_, self.transmat_, self._dwell(), frames, lengths),
                np.empty((0, self.n_components)))

    def _validated_loglik(self, X, lengths) -> float:
        return segment_loglik(self.startprob_, self.transmat_, self._dwell(),
                              self._log_frames(X, lengths), lengths)

    def _viterbi(self, X, lengths):
        return segment_viterbi(self.startprob_, self.transmat_, self._dwell(),
                               self._log_frames(X, lengths), lengths)

    def sample(self, n_samples=1, random_state=None, currstate=None, *, covariates=None):
        """Draw segments (state, dwell time) and their observations.

        Parameters
        ----------
        n_samples : int, optional
            Number of samples (at least 1); the last segment is cut at ``n_samples``.
        random_state : int, RandomState or None, optional
            Seed; None uses the model's ``random_state``.
        currstate : int, optional
            State of the first segment (default: drawn from ``startprob_``).
        covariates : None
            Not supported (a semi-Markov model has constant transitions).

        Returns
        -------
        X : ndarray, shape (n_samples, n_features)
        state_sequence : ndarray of int, shape (n_samples,)
        """
        if covariates is not None:
            raise ValidationError("covariates: a hidden semi-Markov model has constant "
                                  "transitions; leave covariates=None")
        n_samples = check_int(n_samples, "n_samples", minimum=1)
        check_random_state(random_state)
        self._require_parameters("sample")
        rng = as_random_state(self.random_state if random_state is None else random_state)
        K, D = self.n_components, self.max_duration
        if currstate is None:
            state = int(rng.choice(K, p=self.startprob_))
        else:
            state = check_int(currstate, "currstate", minimum=0, maximum=K - 1)
        dwell = self._dwell()
        states = np.empty(n_samples, dtype=np.int64)
        t = 0
        while t < n_samples:
            d = int(rng.choice(D, p=dwell[state])) + 1
            states[t:t + d] = state
            t += d
            state = int(rng.choice(K, p=self.transmat_[state]))
        X = np.array([self._generate_sample_from_state(s, rng) for s in states])
        return X, states

    def _level_dwell_distribution(self, states, d_max: int) -> np.ndarray:
        states = np.atleast_1d(states)
        if states.size != 1:
            raise ValidationError(f"the dwell distribution of a level of several states "
                                  f"({states.tolist()}) of a hidden semi-Markov model is not "
                                  "implemented; plot the dwell times of untied states")
        out = np.zeros(d_max)
        pmf = self.dwell_distribution_[int(states[0])]
        n = min(d_max, pmf.size)
        out[:n] = pmf[:n]
        return out

    def _to_xarray(self, X, lengths, client):
        out = super()._to_xarray(X, lengths, client)
        D = self.max_duration
        out = out.assign_coords(duration=("duration", np.arange(1, D + 1),
                                          {"long_name": "dwell time", "units": "samples"}))
        units = {"dwell_rate": "samples", "dwell_shape": "1", "dwell_pmf": "1"}
        for name, _, attr in self._duration_params():
            arr = np.asarray(getattr(self, attr))
            dims = ("state",) if arr.ndim == 1 else ("state", "duration")
            out[name] = (dims, arr, {"long_name": f"dwell-time parameter {name} of each state "
                                                  f"({self.duration})", "units": units[name]})
        out["dwell_distribution"] = (("state", "duration"), self.dwell_distribution_,
                                     {"long_name": "probability of each dwell time",
                                      "units": "1"})
        return out

    # ------------------------------------------------------------------ uncertainties
    def _has_slot_gradient(self) -> bool:
        # the analytic score is an HMM's; uncertainties() differentiates log L instead
        return False

    def loglik_gradient(self, X, lengths=None) -> np.ndarray:
        """Not available for semi-Markov models (``uncertainties`` takes central differences
        of the log-likelihood instead).

        Raises
        ------
        ValidationError
        """
        raise ValidationError(f"loglik_gradient: the analytic score of {type(self).__name__} "
                              "is not implemented (the segment recursions have none); "
                              "uncertainties() uses central differences of log L")

    # ------------------------------------------------------------------ report
    def report(self, *, min_correl: float = 0.1) -> str:
        text = super().report(min_correl=min_correl)
        head, sep, rest = text.partition("[[Fit Statistics]]")
        means = np.array2string(self.mean_durations(), precision=4)
        return (f"{head}    dwell times        = {self.duration} on 1..{self.max_duration} "
                f"(mean durations {means})\n{sep}{rest}")

    report.__doc__ = TiedGaussianHMM.report.__doc__


class TiedGaussianHSMM(SemiMarkovMixin, TiedGaussianHMM):
    """Gaussian hidden semi-Markov model: explicit dwell-time distributions, tied by EM.

    A state lasts ``d`` samples, ``d`` in ``1..max_duration`` drawn from its dwell
    distribution, then moves to another state with ``transmat_`` (zero diagonal). Every
    argument of :class:`TiedGaussianHMM` is accepted with the same meaning (ties,
    ``tied_states``, priors, starts ...); ``params`` and ``init_params`` take ``"d"`` for the
    dwell parameters, which ``ties`` may name (``"dwell_rate[1] = dwell_rate[0]"``). The
    last segment of each sequence is right-censored. Not supported: covariates,
    ``tied_transitions`` (there are no self-transitions) and ``start_distribution=
    "stationary"``.

    Parameters
    ----------
    n_components : int
        Number of states (at least 2).
    covariance_type, min_covar, startprob_prior, transmat_prior, means_prior, means_weight, \
covars_prior, covars_weight, algorithm, random_state, n_iter, tol, verbose, implementation
        As in :class:`TiedGaussianHMM`.
    params, init_params : str
        Letters of the parameters updated / initialised: 's', 't', 'm', 'c', 'd'.
    max_duration : int, default 20
        Longest dwell time D (in samples); the recursions cost ``O(T K D + T K^2)``.
    duration : {"poisson", "negbinom", "nonparametric"}, default "poisson"
        Dwell family: ``d - 1 ~ Poisson(dwell_rate)``, ``d - 1 ~`` negative binomial of mean
        ``dwell_rate`` and shape ``dwell_shape`` (variance ``rate + rate²/shape``; both
        truncated to ``d <= max_duration``), or a free pmf ``dwell_pmf``.
    ties, tied_states, n_init
        As in :class:`TiedGaussianHMM`.

    Attributes
    ----------
    dwell_rate_ : ndarray, shape (n_components,)
        Poisson and negative-binomial dwell: the mean of ``d - 1`` before truncation.
    dwell_shape_ : ndarray, shape (n_components,)
        Negative-binomial dwell: its shape ``r`` (at most 1e6; the Poisson is ``r → ∞``).
    dwell_pmf_ : ndarray, shape (n_components, max_duration)
        Nonparametric dwell: ``p_k(d)``.
    dwell_distribution_ : ndarray, shape (n_components, max_duration)
        Every family's pmf ``p_k(d)``, for ``d = 1..max_duration``.
    group_, result_, monitor_, startprob_, transmat_, means_, covars_
        As in :class:`TiedGaussianHMM`.

    Examples
    --------
    >>> import numpy as np
    >>> from sciTie.hmm import TiedGaussianHSMM
    >>> truth = TiedGaussianHSMM(2, max_duration=15, init_params="", random_state=0)
    >>> truth.startprob_ = np.array([1.0, 0.0])
    >>> truth.transmat_ = np.array([[0.0, 1.0], [1.0, 0.0]])
    >>> truth.means_ = np.array([[0.0], [3.0]]); truth.covars_ = np.ones((2, 1))
    >>> truth.dwell_rate_ = np.array([4.0, 4.0])
    >>> X, z = truth.sample(400, random_state=1)
    >>> model = TiedGaussianHSMM(2, max_duration=15, ties=["dwell_rate[1] = dwell_rate[0]"],
    ...                          n_iter=50, random_state=0).fit(X)
    >>> bool(model.dwell_rate_[0] == model.dwell_rate_[1])
    True
    """

    def __init__(self, n_components=2, covariance_type="diag", min_covar=1e-3,
                 startprob_prior=1.0, transmat_prior=1.0, means_prior=0, means_weight=0,
                 covars_prior=1e-2, covars_weight=1, algorithm="viterbi", random_state=None,
                 n_iter=10, tol=1e-2, verbose=False, params="stmcd", init_params="stmcd",
                 implementation="log", *, max_duration=20, duration="poisson", ties=None,
                 tied_states=None, tied_transitions=None, n_init="auto",
                 start_distribution="free"):
        super().__init__(n_components, covariance_type=covariance_type, min_covar=min_covar,
                         startprob_prior=startprob_prior, transmat_prior=transmat_prior,
                         means_prior=means_prior, means_weight=means_weight,
                         covars_prior=covars_prior, covars_weight=covars_weight,
                         algorithm=algorithm, random_state=random_state, n_iter=n_iter,
                         tol=tol, verbose=verbose, params=params, init_params=init_params,
                         implementation=implementation, ties=ties, tied_states=tied_states,
                         tied_transitions=tied_transitions, n_init=n_init,
                         start_distribution=start_distribution)
        self.max_duration = max_duration
        self.duration = duration


class TiedPoissonHSMM(SemiMarkovMixin, TiedPoissonHMM):
    """Poisson-count hidden semi-Markov model (see :class:`TiedGaussianHSMM`).

    Parameters
    ----------
    n_components : int
        Number of states (at least 2).
    startprob_prior, transmat_prior, lambdas_prior, lambdas_weight, algorithm, random_state, \
n_iter, tol, verbose, implementation
        As in :class:`TiedPoissonHMM`.
    params, init_params : str
        Letters of the parameters updated / initialised: 's', 't', 'l', 'd'.
    max_duration : int, default 20
        Longest dwell time (in samples).
    duration : {"poisson", "negbinom", "nonparametric"}, default "poisson"
        Dwell family (see :class:`TiedGaussianHSMM`).
    ties, tied_states, n_init
        As in :class:`TiedPoissonHMM`.
    """

    def __init__(self, n_components=2, startprob_prior=1.0, transmat_prior=1.0,
                 lambdas_prior=0.0, lambdas_weight=0.0, algorithm="viterbi",
                 random_state=None, n_iter=10, tol=1e-2, verbose=False, params="stld",
                 init_params="stld", implementation="log", *, max_duration=20,
                 duration="poisson", ties=None, tied_states=None, tied_transitions=None,
                 n_init="auto", start_distribution="free"):
        super().__init__(n_components, startprob_prior=startprob_prior,
                         transmat_prior=transmat_prior, lambdas_prior=lambdas_prior,
                         lambdas_weight=lambdas_weight, algorithm=algorithm,
                         random_state=random_state, n_iter=n_iter, tol=tol, verbose=verbose,
                         params=params, init_params=init_params,
                         implementation=implementation, ties=ties, tied_states=tied_states,
                         tied_transitions=tied_transitions, n_init=n_init,
                         start_distribution=start_distribution)
        self.max_duration = max_duration
        self.duration = duration


#: The hidden semi-Markov model of each emission family that has one (recipes, CLI).
SEMI_MARKOV = {"gaussian": TiedGaussianHSMM, "poisson": TiedPoissonHSMM}
