"""TiedGaussianHMM, TiedPoissonHMM, TiedCategoricalHMM: hmmlearn models with tied states."""
from __future__ import annotations

import numpy as np
from hmmlearn.hmm import GMMHMM, CategoricalHMM, GaussianHMM, PoissonHMM
from sklearn import cluster

from .._validation import check_choice, check_float, check_int
from ..errors import ValidationError
from . import _missing
from ._base import TiedHMMMixin, _check_prior, shares_tie_docs
from ._forward_backward import DiagonalGaussian, gaussian_diag_loglik
from ._mixture import accumulate_mixture_statistics, mixture_log_likelihood
from ._objectives import (gaussian_diag_objective, gaussian_full_objective, poisson_objective,
                          probability_objective, sum_objectives)
from ._report import ReportMixin
from ._start import mean_group_start

__all__ = ["TiedGaussianHMM", "TiedPoissonHMM", "TiedCategoricalHMM", "TiedGMMHMM"]


def covariances_of_type(full: np.ndarray, covariance_type: str) -> np.ndarray:
    """Full covariance matrices (last two axes) in hmmlearn's layout for ``covariance_type``
    ("full", "diag" or "spherical")."""
    if covariance_type == "full":
        return full
    diagonal = np.diagonal(full, axis1=-2, axis2=-1)
    return diagonal if covariance_type == "diag" else diagonal.mean(axis=-1)


