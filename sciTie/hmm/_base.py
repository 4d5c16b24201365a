"""What every tied HMM shares: its ParameterGroup, the compiled E-step, the M-step through G."""
from __future__ import annotations

import contextlib
import copy
import logging
import time
import warnings

import numpy as np

from .._progress import progress_bar
from .._validation import check_choice, check_int, check_random_state
from ..core import FitResult
from ..core.maximize import maximize_through_ties
from ..core.threads import one_thread
from ..errors import ArgumentTypeError, ConvergenceWarning, ValidationError, not_fitted
from . import _forward_backward as fb
from . import _missing
from ._covariates import CovariateTransitionsMixin, forward_backward_tv, viterbi_tv
from ._group import (PROBABILITY_PARAMS, _user_statements, build_group,
                     finalise_probabilities, model_slots, user_held, write_arrays)
from ._objectives import probability_objective, probability_start
from ._sequences import check_lengths, check_sample_matrix
from ._start import match_clusters_to_states, restart_seeds, untied_labels

__all__ = ["TiedHMMMixin", "AUTO_STARTS"]

#: A first state whose likelihood, the other parameters held, is within this many log-units
#: of the best is tried by EM after the fit of one sequence (``_other_first_states``).
FIRST_STATE_MARGIN = 10.0
#: Starts a model with ties gets from ``n_init="auto"`` (an untied model gets one: hmmlearn's).
AUTO_STARTS = 10

#: hmmlearn's logger: EM's warnings go where hmmlearn's own fit sends them
_hmmlearn_log = logging.getLogger("hmmlearn.base")


def _first_bad_rows(mask: np.ndarray, limit: int = 5) -> str:
    rows = np.flatnonzero(mask)
    shown = ", ".join(str(r) for r in rows[:limit])
    return shown + (f", ... ({len(rows)} rows)" if len(rows) > limit else "")


#: The tie arguments every tied HMM takes, for the classes' docstrings (``%(tie_parameters)s``).
TIE_PARAMETERS_DOC = """ties : str, sequence of str or ParameterGroup, optional
    Ties on any parameter, as statements in the core's syntax over the model's own
    names (``startprob``, ``transmat`` and the emission parameters below), e.g.
    ``["means[1] = means[0]"]`` or ``["covars[1] = phi * means[1]"]`` (a name that is not
    a parameter, ``phi``, becomes a new free parameter), or a ParameterGroup with
    parameters named like the model's. Each M-step maximises the expected
    log-likelihood under the ties through the model's group (``group_``).
tied_states : sequence of sequences of int, optional
    A partition of the states into groups that share their whole emission distribution,
    e.g. ``[[0, 1, 2], [3, 4]]``. Default (None): every state alone, exactly hmmlearn.
tied_transitions : sequence of sequences of int, optional
    Groups of states that share one self-transition probability.
n_init : int or "auto", default "auto"
    Number of starts; the fit with the highest log-likelihood is kept and every start's
    is recorded in ``starts_``. "auto": one start for a model
    without ties (exactly hmmlearn's fit), ``AUTO_STARTS`` (10) with ties. A tied model
    starts in the tied space (see :mod:`sciTie.hmm` and the docs, "How a fit starts").
start_distribution : {"free", "stationary"}, default "free"
    "free": ``startprob_`` is fitted (hmmlearn's model). "stationary": the chain starts
    in the stationary distribution of ``transmat_`` (regime-switching models in
    econometrics); ``startprob`` is then a function of ``transmat`` in ``group_`` and
    the M-step maximises the start term through it."""


def shares_tie_docs(cls: type) -> type:
    """Class decorator: the docstring's ``%(tie_parameters)s`` becomes
    :data:`TIE_PARAMETERS_DOC`, indented as a numpydoc parameter list."""
    text = "\n".join("    " + line if line else line
                     for line in TIE_PARAMETERS_DOC.splitlines())
    cls.__doc__ = (cls.__doc__ or "").replace("    %(tie_parameters)s", text)
    return cls


