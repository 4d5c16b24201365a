"""TiedGaussianHMM, TiedPoissonHMM, TiedCategoricalHMM: hmmlearn models with tied states."""
from __future__ import annotations

import numpy as np
from hmmlearn import _emissions, _utils
from hmmlearn.base import BaseHMM
from hmmlearn.hmm import GMMHMM, CategoricalHMM, GaussianHMM, PoissonHMM
from sklearn import cluster

from ._base import TiedHMMMixin
from ._forward_backward import gaussian_diag_loglik
from ._report import ReportMixin

__all__ = ["TiedGaussianHMM", "TiedPoissonHMM", "TiedCategoricalHMM", "TiedGMMHMM"]

class TiedGaussianHMM(ReportMixin, TiedHMMMixin, GaussianHMM):
    """Gaussian HMM whose states can share emission distributions.

    Accepts every argument of :class:`hmmlearn.hmm.GaussianHMM` plus ``tied_states`` and
    ``tied_transitions``. Baum-Welch pools the sufficient statistics over each group of
    tied states, which gives the maximum-likelihood estimate of the tied model. The
    forward-backward pass is sciTie's compiled, underflow-free implementation for both
    values of ``implementation`` (kept for compatibility).

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
    tied_states : sequence of sequences of int, optional
        A partition of the states into groups that share one emission distribution, e.g.
        ``[[0, 1, 2], [3, 4]]``. Default (None): every state alone, exactly hmmlearn.
    tied_transitions : sequence of sequences of int, optional
        Groups of states that share one self-transition probability.

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

    Examples
    --------
    >>> import numpy as np
    >>> from sciTie.hmm import TiedGaussianHMM
    >>> X = np.r_[np.zeros(50), np.ones(50)][:, None] + 0.1
    >>> model = TiedGaussianHMM(3, tied_states=[[0, 1], [2]], random_state=0).fit(X)
    >>> bool(np.allclose(model.means_[0], model.means_[1]))
    True
    """

    _emission_letters = "mc"
    _emission_stats = ("post", "obs", "obs**2", "obs*obs.T")

    def __init__(self, n_components=1, covariance_type="diag", min_covar=1e-3,
                 startprob_prior=1.0, transmat_prior=1.0, means_prior=0, means_weight=0,
                 covars_prior=1e-2, covars_weight=1, algorithm="viterbi", random_state=None,
                 n_iter=10, tol=1e-2, verbose=False, params="stmc", init_params="stmc",
                 implementation="log", *, tied_states=None, tied_transitions=None):
        super().__init__(n_components, covariance_type=covariance_type, min_covar=min_covar,
                         startprob_prior=startprob_prior, transmat_prior=transmat_prior,
                         means_prior=means_prior, means_weight=means_weight,
                         covars_prior=covars_prior, covars_weight=covars_weight,
                         algorithm=algorithm, random_state=random_state, n_iter=n_iter,
                         tol=tol, verbose=verbose, params=params, init_params=init_params,
                         implementation=implementation)
        self.tied_states = tied_states
        self.tied_transitions = tied_transitions

    def _emission_attrs(self):
        return ["means_"] if self.covariance_type == "tied" else ["means_", "_covars_"]

    def _validate_family_X(self, X):
        return np.asarray(X, dtype=np.float64)

    def _init(self, X, lengths=None):
        if all(len(g) == 1 for g in self.state_groups_):
            super()._init(X, lengths)  # exactly hmmlearn
            return
        # hmmlearn's initialisation, with k-means on the groups instead of the states
        BaseHMM._init(self, X, lengths)
        if self._needs_init("m", "means_"):
            km = cluster.KMeans(n_clusters=self.n_groups_, random_state=self.random_state,
                                n_init=10).fit(X)
            self.means_ = km.cluster_centers_[self.state_to_group_].copy()
        if self._needs_init("c", "covars_"):
            cv = np.cov(X.T) + self.min_covar * np.eye(X.shape[1])
            if not cv.shape:
                cv.shape = (1, 1)
            self.covars_ = _utils.distribute_covar_matrix_to_match_covariance_type(
                cv, self.covariance_type, self.n_components).copy()
        self._check_tied_emissions()

    def _init_tied_emissions(self, X):  # pragma: no cover - _init above handles Gaussians
        pass

    def _fused_sums(self):
        return (self.covariance_type in ("spherical", "diag")
                and ("m" in self.params or "c" in self.params))

    def _compute_log_likelihood(self, X):
        if self.covariance_type in ("spherical", "diag"):
            means = np.asarray(self.means_, dtype=np.float64)
            var = np.broadcast_to(np.asarray(self._covars_, dtype=np.float64).reshape(
                self.n_components, -1), means.shape)
            work = getattr(self, "_workspace", None)
            out = gaussian_diag_loglik(X, means, var,
                                       None if work is None else work.get("lp"))
            if work is not None:
                work["lp"] = out
            return out
        return super()._compute_log_likelihood(X)

    def _accumulate_emission_statistics(self, stats, X, post, sums=None):
        if sums is not None:
            stats["post"] += sums[0]
            stats["obs"] += sums[1]
            if "c" in self.params:
                stats["obs**2"] += sums[2]
            return
        if "m" in self.params or "c" in self.params:
            stats["post"] += post.sum(axis=0)
            stats["obs"] += post.T @ X
        if "c" in self.params:
            if self.covariance_type in ("spherical", "diag"):
                stats["obs**2"] += post.T @ (X ** 2)
            else:
                for c in range(self.n_components):
                    stats["obs*obs.T"][c] += (X * post[:, c, None]).T @ X

    def _make_shadow(self, letters):
        sh = GaussianHMM(self.n_groups_, covariance_type=self.covariance_type,
                         min_covar=self.min_covar,
                         means_prior=self._group_prior(self.means_prior, "means_prior"),
                         means_weight=self._group_prior(self.means_weight, "means_weight"),
                         covars_prior=self._group_prior(self.covars_prior, "covars_prior"),
                         covars_weight=self._group_prior(self.covars_weight, "covars_weight"),
                         params=letters, init_params="")
        reps = self._representatives()
        sh.n_features = self.n_features
        sh.means_ = np.array(self.means_[reps])
        sh._covars_ = (np.array(self._covars_) if self.covariance_type == "tied"
                       else np.array(self._covars_[reps]))
        return sh

    def _copy_from_shadow(self, sh, s2g):
        self.means_ = sh.means_[s2g].copy()
        self._covars_ = (sh._covars_.copy() if self.covariance_type == "tied"
                         else sh._covars_[s2g].copy())

    def _count_emission_parameters(self):
        D, G = self.n_features, self.n_groups_
        n = 0
        if "m" in self.params:
            n += G * D
        if "c" in self.params:
            n += {"spherical": G, "diag": G * D, "full": G * D * (D + 1) // 2,
                  "tied": D * (D + 1) // 2}[self.covariance_type]
        return n

    def _emission_params_for_report(self):
        reps = self._representatives()
        out = {"means": np.asarray(self.means_)[reps]}
        if self.covariance_type == "tied":
            out["covars"] = np.asarray(self._covars_)
        else:
            out["covars"] = np.asarray(self._covars_)[reps]
        return out


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
    tied_states : sequence of sequences of int, optional
        A partition of the states into groups that share one rate vector.
    tied_transitions : sequence of sequences of int, optional
        Groups of states that share one self-transition probability.

    Attributes
    ----------
    startprob_ : ndarray, shape (n_components,)
        Start distribution.
    transmat_ : ndarray, shape (n_components, n_components)
        Transition matrix.
    lambdas_ : ndarray, shape (n_components, n_features)
        Rates, equal within each tied group.
    """

    _emission_letters = "l"
    _emission_stats = ("post", "obs")

    def __init__(self, n_components=1, startprob_prior=1.0, transmat_prior=1.0,
                 lambdas_prior=0.0, lambdas_weight=0.0, algorithm="viterbi",
                 random_state=None, n_iter=10, tol=1e-2, verbose=False, params="stl",
                 init_params="stl", implementation="log", *, tied_states=None,
                 tied_transitions=None):
        super().__init__(n_components, startprob_prior=startprob_prior,
                         transmat_prior=transmat_prior, lambdas_prior=lambdas_prior,
                         lambdas_weight=lambdas_weight, algorithm=algorithm,
                         random_state=random_state, n_iter=n_iter, tol=tol, verbose=verbose,
                         params=params, init_params=init_params,
                         implementation=implementation)
        self.tied_states = tied_states
        self.tied_transitions = tied_transitions

    def _emission_attrs(self):
        return ["lambdas_"]

    def _validate_family_X(self, X):
        Xf = np.asarray(X, dtype=np.float64)
        neg = (Xf < 0).any(axis=1)
        if neg.any():
            raise ValueError(f"X holds negative counts in rows {_rows(neg)}; Poisson "
                             "observations must be non-negative integers")
        frac = (Xf != np.round(Xf)).any(axis=1)
        if frac.any():
            raise ValueError(f"X holds non-integer values in rows {_rows(frac)}; Poisson "
                             "observations must be non-negative integer counts")
        return X if np.issubdtype(np.asarray(X).dtype, np.integer) else Xf

    def _init_tied_emissions(self, X):
        if "l" in self.init_params:
            self._broadcast_representatives(["lambdas_"])

    def _fused_sums(self):
        return "l" in self.params

    def _accumulate_emission_statistics(self, stats, X, post, sums=None):
        if sums is not None:
            stats["post"] += sums[0]
            stats["obs"] += sums[1]
            return
        if "l" in self.params:
            stats["post"] += post.sum(axis=0)
            stats["obs"] += post.T @ X

    def _make_shadow(self, letters):
        sh = PoissonHMM(self.n_groups_,
                        lambdas_prior=self._group_prior(self.lambdas_prior, "lambdas_prior"),
                        lambdas_weight=self._group_prior(self.lambdas_weight,
                                                         "lambdas_weight"),
                        params=letters, init_params="")
        sh.n_features = self.n_features
        sh.lambdas_ = np.array(self.lambdas_[self._representatives()])
        return sh

    def _copy_from_shadow(self, sh, s2g):
        self.lambdas_ = sh.lambdas_[s2g].copy()

    def _count_emission_parameters(self):
        return self.n_groups_ * self.n_features if "l" in self.params else 0

    def _emission_params_for_report(self):
        return {"lambdas": np.asarray(self.lambdas_)[self._representatives()]}


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
    tied_states : sequence of sequences of int, optional
        A partition of the states into groups that share one emission distribution.
    tied_transitions : sequence of sequences of int, optional
        Groups of states that share one self-transition probability.

    Attributes
    ----------
    startprob_ : ndarray, shape (n_components,)
        Start distribution.
    transmat_ : ndarray, shape (n_components, n_components)
        Transition matrix.
    emissionprob_ : ndarray, shape (n_components, n_features)
        Symbol probabilities, equal within each tied group.
    """

    _emission_letters = "e"
    _emission_stats = ("obs",)

    def __init__(self, n_components=1, startprob_prior=1.0, transmat_prior=1.0, *,
                 emissionprob_prior=1.0, n_features=None, algorithm="viterbi",
                 random_state=None, n_iter=10, tol=1e-2, verbose=False, params="ste",
                 init_params="ste", implementation="log", tied_states=None,
                 tied_transitions=None):
        super().__init__(n_components, startprob_prior=startprob_prior,
                         transmat_prior=transmat_prior,
                         emissionprob_prior=emissionprob_prior, n_features=n_features,
                         algorithm=algorithm, random_state=random_state, n_iter=n_iter,
                         tol=tol, verbose=verbose, params=params, init_params=init_params,
                         implementation=implementation)
        self.tied_states = tied_states
        self.tied_transitions = tied_transitions

    def _emission_attrs(self):
        return ["emissionprob_"]

    def _validate_family_X(self, X):
        X = np.asarray(X)
        if X.shape[1] != 1:
            raise ValueError(f"X must have shape (n_samples, 1) for a categorical HMM (one "
                             f"symbol per row), got {X.shape}")
        if not np.issubdtype(X.dtype, np.integer):
            if np.issubdtype(X.dtype, np.floating) and np.all(X == np.round(X)):
                X = X.astype(np.int64)
            else:
                raise ValueError(f"X must hold integer symbols 0..n_features-1, got dtype "
                                 f"{X.dtype} with non-integer values")
        neg = X[:, 0] < 0
        if neg.any():
            raise ValueError(f"X holds negative symbols in rows {_rows(neg)}; symbols must "
                             "be integers 0..n_features-1")
        n_feat = self.n_features
        if n_feat is None and hasattr(self, "emissionprob_"):
            n_feat = np.asarray(self.emissionprob_).shape[1]
        if n_feat is not None:
            big = X[:, 0] >= n_feat
            if big.any():
                raise ValueError(f"X holds symbols out of range in rows {_rows(big)} "
                                 f"(largest {int(X.max())}); this model emits symbols "
                                 f"0..{int(n_feat) - 1} (n_features={int(n_feat)})")
        return X

    def _init_tied_emissions(self, X):
        if "e" in self.init_params:
            self._broadcast_representatives(["emissionprob_"])

    def _accumulate_emission_statistics(self, stats, X, post, sums=None):
        if "e" in self.params:
            sym = X[:, 0]
            for k in range(self.n_components):
                stats["obs"][k] += np.bincount(sym, weights=post[:, k],
                                               minlength=self.n_features)

    def _make_shadow(self, letters):
        sh = CategoricalHMM(self.n_groups_, n_features=self.n_features,
                            emissionprob_prior=self._group_prior(self.emissionprob_prior,
                                                                 "emissionprob_prior"),
                            params=letters, init_params="")
        sh.emissionprob_ = np.array(self.emissionprob_[self._representatives()])
        return sh

    def _copy_from_shadow(self, sh, s2g):
        self.emissionprob_ = sh.emissionprob_[s2g].copy()

    def _count_emission_parameters(self):
        if "e" not in self.params:
            return 0
        reps = self._representatives()
        return int(sum(max(np.count_nonzero(row) - 1, 0)
                       for row in np.asarray(self.emissionprob_)[reps]))

    def _emission_params_for_report(self):
        return {"emissionprob": np.asarray(self.emissionprob_)[self._representatives()]}


def _rows(mask, limit=5):
    rows = np.flatnonzero(mask)
    shown = ", ".join(str(r) for r in rows[:limit])
    return shown + (f", ... ({len(rows)} rows)" if len(rows) > limit else "")


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
    tied_states : sequence of sequences of int, optional
        A partition of the states into groups that share one mixture.
    tied_transitions : sequence of sequences of int, optional
        Groups of states that share one self-transition probability.

    Attributes
    ----------
    weights_ : ndarray, shape (n_components, n_mix)
        Mixture weights, equal within each tied group.
    means_ : ndarray, shape (n_components, n_mix, n_features)
        Component means, equal within each tied group.
    covars_ : ndarray
        Component covariances, equal within each tied group.
    """

    _emission_letters = "mcw"
    _emission_stats = ("post_mix_sum", "post_sum", "m_n", "c_n")

    def __init__(self, n_components=1, n_mix=1, min_covar=1e-3, startprob_prior=1.0,
                 transmat_prior=1.0, weights_prior=1.0, means_prior=0.0, means_weight=0.0,
                 covars_prior=None, covars_weight=None, algorithm="viterbi",
                 covariance_type="diag", random_state=None, n_iter=10, tol=1e-2,
                 verbose=False, params="stmcw", init_params="stmcw", implementation="log",
                 *, tied_states=None, tied_transitions=None):
        super().__init__(n_components, n_mix=n_mix, min_covar=min_covar,
                         startprob_prior=startprob_prior, transmat_prior=transmat_prior,
                         weights_prior=weights_prior, means_prior=means_prior,
                         means_weight=means_weight, covars_prior=covars_prior,
                         covars_weight=covars_weight, algorithm=algorithm,
                         covariance_type=covariance_type, random_state=random_state,
                         n_iter=n_iter, tol=tol, verbose=verbose, params=params,
                         init_params=init_params, implementation=implementation)
        self.tied_states = tied_states
        self.tied_transitions = tied_transitions

    def _emission_attrs(self):
        return ["weights_", "means_", "covars_"]

    def _validate_family_X(self, X):
        return np.asarray(X, dtype=np.float64)

    def _init_tied_emissions(self, X):
        names = [n for n, c in (("weights_", "w"), ("means_", "m"), ("covars_", "c"))
                 if c in self.init_params]
        self._broadcast_representatives(names)

    def _accumulate_emission_statistics(self, stats, X, post, sums=None):
        # hmmlearn's own GMM statistics, with its start/transition part switched off (the
        # compiled pass has already produced those)
        saved, nobs = self.params, stats["nobs"]
        try:
            self.params = "".join(c for c in saved if c not in "st")
            _emissions.BaseGMMHMM._accumulate_sufficient_statistics(
                self, stats, X, None, post, None, None)
        finally:
            self.params = saved
        stats["nobs"] = nobs

    def _pooled_emission_stats(self, stats):
        pooled = super()._pooled_emission_stats(stats)
        if "m_n" in pooled:
            # every state's m_n starts at means_weight * means_prior: keep it once per group
            reps = self._representatives()
            sizes = np.array([len(g) for g in self.state_groups_], dtype=float)
            prior = (np.asarray(self.means_weight)[:, :, None]
                     * np.asarray(self.means_prior))[reps]
            pooled["m_n"] = pooled["m_n"] - (sizes - 1)[:, None, None] * prior
        return pooled

    def _make_shadow(self, letters):
        reps = self._representatives()
        sh = GMMHMM(self.n_groups_, n_mix=self.n_mix, min_covar=self.min_covar,
                    weights_prior=self._group_prior(self.weights_prior, "weights_prior"),
                    means_prior=self._group_prior(self.means_prior, "means_prior"),
                    means_weight=self._group_prior(self.means_weight, "means_weight"),
                    covars_prior=self._group_prior(self.covars_prior, "covars_prior"),
                    covars_weight=self._group_prior(self.covars_weight, "covars_weight"),
                    covariance_type=self.covariance_type, params=letters, init_params="")
        sh.n_features = self.n_features
        sh.weights_ = np.array(self.weights_[reps])
        sh.means_ = np.array(self.means_[reps])
        sh.covars_ = np.array(self.covars_[reps])
        return sh

    def _copy_from_shadow(self, sh, s2g):
        self.weights_ = sh.weights_[s2g].copy()
        self.means_ = sh.means_[s2g].copy()
        self.covars_ = sh.covars_[s2g].copy()

    def _count_emission_parameters(self):
        G, M, D = self.n_groups_, self.n_mix, self.n_features
        n = 0
        if "w" in self.params:
            reps = self._representatives()
            n += int(sum(max(np.count_nonzero(row) - 1, 0)
                         for row in np.asarray(self.weights_)[reps]))
        if "m" in self.params:
            n += G * M * D
        if "c" in self.params:
            n += G * {"spherical": M, "diag": M * D, "full": M * D * (D + 1) // 2,
                      "tied": D * (D + 1) // 2}[self.covariance_type]
        return n

    def _emission_params_for_report(self):
        reps = self._representatives()
        return {"weights": np.asarray(self.weights_)[reps],
                "means": np.asarray(self.means_)[reps],
                "covars": np.asarray(self.covars_)[reps]}
