"""The tied HMMs as ParameterGroups, text reports and xarray results."""
from __future__ import annotations

import datetime as _dt

import numpy as np
import xarray as xr
from sklearn.utils.validation import check_is_fitted

__all__ = ["ReportMixin"]


def _normalised_row(group, name: str, index: tuple, row: np.ndarray, skip: set) -> None:
    """Fix the zeros of ``row`` and make its last non-zero entry ``1 - sum(others)``."""
    def slot(j):
        return f"{name}[{','.join(str(i) for i in (*index, j))}]"

    nz = [j for j in range(row.size) if row[j] != 0]
    for j in range(row.size):
        if row[j] == 0:
            group.fix(slot(j))
    free = [j for j in nz if j not in skip]
    if len(nz) <= 1:
        for j in nz:
            if j not in skip:
                group.fix(slot(j))
        return
    if free:
        last = free[-1]
        others = [slot(j) for j in nz if j != last]
        group.constrain(slot(last), "1 - " + " - ".join(others))


class ReportMixin:
    """ParameterGroup view, text report and :meth:`to_xarray` of a fitted tied HMM."""

    def parameter_group(self):
        """The fitted parameters as a :class:`sciTie.ParameterGroup`.

        Child group ``emissions`` holds one row per state, tied to the first state of its
        group; child group ``transitions`` holds ``startprob`` and ``transmat`` with the
        structural zeros fixed, tied self-loops tied, and each row's last entry
        constrained to ``1 - sum(others)``. Parameters not in ``params`` are fixed. Its
        ``n_free`` equals :meth:`n_free_parameters`.

        Returns
        -------
        sciTie.ParameterGroup
            Group ``"hmm"`` with children ``emissions`` and ``transitions``.
        """
        from sciTie.core import ParameterGroup

        check_is_fitted(self, "startprob_")
        groups = self.state_groups_
        em = ParameterGroup("emissions", description="per-state emission parameters")
        for name, arr, letter in self._emission_slots():
            em.add(name, np.asarray(arr, dtype=float))
            if name == "covars" and self.covariance_type == "tied" and not self._is_mixture():
                pass
            else:
                for g in groups:
                    if len(g) > 1:
                        em.tie([f"{name}[{s}]" for s in g[1:]], to=f"{name}[{g[0]}]")
            if letter not in self.params:
                em.fix(name)
            elif name in ("emissionprob", "weights"):
                for g in groups:
                    _normalised_row(em, name, (g[0],), np.asarray(arr)[g[0]], set())
            elif name == "covars" and self.covariance_type in ("full", "tied"):
                self._fix_covariance_lower(em, groups)
            elif name == "covars" and self._is_mixture():
                pass
            elif name == "covars" and self.covariance_type == "spherical":
                for g in groups:
                    for d in range(1, self.n_features):
                        em.tie(f"covars[{g[0]},{d}]", to=f"covars[{g[0]},0]")
        tr = ParameterGroup("transitions", description="start and transition probabilities")
        tr.add("startprob", np.asarray(self.startprob_, dtype=float), min=0.0, max=1.0)
        tr.add("transmat", np.asarray(self.transmat_, dtype=float), min=0.0, max=1.0)
        if "s" in self.params:
            _normalised_row(tr, "startprob", (), np.asarray(self.startprob_), set())
        else:
            tr.fix("startprob")
        if "t" in self.params:
            A = np.asarray(self.transmat_)
            tied_rows = {}
            for g in self.transition_groups_:
                for s in g[1:]:
                    tied_rows[s] = g[0]
            for i in range(self.n_components):
                if i in tied_rows and A[i, i] != 0:
                    tr.tie(f"transmat[{i},{i}]", to=f"transmat[{tied_rows[i]},{tied_rows[i]}]")
                    _normalised_row(tr, "transmat", (i,), A[i], {i})
                elif any(i in g for g in self.transition_groups_) and A[i, i] != 0:
                    _normalised_row(tr, "transmat", (i,), A[i], {i})
                else:
                    _normalised_row(tr, "transmat", (i,), A[i], set())
        else:
            tr.fix("transmat")
        root = ParameterGroup("hmm", description=type(self).__name__)
        root.add_group(em)
        root.add_group(tr)
        return root

    def _fix_covariance_lower(self, em, groups):
        """Full covariance matrices are symmetric: the lower triangle reads the upper."""
        D = self.n_features
        heads = [g[0] for g in groups]
        if self._is_mixture():
            if self.covariance_type == "full":  # (state, mix, D, D)
                prefixes = [f"{h},{m}," for h in heads for m in range(self.n_mix)]
            else:  # "tied" mixture: one (D, D) matrix per state
                prefixes = [f"{h}," for h in heads]
        elif self.covariance_type == "tied":
            prefixes = [""]
        else:
            prefixes = [f"{h}," for h in heads]
        for pre in prefixes:
            for a in range(D):
                for b in range(a):
                    em.tie(f"covars[{pre}{a},{b}]", to=f"covars[{pre}{b},{a}]")

    def _emission_slots(self):
        """(name, per-state array, params letter) of the emission parameters."""
        if hasattr(self, "lambdas_"):
            return [("lambdas", self.lambdas_, "l")]
        if hasattr(self, "emissionprob_"):
            return [("emissionprob", self.emissionprob_, "e")]
        if self._is_mixture():
            return [("weights", self.weights_, "w"), ("means", self.means_, "m"),
                    ("covars", self.covars_, "c")]
        if self.covariance_type == "tied":
            cov = np.asarray(self._covars_)
        elif self.covariance_type == "full":
            cov = np.asarray(self._covars_)
        else:
            cov = np.asarray(self._covars_).reshape(self.n_components, -1)
            cov = np.broadcast_to(cov, (self.n_components, self.n_features)).copy()
        return [("means", self.means_, "m"), ("covars", cov, "c")]

    def _em_converged(self) -> bool:
        """True when the last EM step gained less than ``tol`` (not merely ran out)."""
        mon = getattr(self, "monitor_", None)
        if mon is None or len(mon.history) < 2:
            return False
        return bool(mon.history[-1] - mon.history[-2] < mon.tol)

    # ------------------------------------------------------------------ uncertainties
    def _set_from_slots(self, vals) -> None:
        """Write ParameterGroup slot values back into the model's arrays."""
        self.startprob_ = np.array(vals["transitions.startprob"], dtype=float)
        self.transmat_ = np.array(vals["transitions.transmat"], dtype=float)
        for name, _, _ in self._emission_slots():
            arr = np.array(vals[f"emissions.{name}"], dtype=float)
            if name == "means":
                self.means_ = arr
            elif name == "weights":
                self.weights_ = arr
            elif name == "covars" and self._is_mixture():
                self.covars_ = arr
            elif name == "covars":
                self._covars_ = arr[:, 0] if self.covariance_type == "spherical" else arr
            elif name == "lambdas":
                self.lambdas_ = arr
            else:
                self.emissionprob_ = arr

    def _is_mixture(self) -> bool:
        return hasattr(self, "n_mix")

    def _has_slot_gradient(self) -> bool:
        return (not self._is_mixture()
                and getattr(self, "covariance_type", "diag") in ("diag", "spherical"))

    def loglik_gradient(self, X, lengths=None, group=None) -> np.ndarray:
        """Gradient of the log-likelihood with respect to every slot of :meth:`parameter_group`.

        Fisher's identity: the score equals the posterior expectation of the complete-data
        score, so one forward-backward pass gives it. ``group.reduce_jacobian`` (the chain
        rule through the tie matrix) turns it into the gradient with respect to the free
        parameters. Available for Poisson, categorical and diagonal/spherical Gaussian
        emissions.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
            Observations.
        lengths : array-like of int, optional
            Sequence lengths.
        group : sciTie.ParameterGroup, optional
            The group whose slot order is used (default: a fresh :meth:`parameter_group`).

        Returns
        -------
        ndarray, shape (n_slots,)
            ``d log L / d slot``; zero for structural zeros.
        """
        from . import _forward_backward as fb

        if not self._has_slot_gradient():
            raise NotImplementedError("the analytic score is implemented for diagonal and "
                                      "spherical Gaussian, Poisson and categorical emissions")
        Xv, lengths = self._validate_X(X, lengths)
        pg = self.parameter_group() if group is None else group
        lp = self._compute_log_likelihood(Xv)
        Xs = None if hasattr(self, "emissionprob_") else np.asarray(Xv, dtype=float)
        _, post, xi, sums = fb.forward_backward_stats(self.startprob_, self.transmat_, lp,
                                                      lengths, Xs)
        grad = np.zeros(pg.n_slots)

        def put(name, values):
            grad[np.asarray(pg.slot_index(name)).ravel()] = np.ravel(values)

        def ratio(num, den):
            den = np.asarray(den, dtype=float)
            return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)

        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        put("transitions.startprob", ratio(post[starts].sum(axis=0), self.startprob_))
        put("transitions.transmat", ratio(xi, self.transmat_))
        if hasattr(self, "lambdas_"):
            occ, obs = sums[0], sums[1]
            put("emissions.lambdas", obs / self.lambdas_ - occ[:, None])
        elif hasattr(self, "emissionprob_"):
            counts = np.zeros_like(np.asarray(self.emissionprob_, dtype=float))
            for k in range(self.n_components):
                counts[k] = np.bincount(Xv[:, 0], weights=post[:, k],
                                        minlength=counts.shape[1])
            put("emissions.emissionprob", ratio(counts, self.emissionprob_))
        else:
            occ, obs, obs2 = sums
            mu = np.asarray(self.means_, dtype=float)
            var = np.broadcast_to(np.asarray(self._covars_, dtype=float).reshape(
                self.n_components, -1), mu.shape)
            put("emissions.means", (obs - occ[:, None] * mu) / var)
            sq = obs2 - 2 * mu * obs + occ[:, None] * mu ** 2
            put("emissions.covars", -occ[:, None] / (2 * var) + sq / (2 * var ** 2))
        return grad

    def uncertainties(self, X, lengths=None, *, rel_step: float = 1e-4,
                      boundary: float = 1e-6) -> xr.Dataset:
        """Standard errors from the observed information (numerical Hessian of log L).

        The Hessian is taken with respect to the free parameters of
        :meth:`parameter_group`: central differences of the analytic score
        (:meth:`loglik_gradient`, reduced through the tie matrix) where it is available,
        of the log-likelihood otherwise; its inverse is the covariance of the
        free parameters, and ``G Σ Gᵀ`` gives every slot's standard error, so tied states
        share the uncertainty of their group. Probabilities within ``boundary`` of 0 or 1
        (e.g. a start distribution estimated from one sequence) are on the boundary of the
        parameter space, where the information matrix does not apply: they are held fixed.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
            The data the model was fitted to.
        lengths : array-like of int, optional
            Sequence lengths.
        rel_step : float, optional
            Relative finite-difference step.
        boundary : float, optional
            Distance from 0 or 1 below which a probability is held fixed.

        Returns
        -------
        xarray.Dataset
            ``value``/``stderr`` on ``param`` (the free parameters), ``covariance`` and
            ``correlation`` on ``cov_i``/``cov_j``, ``slot_value``/``slot_stderr`` on
            ``slot``.
        """
        import copy

        check_is_fitted(self, "startprob_")
        Xv, lengths = self._validate_X(X, lengths)
        pg = self.parameter_group()
        prob_prefix = ("transitions.", "emissions.emissionprob")
        at_edge = [n for n, v in zip(pg.free_names, pg.pack())
                   if n.startswith(prob_prefix) and (v < boundary or v > 1 - boundary)]
        if at_edge:
            pg.fix(*at_edge)
        x0 = pg.pack()
        n = x0.size
        work = copy.deepcopy(self)

        def loglik(free):
            vals = dict(pg.values(free).items())
            for name in vals:
                if name.startswith(prob_prefix):
                    arr = np.asarray(vals[name], dtype=float)
                    if np.any(arr < -1e-12) or np.any(arr > 1 + 1e-12):
                        return np.nan
                    vals[name] = np.clip(arr, 0.0, 1.0)  # rounding of 1 - sum(others)
            work._set_from_slots(vals)
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
                work._set_from_slots(pg.values(free))
                g_slots = work.loglik_gradient(Xv, lengths, group=pg)
                return pg.reduce_jacobian(g_slots[None, :], free)[0]

            for i in range(n):
                ei = np.zeros(n)
                ei[i] = h[i]
                H[:, i] = (grad_free(x0 + ei) - grad_free(x0 - ei)) / (2 * h[i])
            H = 0.5 * (H + H.T)
            n_loop = 0
        else:
            n_loop = n
        for i in range(n_loop):
            ei = np.zeros(n)
            ei[i] = h[i]
            H[i, i] = (loglik(x0 + ei) - 2 * f0 + loglik(x0 - ei)) / h[i] ** 2
            for j in range(i):
                ej = np.zeros(n)
                ej[j] = h[j]
                H[i, j] = H[j, i] = (loglik(x0 + ei + ej) - loglik(x0 + ei - ej)
                                     - loglik(x0 - ei + ej) + loglik(x0 - ei - ej)
                                     ) / (4 * h[i] * h[j])
        try:
            cov = np.linalg.inv(-H)
        except np.linalg.LinAlgError:
            cov = np.full((n, n), np.nan)
        stderr = np.sqrt(np.where(np.diag(cov) > 0, np.diag(cov), np.nan))
        with np.errstate(invalid="ignore", divide="ignore"):
            correl = cov / np.outer(stderr, stderr)
        slot_cov = pg.propagate_covariance(cov)
        slot_var = np.diag(slot_cov)
        slot_stderr = np.sqrt(np.where(slot_var >= 0, slot_var, np.nan))
        names = pg.free_names
        return xr.Dataset(
            {"value": ("param", x0), "stderr": ("param", stderr),
             "covariance": (("cov_i", "cov_j"), cov),
             "correlation": (("cov_i", "cov_j"), correl),
             "slot_value": ("slot", pg.values(x0).array),
             "slot_stderr": ("slot", slot_stderr)},
            coords={"param": names, "cov_i": names, "cov_j": names, "slot": pg.slot_names},
            attrs={"method": "observed information (central differences of the "
                             + ("analytic score)" if self._has_slot_gradient()
                                else "log-likelihood)"),
                   "log_likelihood": float(f0),
                   "held_at_boundary": ", ".join(at_edge)})

    # ------------------------------------------------------------------ text report
    def report(self, X=None, lengths=None) -> str:
        """A readable summary: tying, parameters per group, and fit statistics on ``X``.

        Parameters
        ----------
        X : array-like, optional
            Data for the log-likelihood, AIC and BIC lines.
        lengths : array-like of int, optional
            Sequence lengths of ``X``.

        Returns
        -------
        str
            The report.
        """
        check_is_fitted(self, "startprob_")
        lines = [f"[[{type(self).__name__}]]",
                 f"    states             = {self.n_components}",
                 f"    emission groups    = {self.state_groups_}",
                 f"    tied self-loops    = {self.transition_groups_ or 'none'}",
                 f"    free parameters    = {self.n_free_parameters()}"]
        mon = getattr(self, "monitor_", None)
        if mon is not None and mon.history:
            lines.append(f"    EM iterations      = {mon.iter} "
                         f"({'converged' if self._em_converged() else 'not converged'})")
        if X is not None:
            ll = self.score(X, lengths)
            n = np.asarray(X).shape[0]
            k = self.n_free_parameters()
            lines += [f"    log-likelihood     = {ll:.6f}",
                      f"    AIC                = {-2 * ll + 2 * k:.4f}",
                      f"    BIC                = {-2 * ll + k * np.log(n):.4f}"]
        lines.append("[[Emission groups]]")
        params = self._emission_params_for_report()
        for gi, g in enumerate(self.state_groups_):
            parts = []
            for name, arr in params.items():
                val = np.asarray(arr)[gi] if arr.shape[0] == self.n_groups_ else arr
                parts.append(f"{name}={np.array2string(np.ravel(val), precision=5)}")
            lines.append(f"    group {gi} (states {g}): " + ", ".join(parts))
        lines.append("[[Start probabilities]]")
        lines.append("    " + np.array2string(np.asarray(self.startprob_), precision=5))
        lines.append("[[Transition matrix]]")
        for row in np.asarray(self.transmat_):
            lines.append("    " + np.array2string(row, precision=5, suppress_small=True))
        lines.append("[[Tying]]")
        lines.append("\n".join("    " + ln for ln in
                               self.parameter_group().describe().splitlines()))
        return "\n".join(lines)

    # ------------------------------------------------------------------ xarray
    def to_xarray(self, X, lengths=None, *, client=None) -> xr.Dataset:
        """Posteriors, Viterbi path and fitted parameters as an :class:`xarray.Dataset`.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
            Observations (stacked sequences); with ``client``, also a dask array or a list
            of ``.npy``/netCDF/zarr files read by the workers.
        lengths : array-like of int, optional
            Sequence lengths.
        client : dask.distributed.Client, optional
            Compute on this Dask cluster: the per-time variables are then dask arrays whose
            blocks (whole sequences) are kept on the workers.

        Returns
        -------
        xarray.Dataset
            Dimensions ``time``, ``state``, ``group`` (plus ``feature``/``symbol`` and
            ``state_to``): ``state_posterior``, ``group_posterior`` (probability of each
            tied group, i.e. of the observable level), ``viterbi_state``,
            ``viterbi_group``, ``sequence``, the observations, ``startprob``,
            ``transmat``, ``state_group`` and the per-group emission parameters; provenance
            and fit statistics in ``attrs``.
        """
        if client is not None:
            from . import _distributed
            return _distributed.to_xarray(self, X, lengths, client=client)
        check_is_fitted(self, "startprob_")
        Xv, lengths = self._validate_X(X, lengths)
        log_prob, post = self.score_samples(Xv, lengths)
        vit_ll, path = self.decode(Xv, lengths, algorithm="viterbi")
        arrays = {"X": Xv, "state_posterior": post,
                  "group_posterior": np.asarray(post @ self.tie_matrix().toarray()),
                  "viterbi_state": path, "viterbi_group": self.state_to_group_[path],
                  "sequence": np.repeat(np.arange(len(lengths)), lengths)}
        return self._results_dataset(arrays, n_sequences=len(lengths), log_prob=log_prob,
                                     viterbi_log_prob=vit_ll)

    def _results_dataset(self, arrays: dict, *, n_sequences: int, log_prob: float,
                         viterbi_log_prob: float) -> xr.Dataset:
        """The :meth:`to_xarray` Dataset from the per-time arrays (numpy or dask)."""
        Xv, post = arrays["X"], arrays["state_posterior"]
        s2g = self.state_to_group_
        n, K, n_g = Xv.shape[0], self.n_components, self.n_groups_
        vit_ll = viterbi_log_prob
        is_cat = hasattr(self, "emissionprob_")
        obs_dim = "symbol" if is_cat else "feature"
        ds = xr.Dataset(coords={"time": np.arange(n), "state": np.arange(K),
                                "group": np.arange(n_g), "state_to": np.arange(K)})
        if is_cat:
            ds["X"] = ("time", Xv[:, 0], {"long_name": "observed symbol"})
            ds = ds.assign_coords(symbol=np.arange(self.n_features))
        else:
            ds["X"] = (("time", "feature"), Xv.astype(float, copy=False),
                       {"long_name": "observations"})
            ds = ds.assign_coords(feature=np.arange(Xv.shape[1]))
        ds["sequence"] = ("time", arrays["sequence"], {"long_name": "index of the sequence"})
        ds["state_posterior"] = (("time", "state"), post,
                                 {"long_name": "P(state | all observations)"})
        ds["group_posterior"] = (("time", "group"), arrays["group_posterior"],
                                 {"long_name": "P(tied group | all observations)"})
        ds["viterbi_state"] = ("time", arrays["viterbi_state"],
                               {"long_name": "Viterbi state path"})
        ds["viterbi_group"] = ("time", arrays["viterbi_group"],
                               {"long_name": "group of the Viterbi state"})
        ds["state_group"] = ("state", s2g, {"long_name": "emission group of each state"})
        ds["startprob"] = ("state", np.asarray(self.startprob_))
        ds["transmat"] = (("state", "state_to"), np.asarray(self.transmat_))
        mixture_dims = {"weights": ("group", "mix"), "means": ("group", "mix", "feature"),
                        "covars": {"diag": ("group", "mix", "feature"),
                                   "spherical": ("group", "mix"),
                                   "full": ("group", "mix", "feature", "feature_j"),
                                   "tied": ("group", "feature", "feature_j")}}
        for name, arr in self._emission_params_for_report().items():
            arr = np.asarray(arr)
            if self._is_mixture():
                dims = mixture_dims[name]
                dims = dims[self.covariance_type] if isinstance(dims, dict) else dims
                ds[name] = (dims, arr)
            elif name == "covars" and self.covariance_type == "tied":
                ds[name] = (("feature", "feature_j"), arr)
            elif name == "covars" and self.covariance_type == "full":
                ds[name] = (("group", "feature", "feature_j"), arr)
            elif name == "covars" and self.covariance_type == "spherical":
                ds[name] = (("group",), arr.reshape(n_g, -1)[:, 0])
            else:
                ds[name] = (("group", obs_dim), arr.reshape(n_g, -1))
        if "feature_j" in ds.dims:
            ds = ds.assign_coords(feature_j=np.arange(self.n_features))
        if "mix" in ds.dims:
            ds = ds.assign_coords(mix=np.arange(self.n_mix))
        from sciTie import __version__ as sci_version
        import hmmlearn

        k = self.n_free_parameters()
        mon = getattr(self, "monitor_", None)
        ds.attrs.update({
            "model": type(self).__name__,
            "tied_states": str(self.state_groups_),
            "tied_transitions": str(self.transition_groups_),
            "log_likelihood": float(log_prob),
            "viterbi_log_prob": float(vit_ll),
            "n_free_parameters": int(k),
            "aic": float(-2 * log_prob + 2 * k),
            "bic": float(-2 * log_prob + k * np.log(n)),
            "n_samples": int(n),
            "n_sequences": int(n_sequences),
            "em_iterations": int(mon.iter) if mon is not None else 0,
            "em_converged": int(self._em_converged()),
            "sciTie_version": str(sci_version),
            "hmmlearn_version": str(hmmlearn.__version__),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "parameter_group": self.parameter_group().describe(),
        })
        return ds