class TiedHMMMixin(CovariateTransitionsMixin):
    """Ties on any parameter of an hmmlearn HMM class, through one ParameterGroup.

    Subclasses declare their emission parameters (:meth:`_emission_params`), how to validate
    X for the family, how to accumulate emission statistics, and the family's objective for
    the general M-step (:meth:`_emission_objective`).
    """

    #: The family's name in recipes and on the command line (see :mod:`sciTie.hmm._family`).
    family: str | None = None
    #: Power of the observations' unit each emission parameter carries (reports, netCDF).
    _unit_powers: dict[str, int] = {}
    _emission_letters: str = ""
    #: ``params`` letters of parameters outside the emissions and transitions (dwell times).
    _duration_letters: str = ""
    _emission_stats: tuple[str, ...] = ()

    def _store_tie_arguments(self, ties, tied_states, tied_transitions, n_init,
                             start_distribution) -> None:
        """``__init__``'s part for the arguments every tied HMM adds (stored as given)."""
        self.ties = ties
        self.tied_states = tied_states
        self.tied_transitions = tied_transitions
        self.n_init = n_init
        self.start_distribution = start_distribution

    # ------------------------------------------------------------------ family hooks
    def _emission_params(self) -> list[tuple[str, str, str]]:
        """(group name, ``params`` letter, attribute) of each emission parameter."""
        raise NotImplementedError

    def _is_mixture(self) -> bool:
        return False

    def _duration_params(self) -> list[tuple[str, str, str]]:
        """(group name, ``params`` letter, attribute) of each dwell-time parameter (a hidden
        semi-Markov model's, :mod:`._hsmm`); none in an HMM."""
        return []

    def _duration_bounds(self, name: str) -> tuple:
        """Domain ``(lower, upper)`` of dwell-time parameter ``name``."""
        raise NotImplementedError

    def _level_dwell_distribution(self, states, d_max: int) -> np.ndarray:
        """``P(dwell = d)``, ``d = 1..d_max``, of a visit to the level made of ``states``
        (a phase-type law of the transitions; :func:`._plots.level_dwell_distribution`)."""
        from ._plots import level_dwell_distribution

        return level_dwell_distribution(self.transmat_, states, d_max)

    def _init_structure(self, X, lengths) -> None:
        """After hmmlearn's start, before the group is built: arrays a subclass adds or
        constrains (a semi-Markov model's dwell times and zero self-transitions)."""

    def _get_param(self, name: str) -> np.ndarray:
        """The model array behind emission parameter ``name`` (as the group sees it)."""
        attr = {n: a for n, _, a in self._emission_params()}[name]
        return np.asarray(getattr(self, attr))

    def _set_param(self, name: str, value: np.ndarray) -> None:
        attr = {n: a for n, _, a in self._emission_params()}[name]
        setattr(self, attr, value)

    def _supports_pooling(self) -> bool:
        return True

    def _supports_general_ties(self) -> bool:
        return True

    def _emission_objective(self, stats, idx, n_slots):  # pragma: no cover - per family
        raise NotImplementedError

    def _validate_family_X(self, X):
        return X

    def _validate_family_settings(self) -> None:
        """Family-specific constructor arguments (priors, covariance type ...)."""

    def _check_emissions(self) -> None:
        """Shapes and values of the emission arrays before a compiled kernel reads them."""

    def _n_features_of_fit(self) -> int | None:
        return None

    def _placeholder_emissions(self, n_features: int) -> None:
        """Emission arrays of the right shapes (any valid values), so that the group and
        the ties of a model can be checked before data are fitted."""
        raise NotImplementedError

    def _log_frames(self, X: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """The frame log-likelihoods the forward-backward pass uses: the family's, with
        ``-inf`` for every other state on rows whose state is known (``known_states``)."""
        out = self._frame_log_likelihood(X, lengths)
        known = getattr(self, "_known", None)
        if known is None:
            return out
        if len(known) != len(out):
            raise ValidationError(f"known_states has {len(known)} entries but X has {len(out)} "
                                  "rows; give one state (or -1) per row")
        rows = np.flatnonzero(known >= 0)
        out = np.array(out, dtype=float, copy=True)
        keep = out[rows, known[rows]]
        out[rows] = -np.inf
        out[rows, known[rows]] = keep
        return out

    @contextlib.contextmanager
    def _states_known(self, known_states):
        """``known_states`` (one state per row, -1 where unknown) in force for one call; on a
        cluster each partition carries its own rows of them (:mod:`._distributed`)."""
        if known_states is None:
            yield
            return
        z = np.asarray(known_states)
        if z.ndim != 1 or not (np.issubdtype(z.dtype, np.integer)
                               or (np.issubdtype(z.dtype, np.floating)
                                   and np.all(z == np.round(z)))):
            raise ValidationError("known_states must be a 1-D array of integers (a state "
                                  f"index, or -1 where the state is unknown), got shape "
                                  f"{z.shape} and dtype {z.dtype}")
        z = z.astype(np.int64)
        bad = (z < -1) | (z >= self.n_components)
        if bad.any():
            raise ValidationError(f"known_states must be -1 (unknown) or a state index "
                                  f"0..{self.n_components - 1}; rows {_first_bad_rows(bad)} "
                                  f"hold {sorted(set(z[bad].tolist()))[:5]}")
        self._known = z
        try:
            yield
        except fb.ImpossibleObservationError as exc:
            raise ValidationError(f"the known states are impossible under this model ({exc}); "
                                  "a known state needs a non-zero start or transition "
                                  "probability from its neighbours' states") from None
        finally:
            del self._known

    # ------------------------------------------------------------------ missing values
    def _supports_missing(self) -> bool:
        """Whether NaN in X (a missing value) is accepted (see :mod:`sciTie.hmm._missing`)."""
        return False

    def _missing_refusal(self) -> str:
        """Why a family refuses missing values, appended to the error (": reason")."""
        return ""

    def _missing_mask(self, X: np.ndarray) -> np.ndarray | None:
        """Where X is missing, or None; computed once per data array during a fit (the
        fit's ``_workspace`` holds the array, so identity cannot be a reused address)."""
        work = getattr(self, "_workspace", None)
        if work is not None and work.get("missing_X") is X:
            return work["missing"]
        mask = _missing.missing_mask(np.asarray(X))
        if work is not None:
            work["missing_X"], work["missing"] = X, mask
        return mask

    def _compute_log_likelihood(self, X):
        mask = self._missing_mask(X) if self._supports_missing() else None
        if mask is not None:
            return self._observed_log_likelihood(X, mask)
        return super()._compute_log_likelihood(X)

    def _observed_log_likelihood(self, X: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """``log p(observed entries of x_t | state)``, (n_samples, n_components), of X with
        missing entries ``mask`` (a row with nothing observed: 0); families that support
        missing values implement it."""
        raise NotImplementedError

    def _start_data(self, X: np.ndarray) -> np.ndarray:
        """The data a fit starts from: X, with missing entries filled by their feature's
        mean over the observed rows (only the start sees them; EM uses the observed data)."""
        mask = _missing.missing_mask(np.asarray(X))
        return X if mask is None else _missing.start_data(X, mask)

    def _frame_log_likelihood(self, X: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """``log p(x_t | state)`` of every row, shape (n_samples, n_components).

        hmmlearn's ``_compute_log_likelihood`` sees one sequence at a time; this hook sees
        them all with their lengths, for families whose emissions read earlier rows of the
        same sequence (autoregressive emissions).
        """
        return self._compute_log_likelihood(X)

    # ------------------------------------------------------------------ tie structure
    @property
    def state_groups_(self) -> list[list[int]]:
        """States whose whole emission distributions are tied by equality (a partition)."""
        self._require_fitted("state_groups_")
        return [list(g) for g in self._plan.partition]

    @property
    def n_groups_(self) -> int:
        """Number of emission groups (observable levels)."""
        return len(self.state_groups_)

    @property
    def state_to_group_(self) -> np.ndarray:
        """Emission group of each state."""
        out = np.empty(self.n_components, dtype=np.int64)
        for gi, g in enumerate(self.state_groups_):
            out[g] = gi
        return out

    def _require_fitted(self, what: str = "") -> None:
        if not hasattr(self, "group_"):
            raise not_fitted(self, what)

    def _require_parameters(self, what: str = "") -> None:
        """Scoring and decoding need parameters: fitted, or set by hand as in hmmlearn.

        Their shapes and values are checked here, before any compiled kernel (which does no
        bounds checks) reads them.
        """
        if not hasattr(self, "startprob_"):
            raise not_fitted(self, what)
        try:
            self._check()  # hmmlearn's own checks (lengths, rows summing to one)
        except ValueError as exc:
            raise ValidationError(f"{type(self).__name__} cannot {what or 'run'}: {exc}") from None
        for name in ("startprob_", "transmat_"):
            arr = np.asarray(getattr(self, name), dtype=float)
            if not np.all(np.isfinite(arr)) or np.any(arr < 0):
                raise ValidationError(f"{name} must hold probabilities in [0, 1], got "
                                      f"{np.array2string(arr, precision=4)}")
        self._check_emissions()

    # ------------------------------------------------------------------ input checks
    def _validate_settings(self) -> None:
        K = self.n_components
        if isinstance(K, (bool, np.bool_)) or not isinstance(K, (int, np.integer)) or K < 1:
            raise ValidationError(f"n_components must be a positive integer, got {K!r}")
        n_iter = self.n_iter
        if isinstance(n_iter, (bool, np.bool_)) or not isinstance(n_iter, (int, np.integer)) \
                or n_iter < 0:
            raise ValidationError(f"n_iter must be a non-negative integer, got {n_iter!r}")
        if not isinstance(self.tol, (int, float, np.floating, np.integer)) or np.isnan(self.tol):
            raise ValidationError(f"tol must be a number (-inf runs all n_iter iterations), "
                                  f"got {self.tol!r}")
        for name in ("params", "init_params"):
            value = getattr(self, name)
            allowed = "st" + self._emission_letters + self._duration_letters
            if not isinstance(value, str) or set(value) - set(allowed):
                raise ValidationError(f"{name} must be a string of the letters {allowed!r}, got "
                                      f"{value!r}")
        check_choice(self.algorithm, "algorithm", ("viterbi", "map"))
        check_choice(self.implementation, "implementation", ("log", "scaling"))
        if not isinstance(self.verbose, (bool, np.bool_, int, np.integer)):
            raise ArgumentTypeError(f"verbose must be True or False, got {self.verbose!r}")
        check_random_state(self.random_state)
        if not (isinstance(self.n_init, str) and self.n_init == "auto"):
            check_int(self.n_init, "n_init", minimum=1)
        check_choice(self.start_distribution, "start_distribution", ("free", "stationary"))
        for name in ("startprob_prior", "transmat_prior"):
            _check_prior(getattr(self, name), name, positive=True)
        self._validate_family_settings()
        self._validate_tie_arguments()

    def _validate_tie_arguments(self) -> None:
        """The tie arguments' form, before initialisation (their slots are checked when the
        group is built, once the arrays exist)."""
        from ..core.expressions import Expression, ExpressionError
        from ..core.statements import parse_statement, syntax_hint
        from ._tying import validate_partition, validate_transition_groups

        if self.tied_states is not None:
            validate_partition(self.tied_states, self.n_components)
        if self.tied_transitions is not None:
            validate_transition_groups(self.tied_transitions, self.n_components)
        for text in _user_statements(self.ties):
            _, rhs = parse_statement(text)
            try:
                Expression(rhs, context=f"tie statement {text!r}")
            except ExpressionError as exc:
                names = ["startprob", "transmat", *(p[0] for p in self._emission_params())]
                hint = syntax_hint(text, names)
                raise ValidationError(f"tie statement {text!r}: {hint}" if hint else str(exc)) \
                    from None

    def _validate_X(self, X, lengths):
        """Check X and lengths (and X against the fitted model); return arrays."""
        if X is None:
            raise ValidationError("X must be an array of shape (n_samples, n_features), got None")
        X = check_sample_matrix(X, "X", "n_features")
        if X.shape[0] == 0:
            raise ValidationError("X is empty (0 samples)")
        if np.issubdtype(X.dtype, np.floating):
            finite = np.isfinite(X)
            if not finite.all():
                inf = np.isinf(X).any(axis=1)
                if inf.any():
                    raise ValidationError(f"X contains inf in rows {_first_bad_rows(inf)}; an "
                                          "HMM needs finite observations (NaN marks a missing "
                                          "value)")
                if not self._supports_missing():
                    raise ValidationError(
                        f"X contains NaN (missing values) in rows "
                        f"{_first_bad_rows(~finite.all(axis=1))}; {type(self).__name__} does "
                        f"not support missing observations{self._missing_refusal()}")
        expected = self._n_features_of_fit()
        if expected is not None and X.shape[1] != expected:
            raise ValidationError(f"X has {X.shape[1]} features but this model was fitted with "
                                  f"{expected} (n_features_in_={expected})")
        X = self._validate_family_X(X)
        return X, check_lengths(lengths, X.shape[0])

    # ------------------------------------------------------------------ E-step
    def _initialize_sufficient_statistics(self):
        stats = super()._initialize_sufficient_statistics()
        stats["n_missing"] = 0  # missing entries seen by the E-step (they change the M-step)
        if self._has_covariates():  # the logit's sums (its departures are per row, not summed)
            K = self.n_components
            stats["xi_u"] = np.zeros((K, K, 1 + self.n_covariates_))
        if "post_feature" in self._emission_stats:
            # per-feature occupancies: the posterior mass of the rows where each feature is seen
            stats["post_feature"] = np.zeros((self.n_components, self.n_features))
        return stats

    def _do_estep(self, X, lengths):
        X, lengths = np.asarray(X), np.asarray(lengths, dtype=np.int64)
        covariates = self._covariate_rows(len(X))
        if covariates is not None:
            return self._covariate_estep(X, lengths, covariates)
        missing = self._missing_mask(X)
        # the fused moments read every entry of X: with missing values the posteriors are
        # returned and the family forms its statistics from the observed entries
        n_moments = self._fused_moments() if missing is None else 0
        emissions = self._emissions(X, lengths)
        needs_X = n_moments or isinstance(emissions, fb.DiagonalGaussian)
        est = fb.forward_backward_stats(
            self.startprob_, self.transmat_, emissions, lengths, X if needs_X else None,
            n_moments=n_moments, posteriors=not n_moments,
            workspace=getattr(self, "_workspace", None))
        stats = self._initialize_sufficient_statistics()
        stats["nobs"] = len(lengths)
        stats["n_missing"] = 0 if missing is None else int(missing.sum())
        if "s" in self.params or self.start_distribution == "stationary":
            stats["start"] += est.start_sum
        if "t" in self.params:
            stats["trans"] += est.xi_sum
        self._accumulate_emission_statistics(stats, X, est.posteriors, est.sums, lengths)
        return stats, est.log_prob

    def _emissions(self, X, lengths):
        """What the compiled pass evaluates: the log-probability table by default (with the
        known states, :meth:`_log_frames`), or an emission description it evaluates itself
        (:class:`~._forward_backward.DiagonalGaussian`)."""
        return self._log_frames(X, lengths)

    def _fused_moments(self) -> int:
        """Posterior-weighted moments of X the backward pass accumulates (0: none, the
        posteriors are returned instead; 1: x; 2: x and x**2)."""
        return 0

    # ------------------------------------------------------------------ M-step
    def _hmmlearn_mstep(self, stats, letters: str) -> None:
        """hmmlearn's own closed-form M-step, restricted to the parameters ``letters``.

        A state that received no posterior weight has no estimate (hmmlearn divides by zero):
        its parameters keep their previous values instead of becoming NaN.
        """
        saved = self.params
        before = self._arrays_copy()
        try:
            self.params = "".join(c for c in saved if c in letters)
            if self.params:
                super()._do_mstep(stats)
        finally:
            self.params = saved
        self._restore_undetermined(before)

    def _arrays_copy(self) -> dict[str, np.ndarray]:
        out = {"startprob": np.array(self.startprob_), "transmat": np.array(self.transmat_)}
        for name, _, _ in self._emission_params():
            out[name] = np.array(self._get_param(name))
        return out

    def _restore_undetermined(self, before: dict[str, np.ndarray]) -> None:
        for name, old in before.items():
            new = (np.asarray(self.startprob_) if name == "startprob" else
                   np.asarray(self.transmat_) if name == "transmat" else self._get_param(name))
            bad = ~np.isfinite(new)
            if name in PROBABILITY_PARAMS:
                rows = np.atleast_2d(new)
                bad = bad | np.broadcast_to((rows.sum(axis=-1) == 0)[..., None],
                                            rows.shape).reshape(new.shape)
            if not np.any(bad):
                continue
            fixed = np.where(bad, old, new)
            self._undetermined.add(name)
            if name == "startprob":
                self.startprob_ = fixed
            elif name == "transmat":
                self.transmat_ = fixed
            else:
                self._set_param(name, fixed)

    def _do_mstep(self, stats):
        bar = getattr(self, "_progress", None)
        if bar is not None:
            bar.update(1)
        plan = self._plan
        if plan.transitions == "closed":
            self._hmmlearn_mstep(stats, "st")
        elif self._has_covariates():
            self._covariate_mstep(stats)
        else:
            objective, blocks = self._transition_objective(stats)
            self._general_mstep("transitions", objective, candidate=blocks)
        if plan.emissions == "closed":
            self._closed_emission_mstep(stats)
        elif plan.emissions == "pooled":
            self._closed_emission_mstep(self._pooled_stats(stats))
        else:
            c = self.group_.tie_map()
            idx = {name: np.asarray(c.select(name)) for name, _, _ in self._emission_params()}
            self._general_mstep("emissions", self._emission_objective(stats, idx, len(c.names)))

    def _closed_emission_mstep(self, stats) -> None:
        """The emissions' closed-form M-step (hmmlearn's; families whose statistics carry
        per-feature occupancies for data with missing values override it)."""
        self._hmmlearn_mstep(stats, self._emission_letters)

    def _general_mstep(self, block: str, objective, columns=None, *, candidate=None) -> None:
        """Maximise the block's Q through the tie map, from the current parameters (over
        the block's free parameters, or the given ``columns`` of them).

        ``candidate``: the probability blocks (slot indices, counts) of ``objective``; the
        pooled closed form they give (:func:`probability_start`) is the start instead where
        its Q is larger.
        """
        group = self.group_
        c = group.tie_map()
        slots = model_slots(self, group, self._slots)
        free = slots[c.free_index]
        columns = self._plan.block_columns[block] if columns is None else columns
        if candidate:
            free = self._pooled_start(objective, candidate, free, columns)
        try:
            free, info = maximize_through_ties(group, objective, free=free, columns=columns)
        except ValidationError as exc:
            statements = _user_statements(self.ties)
            if not statements:
                raise
            # the ties themselves leave the block no valid point (a singular tied covariance)
            raise ValidationError(
                f"the {block} of {type(self).__name__} have no valid value under the tie "
                f"statements {statements}: {exc}; a tie that makes a covariance singular or a "
                "probability negative cannot be fitted") from None
        self._slots = c.evaluate(free)
        write_arrays(self, self._slots, group)

    def _pooled_start(self, objective, blocks, free: np.ndarray, columns) -> np.ndarray:
        """``free`` with each class of tied probability rows set to its pooled closed form
        (:func:`probability_start`) where that raises the objective."""
        c = self.group_.tie_map()
        best = objective(c.evaluate(free))[0]
        for cols, values in probability_start(c, blocks, free, columns):
            other = free.copy()
            other[cols] = values
            with np.errstate(all="ignore"):
                try:
                    value = objective(c.evaluate(other))[0]
                except ValueError:  # a tie expression left its domain there
                    continue
            if np.isfinite(value) and value > best:
                free, best = other, value
        return free

    def _transition_objective(self, stats):
        c = self.group_.tie_map()
        blocks = []
        if "s" in self.params or self.start_distribution == "stationary":
            cnt = np.maximum(self.startprob_prior - 1 + stats["start"], 0)
            blocks.append((np.asarray(c.select("startprob")), np.where(self.startprob_ == 0, 0, cnt)))
        if "t" in self.params:
            cnt = np.maximum(self.transmat_prior - 1 + stats["trans"], 0)
            blocks.append((np.asarray(c.select("transmat")), np.where(self.transmat_ == 0, 0, cnt)))
        return probability_objective(blocks, len(c.names)), blocks

    def _pooled_stats(self, stats) -> dict:
        """Every state's statistics replaced by its group's sum (``G Gᵀ s`` over states)."""
        pooled = dict(stats)
        for key in self._emission_stats:
            if key not in stats:
                continue
            arr = np.asarray(stats[key], dtype=float)
            out = np.empty_like(arr)
            for g in self._plan.partition:
                out[g] = arr[g].sum(axis=0)
            pooled[key] = out
        self._check_group_priors()
        return self._correct_pooled_priors(pooled)

    def _correct_pooled_priors(self, pooled: dict) -> dict:
        return pooled

    def _prior_names(self) -> tuple[str, ...]:
        return ()

    def _check_group_priors(self) -> None:
        """A tied group has one prior: per-state priors must agree within each group."""
        for name in self._prior_names():
            arr = getattr(self, name)
            if arr is None or np.ndim(arr) == 0 or np.shape(arr)[0] != self.n_components:
                continue
            arr = np.asarray(arr)
            for g in self._plan.partition:
                if not all(np.array_equal(arr[g[0]], arr[s]) for s in g[1:]):
                    raise ValidationError(f"{name} differs between the tied states {g}; a tied "
                                          "group has one prior, so give the same value for its "
                                          "states")

    # ------------------------------------------------------------------ fit / score / decode
    def _init(self, X, lengths=None):
        # the starts are small problems: OpenMP and BLAS threads only spin-wait on them (ten
        # times slower on a busy two-core machine), so the start runs on one thread
        with one_thread():
            self._init_start(X, lengths)

    def _init_start(self, X, lengths) -> None:
        X = self._start_data(X)
        super()._init(X, lengths)
        if self._has_covariates():
            self._init_beta()
        self._init_structure(X, lengths)
        # arrays the user set (letters outside init_params) are checked like hand-set models
        self._require_parameters("fit")
        initialised = set(self.init_params) & set(self._emission_letters)
        labels = untied_labels(self, X) if initialised and self._has_ties() else None
        self.group_, self._plan = self._tied_start_group()
        self._slots = self.group_.valuesdict().array
        partition = self._plan.partition
        held = user_held(self) - {"startprob", "transmat"}
        if len(partition) < self.n_components and initialised:
            # whole states tied: initialise their emissions on the groups, not the states
            self._init_grouped(X, lengths, partition)
            self.group_, self._plan = build_group(self)
            self._slots = self.group_.valuesdict().array
        elif self._plan.emissions == "general" and initialised and not held:
            groups = (self._mean_groups() if self._start_index % 2 and "m" in self.init_params
                      else None)
            if groups is not None and self._init_mean_groups(X, groups):
                # every second restart: states with equal means from their class's clusters
                self.group_, self._plan = build_group(self)
                self._slots = self.group_.valuesdict().array
            else:
                # any other tie: the untied start's clusters, matched to the tied states
                match_clusters_to_states(self, X, labels,
                                         lambda post: self._fit_start_emissions(X, post, lengths),
                                         self.random_state)
        self._init_slots = self._slots.copy()
        if self._plan.emissions == "pooled":
            self._check_group_priors()

    def _tied_start_group(self):
        """The group at the start. A random start of the start and transition
        probabilities, projected onto ties between them ("transmat[2,2] = transmat[0,0]"),
        can leave a row's remaining entry negative; those arrays then start uniform (which
        every linear tie between probabilities keeps feasible), and the other starts differ
        in their emissions."""
        try:
            return build_group(self)
        except ValidationError:
            drawn = [(letter, attr) for letter, attr in (("s", "startprob_"), ("t", "transmat_"))
                     if letter in self.init_params]
            if not drawn:
                raise
            K = self.n_components
            for letter, attr in drawn:
                setattr(self, attr, np.full(K, 1.0 / K) if letter == "s"
                        else np.full((K, K), 1.0 / K))
            return build_group(self)

    def _has_ties(self) -> bool:
        return (self.ties is not None or self.tied_states is not None
                or self.tied_transitions is not None)

    def _fit_start_emissions(self, X, post, lengths=None) -> None:
        """The tied emission M-step on the statistics of hard posteriors ``post``."""
        stats = self._initialize_sufficient_statistics()
        stats["nobs"] = 1
        self._accumulate_emission_statistics(stats, X, post, None,
                                             check_lengths(lengths, len(X)))
        tm = self.group_.tie_map()
        idx = {name: np.asarray(tm.select(name)) for name, _, _ in self._emission_params()}
        self._general_mstep("emissions", self._emission_objective(stats, idx, tm.n_slots))

    def _init_grouped(self, X, lengths, partition) -> None:
        """Re-initialise emissions for tied groups of states (default: keep hmmlearn's)."""

    #: Which restart is being made (0: the model's own seed); set by ``_fit_restarts``.
    _start_index = 0

    def _mean_groups(self) -> list[list[int]] | None:
        """Classes of states whose means the tie makes equal, when some class has several
        states; None otherwise (or when the family has no means)."""
        if "means" not in {name for name, _, _ in self._emission_params()}:
            return None
        tm = self.group_.tie_map()
        means = np.asarray(tm.select("means")).reshape(self.n_components, -1)
        groups = tm.equal_blocks(list(means))
        return groups if len(groups) < self.n_components else None

    def _init_mean_groups(self, X, groups) -> bool:
        """Start the emissions from the mean groups (``_start.mean_group_start``); False
        when the family has no such start or the clusters are too small."""
        return False

    def fit(self, X, lengths=None, *, known_states=None, covariates=None, client=None):
        """Estimate the parameters with Baum-Welch; every M-step runs through ``group_``.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
            Observations of all sequences, stacked; NaN marks a missing value (see the docs,
            "Missing observations"). With ``client``, also a dask array or a list of
            ``.npy``/netCDF/zarr files that the workers read (one sequence per file unless
            ``lengths`` is given).
        lengths : array-like of int, optional
            Lengths of the sequences in ``X`` (summing to ``n_samples``).
        known_states : array-like of int, shape (n_samples,), optional
            The state of each row where it is known, -1 where it is not (partially labelled
            sequences): the E-step gives the known rows all their weight in their state, so
            the fit maximises the likelihood of the observations and the known states.
        covariates : array-like, shape (n_samples, n_covariates), optional
            Covariates of every row: the transitions into row t become a multinomial logit
            of ``[1, covariates[t]]`` with coefficients ``beta_`` (shape ``(n_components,
            n_components, 1 + n_covariates)``, a parameter ``beta`` of ``group_``; the
            self-transition is each row's reference, ``beta_[i, i] = 0``). The data decide:
            a model fitted with covariates needs them in ``score``, ``predict``,
            ``predict_proba``, ``decode`` and ``sample``; ``transmat_`` is then the
            transition matrix at zero covariates. See the docs, "Covariate-dependent
            transitions".
        client : dask.distributed.Client, optional
            Run the E-step on this Dask cluster, where the sequences live; the M-step and
            the convergence monitor run here and give the in-process result to rounding.

        Returns
        -------
        self
            The fitted model, with ``group_`` (its ParameterGroup) and ``result_`` (a
            :class:`sciTie.FitResult`: parameters, log-likelihood, AIC/BIC on ``group_.n_free``).
        """
        self._validate_settings()
        wall, cpu = time.perf_counter(), time.process_time()
        seeds = restart_seeds(self.random_state, self._n_starts())
        self._progress = progress_bar(len(seeds) * self.n_iter,
                                      f"{type(self).__name__} EM", unit="iteration")
        # BLAS calls in EM are on (n, D) and (K, K) arrays: threads only spin-wait on them
        # (a fit three times slower on a busy two-core machine); the E-step's own threads are
        # the hmm_threads setting
        try:
            with one_thread("blas"), \
                    self._covariates_given(covariates, fitting=True), \
                    self._states_known(known_states):
                if len(seeds) == 1:
                    self._fit_once(X, lengths, client)
                    self.starts_ = [self._start_record(seeds[0])]
                else:
                    self.starts_ = self._fit_restarts(X, lengths, client, seeds)
                if client is None:
                    self._other_first_states(X, lengths)
                if len(seeds) > 1:
                    self.result_.statistics["starts"] = _starts_summary(self.starts_)
        finally:
            if self._progress is not None:
                self._progress.close()
            del self._progress
        self.fit_seconds_ = time.perf_counter() - wall
        self.fit_cpu_seconds_ = time.process_time() - cpu
        return self

    @staticmethod
    def _start_record_seed(seed):
        return seed if isinstance(seed, (int, np.integer)) or seed is None else "RandomState"

    def _start_record(self, seed) -> dict:
        """One start's outcome, for ``starts_``."""
        return {"seed": self._start_record_seed(seed),
                "log_likelihood": float(self.result_.log_likelihood),
                "em_iterations": int(self.monitor_.iter),
                "converged": bool(self.result_.success)}

    def _n_starts(self) -> int:
        """``n_init``, with "auto": one start untied (hmmlearn's fit), AUTO_STARTS with ties
        (one when fit initialises nothing: every start would be the same)."""
        if not isinstance(self.n_init, str):
            return int(self.n_init)
        if not self._has_ties() or not set(self.init_params) - set("st"):
            return 1
        return AUTO_STARTS

    def _fit_restarts(self, X, lengths, client, seeds) -> list[dict]:
        """Fit from every seed, keep the highest log-likelihood; the starts' summary."""
        saved = self.random_state
        hyper = set(self.get_params(deep=False))
        best, best_ll, runs, failure = None, -np.inf, [], None
        try:
            for k, seed in enumerate(seeds):
                self.random_state, self._start_index = seed, k
                if k:  # what fit initialises is made anew (hmmlearn would warn of overwriting)
                    self._forget_initialised()
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    try:
                        self._fit_once(X, lengths, client)
                    except fb.DegenerateStateError as exc:
                        # this start collapsed a state: recorded, and the others go on
                        runs.append({"seed": self._start_record_seed(seed),
                                     "log_likelihood": None, "em_iterations": None,
                                     "converged": False, "failed": str(exc)})
                        failure = exc
                        continue
                if self._progress is not None:  # a start that converged early: skip its rest
                    self._progress.update(max(0, (k + 1) * self.n_iter - self._progress.n))
                ll = float(self.result_.log_likelihood)
                runs.append(self._start_record(seed))
                if best is None or ll > best_ll:
                    # every start makes new arrays, group and result; only hmmlearn's
                    # monitor is reset in place, so it alone is copied
                    state = {k: v for k, v in self.__dict__.items()
                             if k not in hyper and k != "_start_index"}
                    state["monitor_"] = copy.deepcopy(self.monitor_)
                    best_ll, best = ll, (state, caught)
        finally:
            self.random_state = saved
            self.__dict__.pop("_start_index", None)
        if best is None:
            raise fb.DegenerateStateError(f"every one of the {len(seeds)} starts collapsed a "
                                          f"state; the last: {failure}")
        state, caught = best
        self.__dict__.update(state)
        for w in caught:  # the chosen start's warnings only
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return runs

    def _forget_initialised(self) -> None:
        attrs = {"s": "startprob_", "t": "transmat_"}
        attrs.update((letter, attr) for _, letter, attr in self._emission_params())
        for letter, attr in attrs.items():
            if letter in self.init_params and attr in self.__dict__:
                delattr(self, attr)

    def _fit_once(self, X, lengths, client):
        for attr in ("group_", "result_", "n_features_in_"):
            if hasattr(self, attr):
                delattr(self, attr)
        self._undetermined: set[str] = set()
        if client is not None:  # the same EM with the E-step on the workers
            from . import _distributed
            return _distributed.fit(self, X, lengths, client=client)
        X, lengths = self._validate_X(X, lengths)
        if self.n_components > X.shape[0]:
            raise ValidationError(f"n_components={self.n_components} is more than the "
                                  f"{X.shape[0]} samples in X; each state needs data")
        self._covariate_rows(X.shape[0])  # checked before anything is initialised
        self._workspace = {}  # scratch arrays reused by every EM iteration
        t0 = time.perf_counter()
        try:
            # hmmlearn's fit, whose check_array would refuse missing values (NaN)
            self._init(X, lengths)
            self._check()
            self._run_em(lambda: self._do_estep(X, lengths))
        finally:
            del self._workspace
        # X is validated: the final log-likelihood needs only the forward pass
        return self._finish_fit(X.shape, len(lengths), time.perf_counter() - t0,
                                lambda: self._validated_loglik(X, lengths))

    def _validated_loglik(self, X, lengths) -> float:
        """``log p(X)`` of validated ``X`` (the forward pass only)."""
        covariates = self._covariate_rows(len(X))
        if covariates is not None:
            return forward_backward_tv(self.startprob_, self.beta_, covariates,
                                       self._log_frames(X, lengths), lengths,
                                       posteriors=False)[0]
        return fb.forward_loglik(self.startprob_, self.transmat_, self._emissions(X, lengths),
                                 lengths, X)

    def _other_first_states(self, X, lengths) -> None:
        """After EM on one sequence: EM again from each other first state that is nearly as
        likely, keeping the best fit.

        With one sequence the start distribution's maximum is a vertex (the likelihood is
        linear in it), and EM settles on the first state its early iterations favour; when
        two states share parameters through a tie (``means[1] = means[0]``), the fit that
        starts the chain in the other one can be a better optimum that EM cannot reach by
        moving the start probabilities, since every other parameter has adapted to the first
        choice. Each first state whose likelihood with the other parameters held is within
        ``FIRST_STATE_MARGIN`` of the best, and whose start probability is not fixed (a zero
        the user gave is structural), is tried. Only after a converged fit (a fit cut
        off by ``n_iter`` has not settled on anything) of a model whose tie makes some states'
        means equal and whose start probabilities are free and untied (any other model gives
        hmmlearn's result).
        """
        lengths = check_lengths(lengths, len(X))
        if not (len(lengths) == 1 and self.result_.success and "s" in self.params
                and not self._has_covariates()
                and self.start_distribution == "free" and self._plan.transitions == "closed"
                and self._mean_groups() is not None):
            return
        K = self.n_components
        frames = self._log_frames(X, lengths)
        given = np.full(K, -np.inf)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # log of a zero probability
            for k in range(K):
                with contextlib.suppress(fb.ImpossibleObservationError):
                    given[k] = fb.forward_loglik(np.eye(K)[k], self.transmat_, frames, lengths)
        current = int(np.argmax(self.startprob_))
        tm = self.group_.tie_map()
        free = np.diff(tm.matrix().tocsr().indptr)[np.asarray(tm.select("startprob"))] > 0
        others = [k for k in np.argsort(-given) if k != current and free[k]
                  and given[k] >= given.max() - FIRST_STATE_MARGIN]
        if not others:
            return
        hyper = set(self.get_params(deep=False))
        best = copy.deepcopy({k: v for k, v in self.__dict__.items() if k not in hyper})
        best_ll, init = float(self.result_.log_likelihood), self.init_params
        for k in others:
            self.__dict__.update(copy.deepcopy(best))
            self.startprob_ = np.eye(K)[k]
            self._lift_zero_probabilities()
            self.init_params = ""  # EM from the fitted arrays, nothing drawn anew
            try:
                self._fit_once(X, lengths, None)
            except fb.DegenerateStateError:
                continue
            finally:
                self.init_params = init
            if float(self.result_.log_likelihood) > best_ll + self.tol:
                best_ll = float(self.result_.log_likelihood)
                best = copy.deepcopy({k: v for k, v in self.__dict__.items()
                                      if k not in hyper})
        self.__dict__.update(best)

    def _run_em(self, estep) -> None:
        """hmmlearn's EM loop and convergence monitor; ``estep()`` returns the statistics
        and the log-likelihood at the current parameters (in process or on a cluster)."""
        self.monitor_._reset()
        for _ in range(self.n_iter):
            stats, log_prob = estep()
            lower_bound = self._compute_lower_bound(log_prob)
            self._do_mstep(stats)  # before the convergence check, as hmmlearn (n_iter=1)
            self.monitor_.report(lower_bound)
            if self.monitor_.converged:
                break
            if (self.transmat_.sum(axis=1) == 0).any():
                _hmmlearn_log.warning("Some rows of transmat_ have zero sum because no "
                                      "transition from the state was ever observed.")

    def _lift_zero_probabilities(self, floor: float = 1e-10) -> None:
        """Raise every zero probability that is a free parameter of ``group_`` to ``floor``
        (rows renormalised), so that EM started again from fitted arrays does not read the
        zeros an earlier EM reached as structural zeros (which would fix them and change the
        parameter count); zeros the model fixes stay zero."""
        tm = self.group_.tie_map()
        G = tm.matrix().tocsr()
        free_row = np.diff(G.indptr) > 0
        for name, attr in [("startprob", "startprob_"), ("transmat", "transmat_")] + [
                (name, attr) for name, _, attr in self._emission_params()
                + self._duration_params() if name in PROBABILITY_PARAMS]:
            p = np.array(getattr(self, attr), dtype=float)
            lift = (p == 0.0) & free_row[np.asarray(tm.select(name))].reshape(p.shape)
            p = np.where(lift, floor, p)
            setattr(self, attr, p / p.sum(axis=-1, keepdims=True))

    def _finish_fit(self, shape, n_sequences: int, seconds: float, score,
                    stacklevel: int = 3) -> "TiedHMMMixin":
        """After EM: exact probabilities, ``result_`` (``score()`` gives log L), warnings."""
        self._slots = model_slots(self, self.group_, self._slots)
        finalise_probabilities(self.group_, PROBABILITY_PARAMS, self._slots)
        self.n_features_in_ = int(shape[1])
        self.result_ = self._make_result(int(shape[0]), n_sequences, seconds, float(score()))
        if self._undetermined:
            warnings.warn(f"{type(self).__name__}: some states received no posterior weight, so "
                          f"their {', '.join(sorted(self._undetermined))} could not be estimated "
                          "and kept their previous values; fewer states may suffice",
                          ConvergenceWarning, stacklevel=stacklevel)
        if not self.result_.success and len(self.monitor_.history) >= 2:
            warnings.warn(f"{type(self).__name__}: EM stopped after {self.monitor_.iter} "
                          f"iterations without converging (last gain "
                          f"{self._last_gain():.3g} > tol={self.tol}); raise n_iter",
                          ConvergenceWarning, stacklevel=stacklevel)
        elif not self.result_.success and self.n_iter > 0:
            warnings.warn(f"{type(self).__name__}: EM stopped after {self.monitor_.iter} "
                          "iteration, too few to tell whether it converged; raise n_iter",
                          ConvergenceWarning, stacklevel=stacklevel)
        return self

    def _last_gain(self) -> float:
        h = list(self.monitor_.history)
        return float(h[-1] - h[-2]) if len(h) >= 2 else float("nan")

    def _em_converged(self) -> bool:
        """True when the last EM step gained less than ``tol`` (not merely ran out)."""
        h = list(getattr(self.monitor_, "history", []))
        return bool(len(h) >= 2 and h[-1] - h[-2] < self.monitor_.tol)

    def _make_result(self, n_samples: int, n_sequences: int, seconds: float,
                     ll: float) -> FitResult:
        converged = self._em_converged() or not np.isfinite(self.tol)
        return FitResult.from_covariance(
            self.group_, self.group_.pack(), ndata=n_samples, model=type(self).__name__,
            init_values=self._init_slots[self.group_.tie_map().free_index],
            covar_note="standard errors not computed yet: call uncertainties(X, lengths)",
            method=f"Baum-Welch, {self.estimation()} (M-step: transitions "
                   f"{self._plan.transitions}, emissions {self._plan.emissions})",
            success=bool(converged), message="converged" if converged else "n_iter reached",
            nfev=int(self.monitor_.iter), seconds=seconds, log_likelihood=ll,
            statistics={"n_sequences": int(n_sequences), "em_iterations": int(self.monitor_.iter)},
            attrs=self._provenance(), plotter=self._plot_result, warn_bounds=False)

    def estimation(self) -> str:
        """What the fit estimates: "maximum likelihood", or "MAP (...)" naming the priors
        that are not neutral (hmmlearn's default ``covars_prior=1e-2`` makes Gaussian
        variances MAP estimates; ``covars_prior=0`` gives maximum likelihood)."""
        priors = {}
        for name in ("startprob_prior", "transmat_prior"):
            if np.any(np.asarray(getattr(self, name), dtype=float) != 1.0):
                priors[name] = getattr(self, name)
        priors.update(self._nonneutral_priors())
        if not priors:
            return "maximum likelihood"
        shown = ", ".join(f"{k}={_short(v)}" for k, v in priors.items())
        return f"MAP ({shown})"

    def _nonneutral_priors(self) -> dict:
        """The family's priors that change the estimate (empty: maximum likelihood)."""
        return {}

    def _score(self, X, lengths=None, *, compute_posteriors):
        self._require_parameters("score")
        X, lengths = self._validate_X(X, lengths)
        covariates = self._covariate_rows(len(X))
        if covariates is not None:
            log_prob, post, _, _ = forward_backward_tv(
                self.startprob_, self.beta_, covariates, self._log_frames(X, lengths), lengths,
                posteriors=compute_posteriors)
            return log_prob, post if compute_posteriors else np.empty((0, self.n_components))
        emissions = self._emissions(X, lengths)
        if compute_posteriors:
            log_prob, post, _ = fb.forward_backward(self.startprob_, self.transmat_, emissions,
                                                    lengths, X)
            return log_prob, post
        log_prob = fb.forward_loglik(self.startprob_, self.transmat_, emissions, lengths, X)
        return log_prob, np.empty((0, self.n_components))

    def score(self, X, lengths=None, *, known_states=None, covariates=None, client=None):
        """Log-likelihood of ``X`` under the model.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
            Observations; with ``client``, also a dask array or a list of files.
        lengths : array-like of int, optional
            Sequence lengths.
        known_states : array-like of int, shape (n_samples,), optional
            States known at some rows (-1 elsewhere): the paths are constrained to them.
        covariates : array-like, shape (n_samples, n_covariates), optional
            The covariates of every row, for a model fitted with covariates (required then).
        client : dask.distributed.Client, optional
            Compute on this Dask cluster.

        Returns
        -------
        float
            ``log p(X)``.
        """
        with self._covariates_given(covariates), self._states_known(known_states):
            if client is not None:
                from . import _distributed
                return _distributed.score(self, X, lengths, client=client)
            return super().score(X, lengths)

    def predict(self, X, lengths=None, *, known_states=None, covariates=None, client=None):
        """Most likely states (the model's ``algorithm``: Viterbi or posterior maxima).

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
            Observations; with ``client``, also a dask array or a list of files.
        lengths : array-like of int, optional
            Sequence lengths.
        known_states : array-like of int, shape (n_samples,), optional
            States known at some rows (-1 elsewhere): the paths are constrained to them.
        covariates : array-like, shape (n_samples, n_covariates), optional
            The covariates of every row, for a model fitted with covariates (required then).
        client : dask.distributed.Client, optional
            Decode on this Dask cluster; the result is then a dask array kept there.

        Returns
        -------
        ndarray or dask.array.Array of int, shape (n_samples,)
            The decoded states.
        """
        with self._covariates_given(covariates), self._states_known(known_states):
            if client is not None:
                from . import _distributed
                return _distributed.predict(self, X, lengths, client=client)
            return super().predict(X, lengths)

    def predict_proba(self, X, lengths=None, *, known_states=None, covariates=None, client=None):
        """State posteriors ``P(state_t | X)``.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
            Observations; with ``client``, also a dask array or a list of files.
        lengths : array-like of int, optional
            Sequence lengths.
        known_states : array-like of int, shape (n_samples,), optional
            States known at some rows (-1 elsewhere): the paths are constrained to them.
        covariates : array-like, shape (n_samples, n_covariates), optional
            The covariates of every row, for a model fitted with covariates (required then).
        client : dask.distributed.Client, optional
            Compute on this Dask cluster; the result is then a dask array kept there.

        Returns
        -------
        ndarray or dask.array.Array, shape (n_samples, n_components)
            The posteriors.
        """
        with self._covariates_given(covariates), self._states_known(known_states):
            if client is not None:
                from . import _distributed
                return _distributed.predict_proba(self, X, lengths, client=client)
            return super().predict_proba(X, lengths)

    def decode(self, X, lengths=None, algorithm=None, *, covariates=None):
        """Most likely state sequence (Viterbi, log space) or per-step posterior maxima.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
            Observations.
        lengths : array-like of int, optional
            Sequence lengths.
        algorithm : {"viterbi", "map"}, optional
            Decoder; defaults to the model's ``algorithm``.
        covariates : array-like, shape (n_samples, n_covariates), optional
            The covariates of every row, for a model fitted with covariates (required then).

        Returns
        -------
        log_prob : float
            Log-probability of the decoded path ("viterbi") or the sum of the log of the
            largest posteriors ("map"), as in hmmlearn.
        state_sequence : ndarray of int, shape (n_samples,)
            Decoded states.
        """
        with self._covariates_given(covariates):
            return self._decode(X, lengths, algorithm)

    def _decode(self, X, lengths, algorithm):
        self._require_parameters("decode")
        algorithm = algorithm or self.algorithm
        if algorithm not in ("viterbi", "map"):
            raise ValidationError(f"algorithm must be 'viterbi' or 'map', got {algorithm!r}")
        X, lengths = self._validate_X(X, lengths)
        if algorithm == "viterbi":
            log_prob, path = self._viterbi(X, lengths)
            if getattr(self, "_known", None) is not None and not np.isfinite(log_prob):
                raise fb.ImpossibleObservationError("no state path passes through the known "
                                                    "states")
            return log_prob, path
        _, post = self._score(X, lengths, compute_posteriors=True)
        return float(np.log(post.max(axis=1)).sum()), post.argmax(axis=1)

    def _viterbi(self, X, lengths) -> tuple[float, np.ndarray]:
        """``(log p(X, best path), best path)`` of validated ``X`` (log space)."""
        covariates = self._covariate_rows(len(X))
        if covariates is not None:
            return viterbi_tv(self.startprob_, self.beta_, covariates,
                              self._log_frames(X, lengths), lengths)
        return fb.viterbi(self.startprob_, self.transmat_, self._log_frames(X, lengths),
                          lengths)

    def sample(self, n_samples=1, random_state=None, currstate=None, *, covariates=None):
        """Draw a state path and observations from the model (hmmlearn's ``sample``).

        Parameters
        ----------
        n_samples : int, optional
            Number of samples (at least 1).
        random_state : int, RandomState or None, optional
            Seed; None uses the model's ``random_state``.
        currstate : int, optional
            State of the first sample.
        covariates : array-like, shape (n_samples, n_covariates), optional
            The covariates of the samples (required for a model with covariates; row t
            drives the transition into sample t).

        Returns
        -------
        X : ndarray, shape (n_samples, n_features)
        state_sequence : ndarray of int, shape (n_samples,)
        """
        n_samples = check_int(n_samples, "n_samples", minimum=1)
        check_random_state(random_state)
        self._require_parameters("sample")
        if currstate is not None:
            currstate = check_int(currstate, "currstate", minimum=0,
                                  maximum=self.n_components - 1)
        if covariates is not None or self._has_covariates():
            with self._covariates_given(covariates):
                return self._sample_with_covariates(n_samples, random_state, currstate)
        return super().sample(n_samples, random_state=random_state, currstate=currstate)

    def permute_states(self, order) -> "TiedHMMMixin":
        """Relabel the states of a fitted model without ties: new state i is old ``order[i]``.

        For a canonical labelling that every output shares (for example states sorted by
        their level). The likelihood is unchanged; ``group_`` and ``result_`` are rebuilt.

        Parameters
        ----------
        order : sequence of int
            A permutation of ``range(n_components)``.

        Returns
        -------
        self
        """
        self._require_fitted("permute_states")
        order = np.asarray(order)
        if not np.issubdtype(order.dtype, np.integer):
            raise ValidationError(f"order must be a permutation of the integers "
                                  f"0..{self.n_components - 1}, got {order.tolist()}")
        if order.shape != (self.n_components,) or sorted(order.tolist()) != list(
                range(self.n_components)):
            raise ValidationError(f"order must be a permutation of 0..{self.n_components - 1}, "
                                  f"got {order.tolist()}")
        if self._plan.statements:
            raise ValidationError("permute_states relabels models without ties only (the ties "
                                  f"{self._plan.statements} name states by index)")
        self.startprob_ = np.asarray(self.startprob_)[order]
        self.transmat_ = np.asarray(self.transmat_)[np.ix_(order, order)]
        if self._has_covariates():  # the reference stays the self-transition
            self.beta_ = np.asarray(self.beta_)[np.ix_(order, order)]
        for name, _, _ in self._emission_params():
            self._set_param(name, np.asarray(self._get_param(name))[order])
        for _, _, attr in self._duration_params():
            setattr(self, attr, np.asarray(getattr(self, attr))[order])
        old = self.result_
        saved = self.init_params
        try:
            self.init_params = ""
            self.group_, self._plan = build_group(self)
        finally:
            self.init_params = saved
        self._slots = self.group_.valuesdict().array
        finalise_probabilities(self.group_, PROBABILITY_PARAMS, self._slots)
        self.result_ = FitResult.from_covariance(
            self.group_, self.group_.pack(), ndata=old.ndata, model=old.model, method=old.method,
            success=old.success, message=old.message, nfev=old.nfev, seconds=old.seconds,
            log_likelihood=old.log_likelihood, statistics=dict(old.statistics),
            attrs=dict(old.attrs), plotter=old.plotter, covar_note=old.covar_note,
            warn_bounds=False)
        return self

    # ------------------------------------------------------------------ model choice
    def n_free_parameters(self) -> int:
        """Number of parameters actually fitted: ``group_.n_free`` (the column count of G).

        Parameters outside ``params`` and structural zeros are fixed, each probability row
        has one entry fewer than its non-zero entries, and every tie removes what it makes
        dependent.

        Returns
        -------
        int
        """
        self._require_fitted("n_free_parameters")
        return int(self.group_.n_free)

    def aic(self, X, lengths=None):
        """Akaike information criterion ``-2 log L + 2 k`` with k = ``group_.n_free``.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
            Observations.
        lengths : array-like of int, optional
            Sequence lengths.

        Returns
        -------
        float
        """
        from ..core.statistics import information_criteria

        X, lengths = self._validate_X(X, lengths)
        return information_criteria(self.n_free_parameters(), X.shape[0],
                                    log_likelihood=self.score(X, lengths))[0]

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
        """
        from ..core.statistics import information_criteria

        X, lengths = self._validate_X(X, lengths)
        return information_criteria(self.n_free_parameters(), X.shape[0],
                                    log_likelihood=self.score(X, lengths))[1]


def _short(value) -> str:
    arr = np.asarray(value)
    if arr.ndim == 0:
        return f"{float(arr):g}"
    flat = np.unique(arr)
    return f"{float(flat[0]):g}" if flat.size == 1 else f"array{arr.shape}"


def _check_prior(value, name: str, *, positive: bool = False, nonnegative: bool = False,
                 allow_none: bool = False) -> None:
    """A prior argument: finite numbers (> 0 for Dirichlet concentrations, ``positive``;
    >= 0 for weights and scales, ``nonnegative``)."""
    if value is None and allow_none:
        return
    try:
        arr = np.asarray(value)
        if arr.dtype.kind not in "iuf":
            raise TypeError
        arr = arr.astype(float)
    except (TypeError, ValueError):
        raise ArgumentTypeError(f"{name} must be a number or an array of numbers, got "
                                f"{value!r}") from None
    if not np.all(np.isfinite(arr)):
        raise ValidationError(f"{name} must be finite, got {value!r}")
    if positive and np.any(arr <= 0):
        raise ValidationError(f"{name} must be positive (a Dirichlet concentration), got "
                              f"{value!r}")
    if nonnegative and np.any(arr < 0):
        raise ValidationError(f"{name} must be >= 0, got {value!r}")


def _starts_summary(starts: list[dict]) -> str:
    """One report line on the starts: how many reached the best log-likelihood."""
    lls = np.array([r["log_likelihood"] for r in starts if r["log_likelihood"] is not None])
    failed = len(starts) - lls.size
    best = lls.max()
    near = int(np.sum(lls >= best - 1e-2 * max(1.0, abs(best) * 1e-6)))
    return (f"{len(starts)} ({near} within 0.01 of the best; lowest log-likelihood "
            f"{lls.min():.6g}" + (f"; {failed} collapsed a state" if failed else "")
            + "; each start in starts_)")
