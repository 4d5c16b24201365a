"""Joint Rietveld refinement: one structure group shared by any number of patterns."""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import xarray as xr

from ..core import ParameterGroup, ResidualTerm, fit_least_squares
from ._crystal import ATOM_PARAMS, CELL_NAMES, Phase
from ._pattern import PATTERN_PARAMS, PowderPattern

__all__ = ["JointRefinement", "STAGES", "pattern_statistics"]

#: Default staged recipe: what each stage adds to the refined set.
STAGES = (
    ("scale+background", {"pattern": ("scale", "bkg")}),
    ("cell", {"structure": ("cell",), "pattern": ("zero", "cell_correction")}),
    ("profile", {"pattern": ("profile",)}),
    ("atoms", {"structure": ("xyz", "uiso"), "pattern": ("late_profile",)}),
)


def pattern_statistics(obs, calc, sigma, n_params: int = 0) -> dict:
    """Rp, wRp (percent), chi-square and GOF of one pattern (or of concatenated patterns)."""
    w = 1.0 / sigma ** 2
    r = obs - calc
    chi2 = float(np.sum(w * r * r))
    n = obs.size
    return {"rp": 100 * float(np.sum(np.abs(r)) / np.sum(np.abs(obs))),
            "wrp": 100 * float(np.sqrt(chi2 / np.sum(w * obs * obs))),
            "chi2": chi2, "npoints": int(n),
            "gof": float(np.sqrt(chi2 / max(n - n_params, 1)))}


def _set(group: ParameterGroup, names, vary: bool) -> None:
    """Fix or free ``names``, skipping slots that are tied or constrained."""
    for n in names:
        try:
            group._set_vary([n], vary)
        except ValueError as exc:
            if "tied or constrained" not in str(exc):
                raise