@shares_tie_docs
class TiedGaussianHMM(ReportMixin, TiedHMMMixin, GaussianHMM):
    """Gaussian HMM whose states can share emission distributions.

    Accepts every argument of :class:`hmmlearn.hmm.GaussianHMM` plus ``ties``,
    ``tied_states`` and ``tied_transitions``. Every M-step is the exact maximiser of the
    expected complete-data log-likelihood under the ties (pooled statistics when whole
    states are equal, Newton steps through the tie matrix otherwise). The forward-backward
    pass is sciTie's compiled, underflow-free implementation for both values of
    ``implementation`` (kept for compatibility).

    Parameters
    ----------
    n_components : int
        Number of states.
    covariance_type : {"spherical", "diag", "full", "tied"}
        Covariance structure, as in hmmlearn.
    min_covar : float
        Floor on the covariance diagonal at initialisation.
    startprob_prior, transmat_prior : float or array
        Dirichlet priors of the start and transition probabilities.
    means_prior, means_weight, covars_prior, covars_weight : float or array
        Priors of the means and covariances (per-state arrays must agree within groups).
    algorithm : {"viterbi", "map"}
        Decoder.
    random_state : int, RandomState or None
        Seed of the initialisation.
    n_iter : int
        Maximum number of EM iterations.
    tol : float
        Convergence threshold on the log-likelihood gain.
    verbose : bool
        Print per-iteration reports.
    params, init_params : str
        Letters of the parameters updated / initialised: 's', 't', 'm', 'c'.
    implementation : {"log", "scaling"}
        Accepted for compatibility; both use sciTie's guarded scaled forward-backward.
    %(tie_parameters)s

    Attributes
    ----------
    startprob_ : ndarray, shape (n_components,)
        Start distribution.
    transmat_ : ndarray, shape (n_components, n_components)
        Transition matrix.
    means_ : ndarray, shape (n_components, n_features)
        Means, equal within each tied group.
    covars_ : ndarray
        Covariances (full matrices), equal within each tied group.
    monitor_ : hmmlearn.base.ConvergenceMonitor
        Convergence history of the last fit.
    group_ : sciTie.ParameterGroup
        The model's one group: every slot, tie and structural constraint.
    result_ : sciTie.FitResult
        Parameters, log-likelihood, AIC/BIC on ``group_.n_free``; standard errors after
        :meth:`uncertainties`.

    Examples
    --------
    >>> import numpy as np
    >>> from sciTie.hmm import TiedGaussianHMM
    >>> X = np.r_[np.zeros(50), np.ones(50)][:, None] + 0.1
    >>> model = TiedGaussianHMM(3, tied_states=[[0, 1], [2]], random_state=0).fit(X)
    >>> bool(np.allclose(model.means_[0], model.means_[1]))
    True
    """

    family = "gaussian"
    _unit_powers = {"means": 1, "covars": 2}
    _emission_letters = "mc"
    _emission_stats = ("post", "post_feature", "obs", "obs**2", "obs*obs.T")

    def __init__(self, n_components=1, covariance_type="diag", min_covar=1e-3,
                 startprob_prior=1.0, transmat_prior=1.0, means_prior=0, means_weight=0,
                 covars_prior=1e-2, covars_weight=1, algorithm="viterbi", random_state=None,
                 n_iter=10, tol=1e-2, verbose=False, params="stmc", init_params="stmc",
                 implementation="log", *, ties=None, tied_states=None,
                 tied_transitions=None, n_init="auto", start_distribution="free"):
        super().__init__(n_components, covariance_type=covariance_type, min_covar=min_covar,
                         startprob_prior=startprob_prior, transmat_prior=transmat_prior,
                         means_prior=means_prior, means_weight=means_weight,
                         covars_prior=covars_prior, covars_weight=covars_weight,
                         algorithm=algorithm, random_state=random_state, n_iter=n_iter,
                         tol=tol, verbose=verbose, params=params, init_params=init_params,
                         implementation=implementation)
        self._store_tie_arguments(ties, tied_states, tied_transitions, n_init,
                                  start_distribution)


    def _placeholder_emissions(self, n_features: int) -> None:
        K, D = self.n_components, n_features
        self.means_ = np.arange(K * D, dtype=float).reshape(K, D)
        self.covars_ = {"spherical": np.ones(K), "diag": np.ones((K, D)),
                        "full": np.tile(np.eye(D), (K, 1, 1)),
                        "tied": np.eye(D)}[self.covariance_type]

    def _emission_params(self):
        return [("means", "m", "means_"), ("covars", "c", "_covars_")]

    def _n_features_of_fit(self):
        means = getattr(self, "means_", None)
        return None if means is None else int(np.shape(means)[1])

    def _get_param(self, name):
        if name == "covars" and self.covariance_type == "spherical":
            # hmmlearn keeps one column per feature (all equal): the group has one variance
            return np.asarray(self._covars_, dtype=float).reshape(self.n_components, -1)[:, 0]
        return super()._get_param(name)

    def _set_param(self, name, value):
        if name == "covars" and self.covariance_type == "spherical":
            D = np.shape(self.means_)[1]
            self._covars_ = np.tile(np.asarray(value, dtype=float)[:, None], (1, D))
            return
        super()._set_param(name, value)

    def _prior_names(self):
        return ("means_prior", "means_weight", "covars_prior", "covars_weight")

    def _nonneutral_priors(self):
        out = {}
        if np.any(np.asarray(self.means_weight, dtype=float) != 0):
            out.update(means_prior=self.means_prior, means_weight=self.means_weight)
        if np.any(np.asarray(self.covars_prior, dtype=float) != 0):
            out["covars_prior"] = self.covars_prior
        # the weight adds max(w - 1, 0) (D for full and tied matrices) to the denominator
        limit = 1.0 if self.covariance_type in ("spherical", "diag") else float(
            np.shape(getattr(self, "means_", np.zeros((1, 1))))[-1])
        if np.any(np.asarray(self.covars_weight, dtype=float) > limit):
            out["covars_weight"] = self.covars_weight
        return out

    def _supports_pooling(self):
        # hmmlearn's 'tied' update sums every state's scatter: pooled copies would repeat
        return self.covariance_type != "tied"

    def _validate_family_X(self, X):
        return _gaussian_X(X)

    def _validate_family_settings(self):
        check_choice(self.covariance_type, "covariance_type", ("spherical", "diag", "full", "tied"))
        check_float(self.min_covar, "min_covar", minimum=0.0, low_open=True)
        _check_prior(self.means_prior, "means_prior")
        _check_prior(self.means_weight, "means_weight", nonnegative=True)
        _check_prior(self.covars_prior, "covars_prior", nonnegative=True)
        _check_prior(self.covars_weight, "covars_weight")

    def _check_emissions(self):
        K, ctype = self.n_components, self.covariance_type
        means = _finite(self.means_, "means_")
        if means.ndim != 2 or means.shape[0] != K:
            raise ValidationError(f"means_ must have shape (n_components={K}, n_features), got "
                                  f"{means.shape}")
        D = means.shape[1]
        cov = _finite(self._covars_, "covars_")
        shapes = {"spherical": [(K,), (K, D)], "diag": [(K, D)], "full": [(K, D, D)],
                  "tied": [(D, D)]}[ctype]
        # hmmlearn reads a spherical variance per state from any (K, ...) array holding one
        # value (or one per feature) per state, e.g. (K, 1, 1, 1): accept what it accepts
        spherical_ok = (ctype == "spherical" and cov.ndim >= 1 and cov.shape[0] == K
                        and cov[0].size in (1, D))
        if cov.shape not in shapes and not spherical_ok:
            raise ValidationError(f"covars_ of a {ctype!r} model with {K} states and {D} "
                                  f"features must have shape {shapes[-1]}, got {cov.shape}")
        if ctype in ("spherical", "diag") and np.any(cov <= 0):
            raise ValidationError(f"covars_ must be positive variances, got "
                                  f"{np.array2string(cov, precision=4)}")

    def _init_grouped(self, X, lengths, partition):
        """k-means on the tied groups instead of the states (hmmlearn's start otherwise)."""
        if "m" not in self.init_params:
            return
        s2g = np.empty(self.n_components, dtype=np.int64)
        for gi, g in enumerate(partition):
            s2g[g] = gi
        km = cluster.KMeans(n_clusters=len(partition), random_state=self.random_state,
                            n_init=10).fit(X)
        self.means_ = km.cluster_centers_[s2g].copy()

    def _init_mean_groups(self, X, groups) -> bool:
        start = mean_group_start(X, groups, self.n_components, 1, self.min_covar,
                                 self.random_state)
        if start is None:
            return False
        self.means_ = start.means[:, 0]
        if "c" in self.init_params and self.covariance_type != "tied":
            self.covars_ = covariances_of_type(start.covars[:, 0], self.covariance_type)
        return True

    def _fused_moments(self):
        diagonal = self.covariance_type in ("spherical", "diag")
        return 2 if diagonal and ("m" in self.params or "c" in self.params) else 0

    def _diagonal_variances(self):
        means = np.asarray(self.means_, dtype=np.float64)
        return means, np.broadcast_to(np.asarray(self._covars_, dtype=np.float64).reshape(
            self.n_components, -1), means.shape)

    def _supports_missing(self):
        return True

    def _emissions(self, X, lengths):
        # evaluated inside the pass, unless known states mask the table or values are missing
        if (self.covariance_type in ("spherical", "diag") and getattr(self, "_known", None) is None
                and self._missing_mask(X) is None):
            return DiagonalGaussian(*self._diagonal_variances())
        return super()._emissions(X, lengths)

    def _compute_log_likelihood(self, X):
        if self.covariance_type in ("spherical", "diag") and self._missing_mask(X) is None:
            return gaussian_diag_loglik(X, *self._diagonal_variances())
        return super()._compute_log_likelihood(X)

    def _observed_log_likelihood(self, X, mask):
        if self.covariance_type in ("spherical", "diag"):
            return _missing.diagonal_gaussian_loglik(X, mask, *self._diagonal_variances())
        return _missing.gaussian_marginal_loglik(X, mask, np.asarray(self.means_, float),
                                                 np.asarray(self.covars_, float))

    def _accumulate_emission_statistics(self, stats, X, post, sums=None, lengths=None):
        if not ("m" in self.params or "c" in self.params):
            return
        if sums is not None:
            stats["post"] += sums[0]
            stats["post_feature"] += sums[0][:, None]
            stats["obs"] += sums[1]
            if "c" in self.params:
                stats["obs**2"] += sums[2]
            return
        mask = self._missing_mask(X)
        if mask is not None and self.covariance_type in ("spherical", "diag"):
            occupancy, s1, s2 = _missing.diagonal_moments(X, mask, post)
            stats["post"] += post.sum(axis=0)
            stats["post_feature"] += occupancy
            stats["obs"] += s1
            stats["obs**2"] += s2
            return
        if mask is not None:  # full, tied: the missing entries' conditional expectations
            occupancy, s1, s2, outer = _missing.gaussian_conditional_moments(
                X, mask, post, np.asarray(self.means_, float), np.asarray(self.covars_, float))
            stats["post"] += occupancy
            stats["post_feature"] += occupancy[:, None]
            stats["obs"] += s1
            stats["obs**2"] += s2
            stats["obs*obs.T"] += outer
            return
        stats["post"] += post.sum(axis=0)
        stats["post_feature"] += post.sum(axis=0)[:, None]
        stats["obs"] += post.T @ X
        if "c" in self.params:
            if self.covariance_type in ("spherical", "diag"):
                stats["obs**2"] += post.T @ (X ** 2)
            else:
                for c in range(self.n_components):
                    stats["obs*obs.T"][c] += (X * post[:, c, None]).T @ X

    def _closed_emission_mstep(self, stats):
        """hmmlearn's update, with per-feature occupancies where values were missing
        (diagonal and spherical covariances; full and tied ones have complete statistics)."""
        if not stats["n_missing"] or self.covariance_type not in ("spherical", "diag"):
            return super()._closed_emission_mstep(stats)
        before = self._arrays_copy()
        N = stats["post_feature"]
        mw = np.asarray(self.means_weight, dtype=float)
        mp = np.asarray(self.means_prior, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            if "m" in self.params:
                self.means_ = (mw * mp + stats["obs"]) / (mw + N)
            if "c" in self.params:
                mu = np.asarray(self.means_, dtype=float)
                scatter = (self.covars_prior + mw * (mu - mp) ** 2 + stats["obs**2"]
                           - 2 * mu * stats["obs"] + mu ** 2 * N)
                weight = np.maximum(
                    np.maximum(np.asarray(self.covars_weight, dtype=float) - 1, 0) + N, 1e-5)
                if self.covariance_type == "diag":
                    self._covars_ = scatter / weight
                else:  # one variance over the features: the maximiser of their summed terms
                    var = scatter.sum(axis=1) / weight.sum(axis=1)
                    self._covars_ = np.tile(var[:, None], (1, N.shape[1]))
        self._restore_undetermined(before)

    def _emission_objective(self, stats, idx, n_slots):
        priors = dict(means_prior=self.means_prior, means_weight=self.means_weight,
                      covars_prior=self.covars_prior, covars_weight=self.covars_weight)
        if self.covariance_type in ("spherical", "diag"):
            return gaussian_diag_objective(idx["means"], idx["covars"], stats["post_feature"],
                                           stats["obs"], stats["obs**2"], n_slots=n_slots,
                                           **priors)
        tied = self.covariance_type == "tied"
        if tied:  # one matrix: its prior once (as hmmlearn's 'tied' update counts it)
            priors["covars_prior"] = np.broadcast_to(
                np.asarray(self.covars_prior, dtype=float), (self.n_features,) * 2)[None]
            priors["covars_weight"] = np.asarray(self.covars_weight, dtype=float).reshape(-1)[:1]
        return gaussian_full_objective(
            idx["means"], idx["covars"], stats["post"], stats["obs"], stats["obs*obs.T"],
            n_slots=n_slots, unit_cov=np.zeros(self.n_components, np.intp) if tied else None,
            **priors)


@shares_tie_docs
class TiedPoissonHMM(ReportMixin, TiedHMMMixin, PoissonHMM):
    """Poisson HMM whose states can share emission rates.

    Accepts every argument of :class:`hmmlearn.hmm.PoissonHMM` plus ``tied_states`` and
    ``tied_transitions``; see :class:`TiedGaussianHMM` for the tying semantics.

    Parameters
    ----------
    n_components : int
        Number of states.
    startprob_prior, transmat_prior : float or array
        Dirichlet priors of the start and transition probabilities.
    lambdas_prior, lambdas_weight : float or array
        Gamma prior of the rates (as in hmmlearn).
    algorithm : {"viterbi", "map"}
        Decoder.
    random_state : int, RandomState or None
        Seed of the initialisation.
    n_iter : int
        Maximum number of EM iterations.
    tol : float
        Convergence threshold on the log-likelihood gain.
    verbose : bool
        Print per-iteration reports.
    params, init_params : str
        Letters of the parameters updated / initialised: 's', 't', 'l'.
    implementation : {"log", "scaling"}
        Accepted for compatibility; both use sciTie's guarded scaled forward-backward.
    %(tie_parameters)s

    Attributes
    ----------
    startprob_ : ndarray, shape (n_components,)
        Start distribution.
    transmat_ : ndarray, shape (n_components, n_components)
        Transition matrix.
    lambdas_ : ndarray, shape (n_components, n_features)
        Rates, equal within each tied group.
    """

    family = "poisson"
    _unit_powers = {"lambdas": 1}
    _emission_letters = "l"
    _emission_stats = ("post", "post_feature", "obs")

    def __init__(self, n_components=1, startprob_prior=1.0, transmat_prior=1.0,
                 lambdas_prior=0.0, lambdas_weight=0.0, algorithm="viterbi",
                 random_state=None, n_iter=10, tol=1e-2, verbose=False, params="stl",
                 init_params="stl", implementation="log", *, ties=None, tied_states=None,
                 tied_transitions=None, n_init="auto", start_distribution="free"):
        super().__init__(n_components, startprob_prior=startprob_prior,
                         transmat_prior=transmat_prior, lambdas_prior=lambdas_prior,
                         lambdas_weight=lambdas_weight, algorithm=algorithm,
                         random_state=random_state, n_iter=n_iter, tol=tol, verbose=verbose,
                         params=params, init_params=init_params,
                         implementation=implementation)
        self._store_tie_arguments(ties, tied_states, tied_transitions, n_init,
                                  start_distribution)


    def _placeholder_emissions(self, n_features: int) -> None:
        self.lambdas_ = np.ones((self.n_components, n_features))

    def _emission_params(self):
        return [("lambdas", "l", "lambdas_")]

    def _n_features_of_fit(self):
        lam = getattr(self, "lambdas_", None)
        return None if lam is None else int(np.shape(lam)[1])

    def _prior_names(self):
        return ("lambdas_prior", "lambdas_weight")

    def _nonneutral_priors(self):
        if np.any(np.asarray(self.lambdas_prior, dtype=float) != 0) or np.any(
                np.asarray(self.lambdas_weight, dtype=float) != 0):
            return {"lambdas_prior": self.lambdas_prior, "lambdas_weight": self.lambdas_weight}
        return {}

    def _validate_family_settings(self):
        _check_prior(self.lambdas_prior, "lambdas_prior", nonnegative=True)
        _check_prior(self.lambdas_weight, "lambdas_weight", nonnegative=True)

    def _check_emissions(self):
        lam = _finite(self.lambdas_, "lambdas_")
        if lam.ndim != 2 or lam.shape[0] != self.n_components or np.any(lam < 0):
            raise ValidationError(f"lambdas_ must be non-negative rates of shape "
                                  f"(n_components={self.n_components}, n_features), got "
                                  f"{np.array2string(lam, precision=4)}")

    def _validate_family_X(self, X):
        Xf = np.asarray(X, dtype=np.float64)
        neg = (Xf < 0).any(axis=1)
        if neg.any():
            raise ValidationError(f"X holds negative counts in rows {_rows(neg)}; Poisson "
                                  "observations must be non-negative integers")
        frac = ((Xf != np.round(Xf)) & ~np.isnan(Xf)).any(axis=1)
        if frac.any():
            raise ValidationError(f"X holds non-integer values in rows {_rows(frac)}; Poisson "
                                  "observations must be non-negative integer counts")
        return X if np.issubdtype(np.asarray(X).dtype, np.integer) else Xf

    def _fused_moments(self):
        return 1 if "l" in self.params else 0

    def _supports_missing(self):
        return True

    def _observed_log_likelihood(self, X, mask):
        return _missing.poisson_loglik(X, mask, np.asarray(self.lambdas_, dtype=float))

    def _accumulate_emission_statistics(self, stats, X, post, sums=None, lengths=None):
        if "l" not in self.params:
            return
        if sums is not None:
            stats["post"] += sums[0]
            stats["post_feature"] += sums[0][:, None]
            stats["obs"] += sums[1]
            return
        mask = self._missing_mask(X)
        stats["post"] += post.sum(axis=0)
        if mask is None:
            stats["post_feature"] += post.sum(axis=0)[:, None]
            stats["obs"] += post.T @ X
            return
        occupancy, s1, _ = _missing.diagonal_moments(X, mask, post)
        stats["post_feature"] += occupancy
        stats["obs"] += s1

    def _closed_emission_mstep(self, stats):
        """hmmlearn's update, with per-feature occupancies where counts were missing."""
        if not stats["n_missing"] or "l" not in self.params:
            return super()._closed_emission_mstep(stats)
        before = self._arrays_copy()
        N = stats["post_feature"]
        n = N.sum(axis=0)  # hmmlearn's prior weighting uses the total mass (per feature here)
        with np.errstate(divide="ignore", invalid="ignore"):
            self.lambdas_ = (self.lambdas_prior + n * (stats["obs"] / N)) / (
                self.lambdas_weight + n)
        self._restore_undetermined(before)

    def _emission_objective(self, stats, idx, n_slots):
        return poisson_objective(idx["lambdas"], stats["post_feature"], stats["obs"],
                                 lambdas_prior=self.lambdas_prior,
                                 lambdas_weight=self.lambdas_weight, n_slots=n_slots)


@shares_tie_docs
class TiedCategoricalHMM(ReportMixin, TiedHMMMixin, CategoricalHMM):
    """Categorical HMM whose states can share emission distributions.

    Accepts every argument of :class:`hmmlearn.hmm.CategoricalHMM` plus ``tied_states``
    and ``tied_transitions``; see :class:`TiedGaussianHMM` for the tying semantics.

    Parameters
    ----------
    n_components : int
        Number of states.
    startprob_prior, transmat_prior : float or array
        Dirichlet priors of the start and transition probabilities.
    emissionprob_prior : float or array
        Dirichlet prior of the emission probabilities.
    n_features : int, optional
        Number of symbols (inferred from the data if None).
    algorithm : {"viterbi", "map"}
        Decoder.
    random_state : int, RandomState or None
        Seed of the initialisation.
    n_iter : int
        Maximum number of EM iterations.
    tol : float
        Convergence threshold on the log-likelihood gain.
    verbose : bool
        Print per-iteration reports.
    params, init_params : str
        Letters of the parameters updated / initialised: 's', 't', 'e'.
    implementation : {"log", "scaling"}
        Accepted for compatibility; both use sciTie's guarded scaled forward-backward.
    %(tie_parameters)s

    Attributes
    ----------
    startprob_ : ndarray, shape (n_components,)
        Start distribution.
    transmat_ : ndarray, shape (n_components, n_components)
        Transition matrix.
    emissionprob_ : ndarray, shape (n_components, n_features)
        Symbol probabilities, equal within each tied group.
    """

    family = "categorical"
    _unit_powers = {"emissionprob": 0}
    _emission_letters = "e"
    _emission_stats = ("obs",)

    def __init__(self, n_components=1, startprob_prior=1.0, transmat_prior=1.0, *,
                 emissionprob_prior=1.0, n_features=None, algorithm="viterbi",
                 random_state=None, n_iter=10, tol=1e-2, verbose=False, params="ste",
                 init_params="ste", implementation="log", ties=None, tied_states=None,
                 tied_transitions=None, n_init="auto", start_distribution="free"):
        super().__init__(n_components, startprob_prior=startprob_prior,
                         transmat_prior=transmat_prior,
                         emissionprob_prior=emissionprob_prior, n_features=n_features,
                         algorithm=algorithm, random_state=random_state, n_iter=n_iter,
                         tol=tol, verbose=verbose, params=params, init_params=init_params,
                         implementation=implementation)
        self._store_tie_arguments(ties, tied_states, tied_transitions, n_init,
                                  start_distribution)


    def _placeholder_emissions(self, n_features: int) -> None:
        M = self.n_features or 2
        self.emissionprob_ = np.full((self.n_components, M), 1.0 / M)

    def _emission_params(self):
        return [("emissionprob", "e", "emissionprob_")]

    def _n_features_of_fit(self):
        return None if not hasattr(self, "emissionprob_") else 1

    def _prior_names(self):
        return ("emissionprob_prior",)

    def _nonneutral_priors(self):
        if np.any(np.asarray(self.emissionprob_prior, dtype=float) != 1):
            return {"emissionprob_prior": self.emissionprob_prior}
        return {}

    def _validate_family_settings(self):
        _check_prior(self.emissionprob_prior, "emissionprob_prior", positive=True)
        check_int(self.n_features, "n_features", minimum=1, allow_none=True)

    def _check_emissions(self):
        p = _finite(self.emissionprob_, "emissionprob_")
        if np.any(p < 0):
            raise ValidationError("emissionprob_ must hold probabilities in [0, 1]")

    def _validate_family_X(self, X):
        X = np.asarray(X)
        if X.shape[1] != 1:
            raise ValidationError(f"X must have shape (n_samples, 1) for a categorical HMM (one "
                             f"symbol per row), got {X.shape}")
        missing = np.issubdtype(X.dtype, np.floating) and bool(np.isnan(X).any())
        if not np.issubdtype(X.dtype, np.integer):
            seen = X[~np.isnan(X)] if missing else X
            if not (np.issubdtype(X.dtype, np.floating) and np.all(seen == np.round(seen))):
                raise ValidationError(f"X must hold integer symbols 0..n_features-1, got dtype "
                                 f"{X.dtype} with non-integer values")
            # with missing symbols (NaN) X stays float; the symbols are read where observed
            X = X.astype(np.float64) if missing else X.astype(np.int64)
        neg = X[:, 0] < 0
        if neg.any():
            raise ValidationError(f"X holds negative symbols in rows {_rows(neg)}; symbols must "
                             "be integers 0..n_features-1")
        n_feat = self.n_features
        if n_feat is None and hasattr(self, "emissionprob_"):
            n_feat = np.asarray(self.emissionprob_).shape[1]
        if n_feat is not None:
            big = X[:, 0] >= n_feat
            if big.any():
                raise ValidationError(f"X holds symbols out of range in rows {_rows(big)} "
                                 f"(largest {int(np.nanmax(X))}); this model emits symbols "
                                 f"0..{int(n_feat) - 1} (n_features={int(n_feat)})")
        return X

    def _supports_missing(self):
        return True

    def _start_data(self, X):
        # hmmlearn's start reads integer symbols: a missing one starts as the commonest
        mask = _missing.missing_mask(np.asarray(X))
        return X if mask is None else _missing.start_data(X, mask, fill="mode").astype(np.int64)

    def _observed_log_likelihood(self, X, mask):
        seen = ~mask[:, 0]
        out = np.zeros((X.shape[0], self.n_components))  # a missing symbol: no term
        with np.errstate(divide="ignore"):
            out[seen] = np.log(np.asarray(self.emissionprob_, dtype=float))[
                :, X[seen, 0].astype(np.int64)].T
        return out

    def _accumulate_emission_statistics(self, stats, X, post, sums=None, lengths=None):
        if "e" in self.params:
            stats["obs"] += _missing.symbol_counts(X, post, self.n_features)

    def _emission_objective(self, stats, idx, n_slots):
        counts = np.maximum(self.emissionprob_prior - 1 + stats["obs"], 0)
        counts = np.where(np.asarray(self.emissionprob_) == 0, 0, counts)
        return probability_objective([(idx["emissionprob"], counts)], n_slots)


def _finite(value, name: str) -> np.ndarray:
    """A model array as float64, refusing NaN and infinities (they poison every score)."""
    arr = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValidationError(f"{name} holds NaN or infinite values; set finite parameters "
                              "(or refit)")
    return arr


#: Beyond this magnitude the squares in a Gaussian log-density overflow float64.
_GAUSSIAN_LIMIT = 1e150


def _gaussian_X(X) -> np.ndarray:
    Xf = np.asarray(X, dtype=np.float64)
    big = (np.abs(Xf) > _GAUSSIAN_LIMIT).any(axis=1)
    if big.any():
        raise ValidationError(f"X holds values beyond ±{_GAUSSIAN_LIMIT:g} in rows {_rows(big)}; "
                              "their squares overflow float64: rescale X (e.g. change units)")
    return Xf


def _rows(mask, limit=5):
    rows = np.flatnonzero(mask)
    shown = ", ".join(str(r) for r in rows[:limit])
    return shown + (f", ... ({len(rows)} rows)" if len(rows) > limit else "")


@shares_tie_docs
class TiedGMMHMM(ReportMixin, TiedHMMMixin, GMMHMM):
    """Gaussian-mixture HMM whose states can share one mixture distribution.

    Accepts every argument of :class:`hmmlearn.hmm.GMMHMM` plus ``tied_states`` and
    ``tied_transitions``; a tied group shares weights, means and covariances of all its
    mixture components. See :class:`TiedGaussianHMM` for the tying semantics.

    Parameters
    ----------
    n_components : int
        Number of states.
    n_mix : int
        Number of mixture components per state.
    min_covar : float
        Floor on the covariance diagonal at initialisation.
    startprob_prior, transmat_prior : float or array
        Dirichlet priors of the start and transition probabilities.
    weights_prior, means_prior, means_weight, covars_prior, covars_weight : float or array
        Priors of the mixture parameters, as in hmmlearn (equal within tied groups).
    algorithm : {"viterbi", "map"}
        Decoder.
    covariance_type : {"spherical", "diag", "full", "tied"}
        Covariance structure of the components.
    random_state : int, RandomState or None
        Seed of the initialisation.
    n_iter : int
        Maximum number of EM iterations.
    tol : float
        Convergence threshold on the log-likelihood gain.
    verbose : bool
        Print per-iteration reports.
    params, init_params : str
        Letters of the parameters updated / initialised: 's', 't', 'm', 'c', 'w'.
    implementation : {"log", "scaling"}
        Accepted for compatibility; both use sciTie's guarded scaled forward-backward.
    %(tie_parameters)s

    Attributes
    ----------
    weights_ : ndarray, shape (n_components, n_mix)
        Mixture weights, equal within each tied group.
    means_ : ndarray, shape (n_components, n_mix, n_features)
        Component means, equal within each tied group.
    covars_ : ndarray
        Component covariances, equal within each tied group.
    """

    family = "gmm"
    _unit_powers = {"weights": 0, "means": 1, "covars": 2}
    _emission_letters = "mcw"
    _emission_stats = ("post_mix_sum", "post_sum", "m_n", "c_n")

    def __init__(self, n_components=1, n_mix=1, min_covar=1e-3, startprob_prior=1.0,
                 transmat_prior=1.0, weights_prior=1.0, means_prior=0.0, means_weight=0.0,
                 covars_prior=None, covars_weight=None, algorithm="viterbi",
                 covariance_type="diag", random_state=None, n_iter=10, tol=1e-2,
                 verbose=False, params="stmcw", init_params="stmcw", implementation="log",
                 *, ties=None, tied_states=None, tied_transitions=None, n_init="auto", start_distribution="free"):
        super().__init__(n_components, n_mix=n_mix, min_covar=min_covar,
                         startprob_prior=startprob_prior, transmat_prior=transmat_prior,
                         weights_prior=weights_prior, means_prior=means_prior,
                         means_weight=means_weight, covars_prior=covars_prior,
                         covars_weight=covars_weight, algorithm=algorithm,
                         covariance_type=covariance_type, random_state=random_state,
                         n_iter=n_iter, tol=tol, verbose=verbose, params=params,
                         init_params=init_params, implementation=implementation)
        self._store_tie_arguments(ties, tied_states, tied_transitions, n_init,
                                  start_distribution)


    def _get_n_fit_scalars_per_param(self):
        # hmmlearn 0.3.3 counts nm - 1 mixture weights for the whole model; every state has
        # its own weights row: n_components * (n_mix - 1)
        out = super()._get_n_fit_scalars_per_param()
        out["w"] = self.n_components * (self.n_mix - 1)
        return out

    def _init_mean_groups(self, X, groups) -> bool:
        start = mean_group_start(X, groups, self.n_components, self.n_mix, self.min_covar,
                                 self.random_state)
        if start is None:
            return False
        self.means_ = start.means
        if "w" in self.init_params:
            self.weights_ = start.weights
        if "c" in self.init_params and self.covariance_type != "tied":
            self.covars_ = covariances_of_type(start.covars, self.covariance_type)
        return True

    def _placeholder_emissions(self, n_features: int) -> None:
        K, M, D = self.n_components, self.n_mix, n_features
        self.weights_ = np.full((K, M), 1.0 / M)
        self.means_ = np.zeros((K, M, D))
        self.covars_ = {"spherical": np.ones((K, M)), "diag": np.ones((K, M, D)),
                        "full": np.tile(np.eye(D), (K, M, 1, 1)),
                        "tied": np.tile(np.eye(D), (K, 1, 1))}[self.covariance_type]

    def _emission_params(self):
        return [("weights", "w", "weights_"), ("means", "m", "means_"), ("covars", "c", "covars_")]

    def _is_mixture(self):
        return True

    def _ml_covariance_priors(self) -> bool:
        """Whether the covariance priors are hmmlearn's defaults (which give the ML update)."""
        if self.covars_prior is None and self.covars_weight is None:
            return True
        D, M = self.n_features, self.n_mix
        default = {"full": (0.0, -(1.0 + D + 1.0)), "tied": (0.0, -(M + D + 1.0)),
                   "diag": (-1.5, 0.0), "spherical": (-(M + 2.0) / 2.0, 0.0)}[self.covariance_type]
        return (np.all(np.asarray(self.covars_prior) == default[0])
                and np.all(np.asarray(self.covars_weight) == default[1]))

    def _emission_objective(self, stats, idx, n_slots):
        """Q of the mixture weights and components: each (state, component) a Gaussian unit.

        From hmmlearn's statistics: ``N_km``, ``S1_km`` (``m_n`` less its prior) and the
        scatter about the current means, turned into the scatter about any mean, so the
        means and covariances are maximised jointly (not hmmlearn's conditional step).
        Covariance priors other than hmmlearn's defaults (which are maximum likelihood) are
        refused under general ties.
        """
        if not self._ml_covariance_priors():
            raise ValidationError(
                "TiedGMMHMM: covars_prior/covars_weight other than hmmlearn's defaults are not "
                "supported with ties that are not whole states (use tied_states or the defaults)")
        K, M, D = self.n_components, self.n_mix, self.n_features
        N = np.asarray(stats["post_mix_sum"], dtype=float)
        tau = np.broadcast_to(np.asarray(self.means_weight, dtype=float), (K, M))
        m0 = np.broadcast_to(np.asarray(self.means_prior, dtype=float), (K, M, D))
        mu_old = np.asarray(self.means_, dtype=float)
        S1 = (np.asarray(stats["m_n"], dtype=float) - tau[:, :, None] * m0 if "m_n" in stats
              else N[:, :, None] * mu_old)
        U = K * M
        parts = []
        if "w" in self.params:
            counts = np.maximum(np.asarray(self.weights_prior) - 1 + N, 0)
            counts = np.where(np.asarray(self.weights_) == 0, 0, counts)
            parts.append(probability_objective([(idx["weights"], counts)], n_slots))
        ct = self.covariance_type
        c_n = np.asarray(stats["c_n"], dtype=float) if "c_n" in stats else None
        if ct in ("diag", "spherical"):
            if c_n is None:
                S2 = N[:, :, None] * mu_old ** 2
            elif ct == "diag":
                S2 = c_n + 2 * mu_old * S1 - N[:, :, None] * mu_old ** 2
            else:  # only the sum over features matters for one variance per component
                S2 = np.zeros((K, M, D))
                S2[..., 0] = c_n + np.sum(2 * mu_old * S1 - N[:, :, None] * mu_old ** 2, axis=-1)
            parts.append(gaussian_diag_objective(
                idx["means"].reshape(U, D), idx["covars"].reshape(U, -1), N.reshape(U),
                S1.reshape(U, D), S2.reshape(U, D), means_prior=m0.reshape(U, D),
                means_weight=np.repeat(tau.reshape(U, 1), D, axis=1), covars_prior=0.0,
                covars_weight=1.0, n_slots=n_slots))
        else:
            outer = mu_old[..., :, None] * S1[..., None, :]
            if c_n is None:
                S2 = N[..., None, None] * mu_old[..., :, None] * mu_old[..., None, :]
            elif ct == "full":
                S2 = (c_n + outer + np.swapaxes(outer, -1, -2)
                      - N[..., None, None] * mu_old[..., :, None] * mu_old[..., None, :])
            else:  # 'tied': one scatter per state, summed over its components
                S2 = np.zeros((K, M, D, D))
                S2[:, 0] = c_n + np.sum(outer + np.swapaxes(outer, -1, -2)
                                        - N[..., None, None] * mu_old[..., :, None]
                                        * mu_old[..., None, :], axis=1)
            unit_cov = np.arange(U) if ct == "full" else np.repeat(np.arange(K), M)
            parts.append(gaussian_full_objective(
                idx["means"].reshape(U, D), idx["covars"], N.reshape(U), S1.reshape(U, D),
                S2.reshape(U, D, D), means_prior=m0.reshape(U, D), means_weight=tau.reshape(U),
                covars_prior=0.0, covars_weight=float(D), n_slots=n_slots, unit_cov=unit_cov))
        return sum_objectives(*parts)

    def _n_features_of_fit(self):
        means = getattr(self, "means_", None)
        return None if means is None else int(np.shape(means)[2])

    def _prior_names(self):
        return ("weights_prior", "means_prior", "means_weight", "covars_prior", "covars_weight")

    def _nonneutral_priors(self):
        out = {}
        if np.any(np.asarray(self.weights_prior, dtype=float) != 1):
            out["weights_prior"] = self.weights_prior
        if np.any(np.asarray(self.means_weight, dtype=float) != 0):
            out.update(means_prior=self.means_prior, means_weight=self.means_weight)
        if not self._ml_covariance_priors():
            out.update(covars_prior=self.covars_prior, covars_weight=self.covars_weight)
        return out

    def _validate_family_X(self, X):
        return _gaussian_X(X)

    def _validate_family_settings(self):
        check_choice(self.covariance_type, "covariance_type", ("spherical", "diag", "full", "tied"))
        check_int(self.n_mix, "n_mix", minimum=1)
        check_float(self.min_covar, "min_covar", minimum=0.0, low_open=True)
        _check_prior(self.weights_prior, "weights_prior", positive=True)
        _check_prior(self.means_prior, "means_prior")
        _check_prior(self.means_weight, "means_weight", nonnegative=True)
        _check_prior(self.covars_prior, "covars_prior", allow_none=True)
        _check_prior(self.covars_weight, "covars_weight", allow_none=True)

    def _check_emissions(self):
        for name in ("weights_", "means_", "covars_"):
            _finite(getattr(self, name), name)

    def _supports_missing(self):
        return True

    def _compute_log_likelihood(self, X):
        if self._missing_mask(X) is not None:
            return super()._compute_log_likelihood(X)
        return mixture_log_likelihood(self, X)

    def _observed_log_likelihood(self, X, mask):
        return _missing.mixture_loglik(X, mask, np.asarray(self.weights_, dtype=float),
                                       np.asarray(self.means_, dtype=float),
                                       _missing.mixture_covariances(self))[0]

    def _accumulate_emission_statistics(self, stats, X, post, sums=None, lengths=None):
        mask = self._missing_mask(X)
        if mask is not None:
            _missing.mixture_statistics(stats, X, mask, post, self)
            return
        # the start and transition statistics come from the compiled pass; these are
        # hmmlearn's mixture statistics, for all states at once
        accumulate_mixture_statistics(stats, X, post, self)

    def _correct_pooled_priors(self, pooled):
        if "m_n" in pooled:
            # every state's m_n starts at means_weight * means_prior: keep it once per group
            prior = np.asarray(self.means_weight)[:, :, None] * np.asarray(self.means_prior)
            prior = np.broadcast_to(prior, np.shape(pooled["m_n"]))
            for g in self._plan.partition:
                pooled["m_n"][g] -= (len(g) - 1) * prior[g[0]]
        return pooled
