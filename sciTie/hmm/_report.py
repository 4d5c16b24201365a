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
            if name == "covars" and self.covariance_type == "tied":
                pass
            else:
                for g in groups:
                    if len(g) > 1:
                        em.tie([f"{name}[{s}]" for s in g[1:]], to=f"{name}[{g[0]}]")
            if letter not in self.params:
                em.fix(name)
            elif name == "emissionprob":
                for g in groups:
                    _normalised_row(em, name, (g[0],), np.asarray(arr)[g[0]], set())
            elif name == "covars" and self.covariance_type in ("full", "tied"):
                self._fix_covariance_lower(em, groups)
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
        heads = [None] if self.covariance_type == "tied" else [g[0] for g in groups]
        for h in heads:
            pre = "" if h is None else f"{h},"
            for a in range(D):
                for b in range(a):
                    em.tie(f"covars[{pre}{a},{b}]", to=f"covars[{pre}{b},{a}]")

    def _emission_slots(self):
        """(name, per-state array, params letter) of the emission parameters."""
        if hasattr(self, "lambdas_"):
            return [("lambdas", self.lambdas_, "l")]
        if hasattr(self, "emissionprob_"):
            return [("emissionprob", self.emissionprob_, "e")]
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
    def to_xarray(self, X, lengths=None) -> xr.Dataset:
        """Posteriors, Viterbi path and fitted parameters as an :class:`xarray.Dataset`.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
            Observations (stacked sequences).
        lengths : array-like of int, optional
            Sequence lengths.

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
        check_is_fitted(self, "startprob_")
        Xv, lengths = self._validate_X(X, lengths)
        log_prob, post = self.score_samples(Xv, lengths)
        vit_ll, path = self.decode(Xv, lengths, algorithm="viterbi")
        s2g = self.state_to_group_
        G = self.tie_matrix()
        group_post = np.asarray(post @ G.toarray())
        n, K, n_g = Xv.shape[0], self.n_components, self.n_groups_
        seq = np.repeat(np.arange(len(lengths)), lengths)
        is_cat = hasattr(self, "emissionprob_")
        obs_dim = "symbol" if is_cat else "feature"
        ds = xr.Dataset(coords={"time": np.arange(n), "state": np.arange(K),
                                "group": np.arange(n_g), "state_to": np.arange(K)})
        if is_cat:
            ds["X"] = ("time", Xv[:, 0], {"long_name": "observed symbol"})
            ds = ds.assign_coords(symbol=np.arange(self.n_features))
        else:
            ds["X"] = (("time", "feature"), np.asarray(Xv, dtype=float),
                       {"long_name": "observations"})
            ds = ds.assign_coords(feature=np.arange(Xv.shape[1]))
        ds["sequence"] = ("time", seq, {"long_name": "index of the sequence"})
        ds["state_posterior"] = (("time", "state"), post,
                                 {"long_name": "P(state | all observations)"})
        ds["group_posterior"] = (("time", "group"), group_post,
                                 {"long_name": "P(tied group | all observations)"})
        ds["viterbi_state"] = ("time", path, {"long_name": "Viterbi state path"})
        ds["viterbi_group"] = ("time", s2g[path], {"long_name": "group of the Viterbi state"})
        ds["state_group"] = ("state", s2g, {"long_name": "emission group of each state"})
        ds["startprob"] = ("state", np.asarray(self.startprob_))
        ds["transmat"] = (("state", "state_to"), np.asarray(self.transmat_))
        for name, arr in self._emission_params_for_report().items():
            arr = np.asarray(arr)
            if name == "covars" and self.covariance_type == "tied":
                ds[name] = (("feature", "feature_j"), arr)
            elif name == "covars" and self.covariance_type == "full":
                ds[name] = (("group", "feature", "feature_j"), arr)
            elif name == "covars" and self.covariance_type == "spherical":
                ds[name] = (("group",), arr.reshape(n_g, -1)[:, 0])
            else:
                ds[name] = (("group", obs_dim), arr.reshape(n_g, -1))
        if "feature_j" in ds.dims:
            ds = ds.assign_coords(feature_j=np.arange(self.n_features))
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
            "n_sequences": int(len(lengths)),
            "em_iterations": int(mon.iter) if mon is not None else 0,
            "em_converged": int(self._em_converged()),
            "sciTie_version": str(sci_version),
            "hmmlearn_version": str(hmmlearn.__version__),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "parameter_group": self.parameter_group().describe(),
        })
        return ds