class JointRefinement:
    """Rietveld refinement of several powder patterns of one phase, sharing its structure.

    Parameters
    ----------
    phase : Phase
        The structure; its :attr:`Phase.group` (cell, atoms) is shared by every pattern.
    patterns : list of PowderPattern
        Each keeps its own group (scale, instrument, background, cell correction). Pattern
        names must be unique.
    weights : dict, optional
        Extra weight per pattern name (default 1).

    Attributes
    ----------
    group : ParameterGroup
        The joint group: child ``structure`` and one child per pattern. Choose what varies
        with ``group.fix``/``group.free`` (or :meth:`set_refined`), then call :meth:`fit`.
    result_ : FitResult
        Result of the last :meth:`fit`.
    statistics_ : dict
        Per pattern and ``"total"``: Rp, wRp, Bragg R (percent), chi2, GOF. The total GOF
        is ``sqrt(chi2 / (N - P))``; a pattern's GOF is ``sqrt(chi2 / N)`` (the parameters
        are shared, so they are not split between patterns).

    Examples
    --------
    >>> ref = JointRefinement(phase, [xray, neutron])        # doctest: +SKIP
    >>> ref.refine_stages()                                  # doctest: +SKIP
    >>> print(ref.report())                                  # doctest: +SKIP
    """

    def __init__(self, phase: Phase, patterns, *, weights: dict | None = None) -> None:
        if not isinstance(phase, Phase):
            raise TypeError(f"phase must be a Phase, got {type(phase).__name__}")
        patterns = list(patterns)
        if not patterns:
            raise ValueError("patterns: need at least one PowderPattern")
        for p in patterns:
            if not isinstance(p, PowderPattern):
                raise TypeError(f"patterns must be PowderPattern objects, got {type(p).__name__}")
            if p.phase is not phase:
                raise ValueError(f"pattern {p.name!r} was built for another Phase object")
        names = [p.name for p in patterns]
        if len(set(names)) != len(names) or "structure" in names:
            raise ValueError(f"pattern names must be unique and not 'structure', got {names}")
        self.phase = phase
        self.patterns = patterns
        self.weights = dict(weights or {})
        self.group = ParameterGroup("joint", description="joint Rietveld refinement")
        self.group.add_group(phase.group)
        for p in patterns:
            self.group.add_group(p.group)
        # the coordinates / uiso that symmetry leaves free, remembered for staged refinement
        self._refinable_atoms = [n for n in phase.group.free_names
                                 if n.split(".")[-1] in ("x", "y", "z", "uiso")]
        self._refinable_cell = [n for n in phase.group.free_names if n in CELL_NAMES]
        self.result_ = None
        self.statistics_: dict = {}
        self.fit_seconds_ = 0.0

    # -- choosing what varies ------------------------------------------------------------------
    def pattern(self, name: str) -> PowderPattern:
        """The pattern called ``name``."""
        for p in self.patterns:
            if p.name == name:
                return p
        raise KeyError(f"no pattern named {name!r}; have {[p.name for p in self.patterns]}")

    def fix_all(self) -> None:
        """Fix every parameter of the structure and of every pattern (ties stay)."""
        s = self.phase.group
        _set(s, CELL_NAMES, False)
        for a in self.phase.atoms:
            _set(s, [f"{a.name}.{p}" for p in ATOM_PARAMS], False)
        for p in self.patterns:
            _set(p.group, (*PATTERN_PARAMS, "bkg"), False)

    def set_refined(self, structure=(), patterns: dict | None = None) -> None:
        """Fix everything, then free the named items.

        Parameters
        ----------
        structure : iterable of str
            Slot names of the structure group, or the keywords ``"cell"`` (lattice
            parameters allowed by the crystal system), ``"xyz"`` (coordinates allowed by site
            symmetry), ``"uiso"`` and ``"occ"``.
        patterns : dict
            Pattern name (or ``"*"`` for all) to an iterable of parameter names or the
            keywords ``"profile"`` (the pattern's ``refine_profile``), ``"late_profile"``
            (its ``refine_profile_late``, freed with the atoms in :data:`STAGES`), ``"zero"`` (zero
            shift, plus the sample displacement for patterns created with
            ``refine_displacement=True``) and ``"cell_correction"`` (the D terms allowed by
            the crystal system, for patterns created with ``cell_correction=True``).
        """
        self.fix_all()
        s = self.phase.group
        names: list[str] = []
        for item in structure:
            if item == "cell":
                names += self._refinable_cell
            elif item == "xyz":
                names += [n for n in self._refinable_atoms if n.split(".")[-1] in "xyz"]
            elif item == "uiso":
                names += [n for n in self._refinable_atoms if n.endswith(".uiso")]
            elif item == "occ":
                names += [f"{a.name}.occ" for a in self.phase.atoms]
            else:
                names.append(item)
        _set(s, names, True)
        for key, items in (patterns or {}).items():
            targets = self.patterns if key == "*" else [self.pattern(key)]
            for p in targets:
                pn: list[str] = []
                for item in items:
                    if item == "profile":
                        pn += list(getattr(p, "refine_profile", ("U", "V", "W")))
                    elif item == "late_profile":
                        pn += list(getattr(p, "refine_profile_late", ()))
                    elif item == "cell_correction":
                        if getattr(p, "cell_correction", False):
                            pn += p.cell_correction_names
                    elif item == "zero":
                        if getattr(p, "refine_zero", True):
                            pn.append("zero")
                        if getattr(p, "refine_displacement", False):
                            pn += (["shift"] if p.geometry == "bragg-brentano"
                                   else ["disp_x", "disp_y"])
                    else:
                        pn.append(item)
                _set(p.group, pn, True)

    # -- fitting ----------------------------------------------------------------------------------
    def _index(self):
        grp = self.group
        out = []
        for p in self.patterns:
            idx = np.array([grp.slot_index(n) for n in p.local_names("structure")], dtype=int)
            out.append(idx)
        return out

    def initialize(self) -> "JointRefinement":
        """Starting scale and background of every pattern by linear least squares."""
        vals = self.group.values()
        for p, idx in zip(self.patterns, self._index()):
            loc = vals.array[idx]
            cell, atoms, pv, _ = self._split(p, loc)
            pv = pv.copy()
            pv[PATTERN_PARAMS.index("scale")] = 1.0
            ypk, _ = p.evaluate(cell, atoms, pv, np.zeros(p.n_background), grad=False)
            A = np.column_stack([ypk, p.cheb]) / p.sigma[:, None]
            coef, *_ = np.linalg.lstsq(A, p.obs / p.sigma, rcond=None)
            scale = coef[0] if coef[0] > 0 else np.sum(p.obs) / np.sum(ypk)
            p.group["scale"].value = float(scale)
            p.group["bkg"].value = coef[1:]
        return self

    @staticmethod
    def _split(p: PowderPattern, loc: np.ndarray):
        na = len(p.phase.atoms)
        cell = loc[:6]
        atoms = loc[6:6 + 5 * na].reshape(na, 5)
        pv = loc[6 + 5 * na:6 + 5 * na + len(PATTERN_PARAMS)]
        bkg = loc[6 + 5 * na + len(PATTERN_PARAMS):]
        return cell, atoms, pv, bkg

    def _terms(self):
        G = self.group.tie_matrix()
        active_slots = np.flatnonzero(np.asarray(abs(G).sum(axis=1)).ravel() > 0)
        terms = []
        n_slots = self.group.n_slots
        for p, idx in zip(self.patterns, self._index()):
            cols = np.flatnonzero(np.isin(idx, active_slots))

            def residual(vals, p=p, idx=idx):
                cell, atoms, pv, bkg = self._split(p, vals.array[idx])
                y, _ = p.evaluate(cell, atoms, pv, bkg, grad=False)
                return (p.obs - y) / p.sigma

            def jacobian(vals, p=p, idx=idx, cols=cols):
                cell, atoms, pv, bkg = self._split(p, vals.array[idx])
                _, J = p.evaluate(cell, atoms, pv, bkg, grad=True, cols=cols)
                out = np.zeros((p.x.size, n_slots))
                out[:, idx] = -J / p.sigma[:, None]
                return out

            terms.append(ResidualTerm(p.name, residual, jacobian,
                                      weight=float(self.weights.get(p.name, 1.0))))
        return terms

    def fit(self, *, max_nfev: int | None = None, ftol: float = 1e-8, xtol: float = 1e-8,
            gtol: float = 1e-8, method: str | None = None) -> "JointRefinement":
        """Refine the currently free parameters; values are written back into the groups.

        Parameters
        ----------
        max_nfev : int, optional
            Evaluation budget.
        ftol, xtol, gtol : float
            Convergence tolerances of :func:`scipy.optimize.least_squares`.
        method : {'lm', 'trf', 'dogbox'}, optional
            Default: Levenberg-Marquardt ('lm') unless a free parameter has bounds.

        Returns
        -------
        self
        """
        if method is None:
            lo, hi = self.group.bounds()
            method = "trf" if (np.any(np.isfinite(lo)) or np.any(np.isfinite(hi))) else "lm"
        t0 = time.perf_counter()
        res = fit_least_squares(self.group, self._terms(), max_nfev=max_nfev, ftol=ftol,
                                xtol=xtol, gtol=gtol, method=method)
        self.fit_seconds_ = time.perf_counter() - t0
        self.result_ = res
        self.group.set_free(res.x)
        self._statistics()
        return self

    def refine_stages(self, stages=STAGES, *, max_nfev: int | None = None,
                      verbose: bool = False) -> "JointRefinement":
        """Staged refinement as crystallographers do it; each stage adds to the refined set.

        Parameters
        ----------
        stages : sequence of (label, dict)
            Each dict has ``"structure"`` and/or ``"pattern"`` items (see
            :meth:`set_refined`; ``"pattern"`` items apply to every pattern).
        max_nfev : int, optional
            Evaluation budget per stage.
        verbose : bool
            Print wRp after every stage.
        """
        self.initialize()
        st: list[str] = []
        pt: list[str] = []
        self.stage_log_ = []
        for label, spec in stages:
            st += list(spec.get("structure", ()))
            pt += list(spec.get("pattern", ()))
            self.set_refined(structure=st, patterns={"*": pt})
            self.fit(max_nfev=max_nfev)
            self.stage_log_.append((label, self.result_.nvarys,
                                    {k: v["wrp"] for k, v in self.statistics_.items()}))
            if verbose:
                print(label, self.result_.nvarys, {k: round(v["wrp"], 3)
                                                   for k, v in self.statistics_.items()})
        return self

    # -- results ----------------------------------------------------------------------------------
    def calculate(self, name: str | None = None):
        """Calculated pattern(s) at the fit points with per-reflection information."""
        vals = self.group.values()
        out = {}
        for p, idx in zip(self.patterns, self._index()):
            if name is not None and p.name != name:
                continue
            cell, atoms, pv, bkg = self._split(p, vals.array[idx])
            y, _, info = p.evaluate(cell, atoms, pv, bkg, grad=False, peaks=True)
            out[p.name] = (y, info)
        return out[name] if name is not None else out

    def _statistics(self) -> None:
        nvar = self.result_.nvarys if self.result_ is not None else 0
        stats = {}
        allo, allc, alls = [], [], []
        for p_name, (y, info) in self.calculate().items():
            p = self.pattern(p_name)
            s = pattern_statistics(p.obs, y, p.sigma, 0)
            s["bragg_r"] = self._bragg_r(p, y, info)
            stats[p_name] = s
            allo.append(p.obs)
            allc.append(y)
            alls.append(p.sigma)
        tot = pattern_statistics(np.concatenate(allo), np.concatenate(allc),
                                 np.concatenate(alls), nvar)
        for s in stats.values():
            s["gof"] = float(np.sqrt(s["chi2"] / s["npoints"]))
        stats["total"] = tot
        self.statistics_ = stats

    @staticmethod
    def _bragg_r(p: PowderPattern, y: np.ndarray, info: dict) -> float:
        contrib = info["I"][info["node"]] * info["profile"]
        ybk = info["ybkg"]
        ratio = np.where(np.abs(y - ybk) > 1e-12, (p.obs - ybk) / np.maximum(y - ybk, 1e-12), 0)
        refl = info["refl_index"][info["src"][info["node"]]]
        n = int(info["refl_index"].max()) + 1
        icalc = np.bincount(refl, weights=contrib, minlength=n)
        iobs = np.bincount(refl, weights=contrib * ratio[info["point"]], minlength=n)
        keep = icalc > 0
        return 100 * float(np.sum(np.abs(iobs[keep] - icalc[keep])) / np.sum(np.abs(iobs[keep])))

    def parameters(self, *, structure_prefix: bool = False) -> dict:
        """Refined parameters as ``{name: {"value", "stderr"}}``.

        Every free parameter, plus structure slots that are tied to free ones (``b`` of a
        tetragonal cell) with their propagated esds. Structure parameters are named ``a``,
        ``Pb.x`` ... (with ``structure_prefix=False``), pattern parameters ``xray.scale`` ...
        """
        if self.result_ is None:
            raise RuntimeError("call fit() or refine_stages() first")
        r = self.result_
        free = set(r.free_names)
        G = self.group.tie_matrix()
        moving = np.asarray(abs(G).sum(axis=1)).ravel() > 0
        out = {}
        for i, (n, v, s) in enumerate(zip(r.slot_names, r.slot_values, r.slot_stderr)):
            if n not in free and not (n.startswith("structure.") and moving[i]):
                continue
            key = n[len("structure."):] if (n.startswith("structure.")
                                             and not structure_prefix) else n
            out[key] = {"value": float(v), "stderr": float(s)}
        return out

    def slot_stderr(self) -> dict:
        """Standard errors of every slot (tied ones propagated), by slot name."""
        r = self.result_
        return dict(zip(r.slot_names, r.slot_stderr))

    def report(self, *, min_correl: float = 0.5) -> str:
        """Text report: figures of merit per pattern and total, then the fit report.

        Parameters
        ----------
        min_correl : float
            Smallest absolute correlation listed.
        """
        lines = ["[[Joint Rietveld refinement]]",
                 f"    patterns: {', '.join(p.name for p in self.patterns)}",
                 f"    free parameters: {self.result_.nvarys if self.result_ else 0}",
                 f"    {'pattern':<10} {'points':>7} {'Rp %':>7} {'wRp %':>7} {'chi2':>11} "
                 f"{'GOF':>6} {'R_Bragg %':>9}"]
        for k, s in self.statistics_.items():
            rb = s.get("bragg_r", float("nan"))
            lines.append(f"    {k:<10} {s['npoints']:>7d} {s['rp']:>7.3f} {s['wrp']:>7.3f} "
                         f"{s['chi2']:>11.1f} {s['gof']:>6.3f} {rb:>9.3f}")
        if self.result_ is not None:
            lines.append(self.result_.report(min_correl=min_correl))
        return "\n".join(lines)

    def to_xarray(self) -> xr.Dataset:
        """Observed, calculated, background and difference per pattern, plus the parameters.

        Each pattern ``<name>`` has variables ``<name>_obs``, ``<name>_calc``,
        ``<name>_background``, ``<name>_sigma`` on dim ``two_theta_<name>``, and the
        reflections in its range (``<name>_hkl``, ``<name>_F2``, ``<name>_intensity`` with d, 2θ
        and multiplicity coordinates) on dim ``refl_<name>``; the fit
        parameters come from ``FitResult.to_xarray()`` (dims ``param``, ``cov_i``,
        ``cov_j``). Figures of merit are in ``attrs``.
        """
        data = {}
        for p_name, (y, info) in self.calculate().items():
            p = self.pattern(p_name)
            dim = f"two_theta_{p_name}"
            coords = {dim: (dim, p.x, {"units": "degree"})}
            for k, v in (("obs", p.obs), ("calc", y), ("background", info["ybkg"]),
                         ("sigma", p.sigma), ("difference", p.obs - y)):
                data[f"{p_name}_{k}"] = xr.DataArray(v, dims=(dim,), coords=coords)
            nr = len(p.hkl)
            pos = info["refl_pos"][:nr]
            keep = (pos >= p.x[0]) & (pos <= p.x[-1])
            rdim = f"refl_{p_name}"
            rc = {rdim: np.flatnonzero(keep),
                  f"{rdim}_two_theta": (rdim, pos[keep], {"units": "degree"}),
                  f"{rdim}_d": (rdim, 1 / np.sqrt(info["q"][keep]), {"units": "angstrom"}),
                  f"{rdim}_multiplicity": (rdim, p.mult[keep])}
            data[f"{p_name}_hkl"] = xr.DataArray(p.hkl[keep], dims=(rdim, "miller"), coords=rc)
            data[f"{p_name}_F2"] = xr.DataArray(info["F2"][keep], dims=(rdim,), coords=rc)
            data[f"{p_name}_intensity"] = xr.DataArray(info["refl_I"][:nr][keep], dims=(rdim,),
                                                       coords=rc)
        ds = xr.Dataset(data)
        if self.result_ is not None:
            ds = xr.merge([ds, self.result_.to_xarray()], combine_attrs="override")
        attrs = {}
        for k, s in self.statistics_.items():
            for m in ("rp", "wrp", "chi2", "gof", "bragg_r"):
                if m in s:
                    attrs[f"{k}_{m}"] = float(s[m])
        ds.attrs = {"model": "sciTie.diffraction.JointRefinement", **attrs}
        return ds

    def to_cif(self) -> str:
        """The refined structure as CIF text with esds in parentheses."""
        se = {}
        if self.result_ is not None:
            for n, s in self.slot_stderr().items():
                if n.startswith("structure."):
                    se[n[len("structure."):]] = s
        return self.phase.to_cif(stderr=se)

    def write_cif(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write :meth:`to_cif` to ``path`` (never replaces a file unless ``overwrite``)."""
        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
        path.write_text(self.to_cif())
        return path

    def plot(self, name: str, ax=None, *, path: str | os.PathLike | None = None):
        """Rietveld plot of pattern ``name``: observed, calculated, difference and ticks.

        Returns the matplotlib Axes; with ``path`` the figure is also saved as PNG.
        """
        import matplotlib
        if ax is None and path is not None:
            matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        p = self.pattern(name)
        y, info = self.calculate(name)
        if ax is None:
            fig, ax = plt.subplots(figsize=(10, 5))
        else:
            fig = ax.figure
        ax.plot(p.x, p.obs, "+", ms=3, color="tab:blue", label="observed")
        ax.plot(p.x, y, "-", lw=0.8, color="tab:red", label="calculated")
        ax.plot(p.x, info["ybkg"], "-", lw=0.6, color="tab:green", label="background")
        diff = p.obs - y
        off = min(p.obs.min(), y.min()) - 0.1 * (p.obs.max() - p.obs.min()) - diff.max()
        ax.plot(p.x, diff + off, "-", lw=0.6, color="tab:gray", label="difference")
        pos = info["refl_pos"][(info["refl_pos"] > p.x[0]) & (info["refl_pos"] < p.x[-1])
                               & (info["comp"] == 0)]
        ytick = off + diff.min() - 0.03 * (p.obs.max() - p.obs.min())
        ax.plot(pos, np.full(pos.shape, ytick), "|", color="k", ms=6, label="reflections")
        st = self.statistics_.get(name, {})
        ax.set_title(f"{name}: wRp = {st.get('wrp', float('nan')):.2f} %, "
                     f"Rp = {st.get('rp', float('nan')):.2f} %")
        ax.set_xlabel("2θ (degrees)")
        ax.set_ylabel("intensity (counts)")
        ax.legend(loc="upper right", fontsize=8)
        if path is not None:
            fig.savefig(path, dpi=110)
            plt.close(fig)
        return ax
