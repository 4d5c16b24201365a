"""What every tied HMM shares: the tie structure, the compiled E-step, the pooled M-step."""
from __future__ import annotations

import numpy as np
from hmmlearn.base import BaseHMM
from sklearn.utils.validation import check_is_fitted

from . import _distributed
from . import _forward_backward as fb
from ._tying import (count_transition_parameters, tied_transition_mstep, tying_group,
                     validate_partition, validate_transition_groups)

__all__ = ["TiedHMMMixin"]


def _first_bad_rows(mask: np.ndarray, limit: int = 5) -> str:
    rows = np.flatnonzero(mask)
    shown = ", ".join(str(r) for r in rows[:limit])
    return shown + (f", ... ({len(rows)} rows)" if len(rows) > limit else "")


class TiedHMMMixin:
    """Tied emissions and tied self-loops on top of an hmmlearn HMM class.

    Subclasses set ``_emission_letters`` (the ``params`` letters of the emission
    parameters), ``_emission_attrs`` (per-state emission arrays), ``_emission_stats``
    (per-state statistics keys) and implement ``_make_shadow``,
    ``_accumulate_emission_statistics``, ``_count_emission_parameters``,
    ``_validate_family_X``, ``_init_tied_emissions`` and ``_emission_params_for_report``.
    """

    _emission_letters: str = ""
    _emission_stats: tuple[str, ...] = ()

    # ------------------------------------------------------------------ tie structure
    @property
    def state_groups_(self) -> list[list[int]]:
        """The emission groups (a validated partition of the states)."""
        return validate_partition(self.tied_states, self.n_components)

    @property
    def transition_groups_(self) -> list[list[int]]:
        """Groups of states with one shared self-loop probability (groups of >= 2)."""
        return validate_transition_groups(self.tied_transitions, self.n_components)

    @property
    def n_groups_(self) -> int:
        """Number of emission groups (observable levels)."""
        return len(self.state_groups_)

    @property
    def state_to_group_(self) -> np.ndarray:
        """Group index of each state."""
        out = np.empty(self.n_components, dtype=np.int64)
        for gi, g in enumerate(self.state_groups_):
            out[g] = gi
        return out

    def tying_group(self):
        """The state tying as a :class:`sciTie.ParameterGroup` (slots ``state[k]``).

        Returns
        -------
        sciTie.ParameterGroup
            One slot per state, tied to the first state of its group.
        """
        return tying_group(self.state_groups_, self.n_components)

    def tie_matrix(self):
        """State-to-group tie matrix G, shape (n_components, n_groups).

        Per-state emission parameters are ``G @ group_parameters``; the M-step pools the
        per-state sufficient statistics as ``G.T @ statistics``.

        Returns
        -------
        scipy.sparse.csr_matrix
            The tie matrix.
        """
        return self.tying_group().tie_matrix()

    def _is_untied(self) -> bool:
        return (all(len(g) == 1 for g in self.state_groups_)
                and not self.transition_groups_)

    def _emission_attrs(self) -> list[str]:
        raise NotImplementedError

    def _representatives(self) -> np.ndarray:
        return np.array([g[0] for g in self.state_groups_], dtype=np.int64)

    def _group_prior(self, value, name: str):
        """A per-state prior reduced to one value per group (must agree within groups)."""
        if value is None or np.ndim(value) == 0:
            return value
        arr = np.asarray(value)
        if arr.shape[0] != self.n_components:
            return value
        for g in self.state_groups_:
            if not all(np.array_equal(arr[g[0]], arr[s]) for s in g[1:]):
                raise ValueError(f"{name} differs between the tied states {g}; a tied group "
                                 "has one prior, so give the same value for its states")
        return arr[self._representatives()]

    def _check_tied_emissions(self) -> None:
        for name in self._emission_attrs():
            arr = np.asarray(getattr(self, name))
            for g in self.state_groups_:
                if not all(np.array_equal(arr[g[0]], arr[s]) for s in g[1:]):
                    raise ValueError(
                        f"{name.lstrip('_')} differs between the tied states {g}; set equal "
                        f"values or let fit initialise them (init_params containing "
                        f"{self._emission_letters!r})")

    def _broadcast_representatives(self, names) -> None:
        reps = self._representatives()[self.state_to_group_]
        for name in names:
            setattr(self, name, np.asarray(getattr(self, name))[reps].copy())

    # ------------------------------------------------------------------ input checks
    def _validate_X(self, X, lengths):
        """Check X and lengths; return ``(X, lengths)`` as arrays."""
        if X is None:
            raise TypeError("X must be an array of shape (n_samples, n_features), got None")
        X = np.asarray(X)
        if X.dtype == object or not (np.issubdtype(X.dtype, np.number)
                                     or X.dtype == np.bool_):
            raise TypeError(f"X must be numeric, got an array of dtype {X.dtype}")
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D with shape (n_samples, n_features), got shape "
                             f"{X.shape}; reshape a single feature with X[:, None]")
        if X.shape[0] == 0:
            raise ValueError("X is empty (0 samples)")
        if np.issubdtype(X.dtype, np.floating) or np.issubdtype(X.dtype, np.complexfloating):
            bad = ~np.isfinite(X).all(axis=1)
            if bad.any():
                raise ValueError(f"X contains NaN or inf in rows {_first_bad_rows(bad)}; "
                                 "remove or impute them (an HMM needs finite observations)")
        X = self._validate_family_X(X)
        n = X.shape[0]
        if lengths is None:
            lengths = np.array([n], dtype=np.int64)
        else:
            lengths_arr = np.asarray(lengths)
            if lengths_arr.ndim != 1 or lengths_arr.size == 0:
                raise ValueError(f"lengths must be a non-empty 1-D sequence of sequence "
                                 f"lengths, got shape {lengths_arr.shape}")
            if not np.issubdtype(lengths_arr.dtype, np.integer):
                if (np.issubdtype(lengths_arr.dtype, np.floating)
                        and np.all(lengths_arr == np.round(lengths_arr))):
                    lengths_arr = lengths_arr.astype(np.int64)
                else:
                    raise TypeError(f"lengths must hold integers, got dtype "
                                    f"{lengths_arr.dtype}")
            if (lengths_arr <= 0).any():
                raise ValueError(f"lengths must be positive, got {lengths_arr.tolist()[:10]}")
            if int(lengths_arr.sum()) != n:
                raise ValueError(f"lengths sum to {int(lengths_arr.sum())} but X has {n} "
                                 "rows; the sequence lengths must add up to len(X)")
            lengths = lengths_arr.astype(np.int64)
        return X, lengths

    def _validate_family_X(self, X):
        return X

    # ------------------------------------------------------------------ E-step
    def _do_estep(self, X, lengths):
        X, lengths = np.asarray(X), np.asarray(lengths, dtype=np.int64)
        log_frameprob = self._compute_log_likelihood(X)
        X_sums = X if self._fused_sums() else None
        log_prob, post, xi, sums = fb.forward_backward_stats(
            self.startprob_, self.transmat_, log_frameprob, lengths, X_sums,
            workspace=getattr(self, "_workspace", None))
        stats = self._initialize_sufficient_statistics()
        stats["nobs"] = len(lengths)
        if "s" in self.params:
            starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
            stats["start"] += post[starts].sum(axis=0)
        if "t" in self.params:
            stats["trans"] += xi
        self._accumulate_emission_statistics(stats, X, post, sums)
        return stats, log_prob

    def _fused_sums(self) -> bool:
        """Whether the backward pass should accumulate weighted sums of X and X**2."""
        return False

    # ------------------------------------------------------------------ M-step
    def _do_mstep(self, stats):
        if self._is_untied():
            super()._do_mstep(stats)  # exactly hmmlearn
            return
        self._mstep_transitions(stats)
        self._mstep_emissions(stats)

    def _mstep_transitions(self, stats):
        groups = self.transition_groups_
        if not groups:
            BaseHMM._do_mstep(self, stats)
            return
        if "s" in self.params:
            startprob_ = np.maximum(self.startprob_prior - 1 + stats["start"], 0)
            startprob_ = np.where(self.startprob_ == 0, 0, startprob_)
            if startprob_.sum() > 0:
                self.startprob_ = startprob_ / startprob_.sum()
        if "t" in self.params:
            counts = np.maximum(self.transmat_prior - 1 + stats["trans"], 0)
            self.transmat_ = tied_transition_mstep(counts, self.transmat_, groups)

    def _pooled_emission_stats(self, stats) -> dict:
        tying = self.tying_group()
        pooled = dict(stats)
        for key in self._emission_stats:
            if key in stats:
                pooled[key] = tying.pool(stats[key])  # G.T @ stats
        return pooled

    def _mstep_emissions(self, stats):
        letters = "".join(c for c in self._emission_letters if c in self.params)
        if not letters:
            return
        shadow = self._make_shadow(letters)
        shadow._do_mstep(self._pooled_emission_stats(stats))
        self._copy_from_shadow(shadow, self.state_to_group_)

    # ------------------------------------------------------------------ fit / score / decode
    def fit(self, X, lengths=None, *, client=None):
        """Estimate the model parameters with the pooled Baum-Welch algorithm.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
            Observations of all sequences, stacked. With ``client``, also a dask array or a
            list of ``.npy``/netCDF/zarr files that the workers read (one sequence per file
            unless ``lengths`` is given).
        lengths : array-like of int, optional
            Lengths of the sequences in ``X`` (summing to ``n_samples``).
        client : dask.distributed.Client, optional
            Run the E-step on this Dask cluster, where the sequences live; the M-step and
            the convergence monitor run here and give the in-process result to rounding.

        Returns
        -------
        self
            The fitted model.
        """
        if client is not None:
            return _distributed.fit(self, X, lengths, client=client)
        self.state_groups_  # noqa: B018  (validates tied_states early)
        self.transition_groups_  # noqa: B018
        X, lengths = self._validate_X(X, lengths)
        self._workspace = {}  # scratch arrays reused by every EM iteration
        try:
            return super().fit(X, lengths)
        finally:
            del self._workspace

    def _init(self, X, lengths=None):
        super()._init(X, lengths)
        if not all(len(g) == 1 for g in self.state_groups_):
            self._init_tied_emissions(X)
            self._check_tied_emissions()

    def _score(self, X, lengths=None, *, compute_posteriors):
        check_is_fitted(self, "startprob_")
        self._check()
        X, lengths = self._validate_X(X, lengths)
        log_frameprob = self._compute_log_likelihood(X)
        if compute_posteriors:
            log_prob, post, _ = fb.forward_backward(self.startprob_, self.transmat_,
                                                    log_frameprob, lengths)
            return log_prob, post
        log_prob = fb.forward_loglik(self.startprob_, self.transmat_, log_frameprob, lengths)
        return log_prob, np.empty((0, self.n_components))

    def score(self, X, lengths=None, *, client=None):
        """Log-likelihood of ``X`` under the model.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
            Observations; with ``client``, also a dask array or a list of files.
        lengths : array-like of int, optional
            Sequence lengths.
        client : dask.distributed.Client, optional
            Compute on this Dask cluster.

        Returns
        -------
        float
            ``log p(X)``.
        """
        if client is not None:
            return _distributed.score(self, X, lengths, client=client)
        return super().score(X, lengths)

    def predict(self, X, lengths=None, *, client=None):
        """Most likely states (the model's ``algorithm``: Viterbi or posterior maxima).

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
            Observations; with ``client``, also a dask array or a list of files.
        lengths : array-like of int, optional
            Sequence lengths.
        client : dask.distributed.Client, optional
            Decode on this Dask cluster; the result is then a dask array kept there.

        Returns
        -------
        ndarray or dask.array.Array of int, shape (n_samples,)
            The decoded states.
        """
        if client is not None:
            return _distributed.predict(self, X, lengths, client=client)
        return super().predict(X, lengths)

    def predict_proba(self, X, lengths=None, *, client=None):
        """State posteriors ``P(state_t | X)``.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
            Observations; with ``client``, also a dask array or a list of files.
        lengths : array-like of int, optional
            Sequence lengths.
        client : dask.distributed.Client, optional
            Compute on this Dask cluster; the result is then a dask array kept there.

        Returns
        -------
        ndarray or dask.array.Array, shape (n_samples, n_components)
            The posteriors.
        """
        if client is not None:
            return _distributed.predict_proba(self, X, lengths, client=client)
        return super().predict_proba(X, lengths)

    def decode(self, X, lengths=None, algorithm=None):
        """Most likely state sequence (Viterbi, log space) or per-step posterior maxima.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
            Observations.
        lengths : array-like of int, optional
            Sequence lengths.
        algorithm : {"viterbi", "map"}, optional
            Decoder; defaults to the model's ``algorithm``.

        Returns
        -------
        log_prob : float
            Log-probability of the decoded path ("viterbi") or the sum of the log of the
            largest posteriors ("map"), as in hmmlearn.
        state_sequence : ndarray of int, shape (n_samples,)
            Decoded states.
        """
        check_is_fitted(self, "startprob_")
        self._check()
        algorithm = algorithm or self.algorithm
        if algorithm not in ("viterbi", "map"):
            raise ValueError(f"algorithm must be 'viterbi' or 'map', got {algorithm!r}")
        X, lengths = self._validate_X(X, lengths)
        if algorithm == "viterbi":
            return fb.viterbi(self.startprob_, self.transmat_,
                              self._compute_log_likelihood(X), lengths)
        _, post = self._score(X, lengths, compute_posteriors=True)
        return float(np.log(post.max(axis=1)).sum()), post.argmax(axis=1)

    # ------------------------------------------------------------------ model choice
    def n_free_parameters(self) -> int:
        """Number of parameters actually fitted, after tying.

        Counts only the letters in ``params``; structural zeros of ``startprob_`` and
        ``transmat_`` are not parameters; a tied group of states has one set of emission
        parameters and a tied group of self-loops one probability.

        Returns
        -------
        int
            The free-parameter count used by :meth:`aic` and :meth:`bic`.
        """
        check_is_fitted(self, "startprob_")
        n_s, n_t = count_transition_parameters(
            self.startprob_ if "s" in self.params else None,
            self.transmat_ if "t" in self.params else None, self.transition_groups_)
        return int(n_s + n_t + self._count_emission_parameters())

    def aic(self, X, lengths=None):
        """Akaike information criterion ``-2 log L + 2 k`` with k from :meth:`n_free_parameters`.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
            Observations.
        lengths : array-like of int, optional
            Sequence lengths.

        Returns
        -------
        float
            The AIC (lower is better).
        """
        return -2 * self.score(X, lengths) + 2 * self.n_free_parameters()

    def bic(self, X, lengths=None):
        """Bayesian information criterion ``-2 log L + k log n`` (n = number of samples).

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
            Observations.
        lengths : array-like of int, optional
            Sequence lengths.

        Returns
        -------
        float
            The BIC (lower is better).
        """
        return (-2 * self.score(X, lengths)
                + self.n_free_parameters() * np.log(np.asarray(X).shape[0]))
