"""The trained solution: prediction over time windows, face traces, periodicity violation, and
the evaluation grid as an :class:`xarray.Dataset`."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch
import xarray as xr
from torch import nn

from ..errors import ValidationError
from ._problems import PDEProblem

__all__ = ["WindowedSolution", "evaluation_dataset"]

_CHUNK = 65536


class WindowedSolution:
    """The networks of all time windows read as one function of space and time.

    Parameters
    ----------
    problem : PDEProblem
        The PDE (coordinates, periodicity).
    networks : sequence of PINNNetwork
        One per window, in time order.
    boundary_networks : sequence of dict
        Per window, the shared boundary network of each periodic coordinate (shared mode).
    window_edges : array_like
        ``len(networks) + 1`` times.
    """

    def __init__(self, problem: PDEProblem, networks: Sequence[nn.Module],
                 boundary_networks: Sequence[Mapping[str, nn.Module]],
                 window_edges: np.ndarray) -> None:
        self.problem = problem
        self.networks = list(networks)
        self.boundary_networks = list(boundary_networks)
        self.edges = np.asarray(window_edges, dtype=float)
        p = next(self.networks[0].parameters())
        self.dtype, self.device = p.dtype, p.device
        # the period each window's network actually has (trainable periods move)
        self.periods = []
        for net in self.networks:
            emb = getattr(net, "x_features", None)
            own = dict(zip(problem.space, emb.periods)) if emb is not None else {}
            self.periods.append({c: own.get(c) or problem.periods[c] for c in problem.periodic})

    def _shifted(self, c: str, z: torch.Tensor) -> torch.Tensor:
        """``z`` moved by one period of ``c`` (the period of the window each point is in)."""
        idx = self._window_index(z[:, -1])
        shift = torch.as_tensor([p[c] for p in self.periods], dtype=z.dtype,
                                device=z.device)[idx]
        out = z.clone()
        out[:, self.problem.coordinates.index(c)] += shift
        return out

    def _window_index(self, t: torch.Tensor) -> torch.Tensor:
        inner = torch.as_tensor(self.edges[1:-1], dtype=t.dtype, device=t.device)
        return torch.bucketize(t.detach().contiguous(), inner, right=True).clamp(
            max=len(self.networks) - 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Outputs ``(n, k)`` at points ``z`` ``(n, n_coords)``; differentiable in ``z``."""
        idx = self._window_index(z[:, -1])
        out = torch.zeros(z.shape[0], len(self.problem.outputs), dtype=z.dtype, device=z.device)
        for w, net in enumerate(self.networks):
            sel = idx == w
            if bool(sel.any()):
                out = out.index_put((sel,), net.forward_points(z[sel]))
        return out

    def as_points(self, coords: Sequence[Any]) -> tuple[torch.Tensor, tuple[int, ...]]:
        """Broadcast coordinate arrays to one shape; return them as a point tensor."""
        names = self.problem.coordinates
        if len(coords) != len(names):
            raise ValidationError(f"expected {len(names)} coordinate arrays ({', '.join(names)}); "
                                  f"got {len(coords)}")
        arrays = []
        for c, name in zip(coords, names):
            try:
                arr = np.asarray(c, dtype=float)
            except (TypeError, ValueError):
                raise ValidationError(f"{name} must be numeric; got {c!r}") from None
            if not np.all(np.isfinite(arr)):
                raise ValidationError(f"{name} holds non-finite values")
            if name not in self.problem.periodic and arr.size:
                _check_inside(arr, name, self.problem.domain(name))
            arrays.append(arr)
        try:
            arrays = np.broadcast_arrays(*arrays)
        except ValueError:
            shapes = " and ".join(str(np.shape(c)) for c in coords)
            raise ValidationError(f"{', '.join(names)} must broadcast to one shape; got shapes "
                                  f"{shapes}") from None
        z = torch.as_tensor(np.stack([a.ravel() for a in arrays], axis=1), dtype=self.dtype,
                            device=self.device)
        return z, arrays[0].shape

    def predict(self, coords: Sequence[Any]) -> np.ndarray:
        """Outputs at broadcast coordinates: shape ``broadcast + (k,)``."""
        z, shape = self.as_points(coords)
        out = []
        with torch.no_grad():
            for i in range(0, z.shape[0], _CHUNK):
                out.append(self.forward(z[i:i + _CHUNK]))
        k = len(self.problem.outputs)
        if not out:
            return np.zeros((*shape, k))
        return torch.cat(out).cpu().double().numpy().reshape(*shape, k)

    def _face_values(self, c: str, z: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Outputs and their derivative along ``c`` at points ``z``, ``(n, k)`` each."""
        ic = self.problem.coordinates.index(c)
        cols = [z[:, i:i + 1].clone().requires_grad_(i == ic) for i in range(z.shape[1])]
        out = self.forward(torch.cat(cols, dim=1))
        slopes = []
        for j in range(out.shape[1]):
            (g,) = torch.autograd.grad(out[:, j].sum(), cols[ic], retain_graph=True)
            slopes.append(g[:, 0])
        return (out.detach().cpu().double().numpy(),
                torch.stack(slopes, 1).detach().cpu().double().numpy())

    def face_points(self, c: str, t: np.ndarray, n_side: int = 33) -> torch.Tensor:
        """Points on the lower face of ``c``: a grid of the other spatial coordinates × ``t``."""
        axes = []
        for name in self.problem.space:
            if name == c:
                axes.append(np.array([self.problem.domain(c)[0]]))
            else:
                axes.append(np.linspace(*self.problem.domain(name), n_side))
        grids = np.meshgrid(*axes, np.asarray(t, dtype=float).ravel(), indexing="ij")
        return torch.as_tensor(np.stack([g.ravel() for g in grids], axis=1), dtype=self.dtype,
                               device=self.device)

    def face_jumps(self, c: str, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Jumps of values and normal slopes of every output across one period of ``c``."""
        z_lo = self.face_points(c, t)
        z_hi = self._shifted(c, z_lo)
        u_lo, s_lo = self._face_values(c, z_lo)
        u_hi, s_hi = self._face_values(c, z_hi)
        return u_hi - u_lo, s_hi - s_lo

    def periodicity_violation(self, t: np.ndarray) -> tuple[float, float]:
        """Largest jump of any output (and of its normal slope) across any periodic coordinate."""
        jumps = [self.face_jumps(c, t) for c in self.problem.periodic]
        if not jumps:
            return 0.0, 0.0
        return (max(float(np.max(np.abs(j[0]))) for j in jumps),
                max(float(np.max(np.abs(j[1]))) for j in jumps))

    def traces(self, t: np.ndarray) -> dict[str, np.ndarray]:
        """1-D problems: ``u`` and ``u_x`` at both ends of the period (and the shared ``g``)."""
        z_lo = self.face_points("x", t)
        z_hi = self._shifted("x", z_lo)
        out: dict[str, np.ndarray] = {}
        for z, end in ((z_lo, "left"), (z_hi, "right")):
            u, ux = self._face_values("x", z)
            out[f"u_{end}"], out[f"ux_{end}"] = u[:, 0], ux[:, 0]
        if self.boundary_networks and self.boundary_networks[0]:
            tt = z_lo[:, -1:]
            idx = self._window_index(tt[:, 0])
            g = torch.zeros(tt.shape[0], 2, dtype=tt.dtype, device=tt.device)
            with torch.no_grad():
                for w, nets in enumerate(self.boundary_networks):
                    sel = idx == w
                    if bool(sel.any()):
                        g[sel] = nets["x"](tt[sel])
            out["g"], out["gx"] = (g[:, 0].cpu().double().numpy(),
                                   g[:, 1].cpu().double().numpy())
        return out


def _rel_l2(error: np.ndarray, ref: np.ndarray) -> float:
    norm = float(np.linalg.norm(ref))
    return float(np.linalg.norm(error)) / norm if norm > 0 else float("nan")


def evaluation_dataset(solution: WindowedSolution, sizes: Sequence[int],
                       history: Sequence[Mapping[str, float]],
                       attrs: Mapping[str, Any]) -> xr.Dataset:
    """Prediction, reference and error on a grid, plus the loss history.

    Parameters
    ----------
    solution : WindowedSolution
        The trained solution.
    sizes : sequence of int
        Grid sizes per coordinate (space, then time); both ends of every interval included.
    history : sequence of dict
        Per-record losses (see :attr:`PeriodicPINN.history_`).
    attrs : mapping
        Extra attributes (settings, provenance).

    Returns
    -------
    xarray.Dataset
        ``<output>_pred`` (and ``<output>_ref``, ``<output>_error`` with a reference) on dims
        ``(t, x[, y])``; the loss history on dim ``record`` with the cumulative optimiser
        iteration as coordinate ``iteration``; attrs ``rel_l2`` (scored outputs together),
        ``rel_l2_<output>``, ``periodicity_violation``, ``periodicity_violation_slope``.
    """
    problem = solution.problem
    axes = [np.linspace(*problem.domain(c), int(n)) for c, n in zip(problem.coordinates, sizes)]
    space, t = axes[:-1], axes[-1]
    grids = np.meshgrid(*space, t, indexing="ij")  # (x[, y], t)
    pred = solution.predict(grids)  # (x[, y], t, k)
    order = (len(space), *range(len(space)))  # -> (t, x[, y])
    dims = ("t", *problem.space)
    pv, pvs = solution.periodicity_violation(t)
    units = problem.units
    data: dict[str, Any] = {}
    out_attrs: dict[str, Any] = {"problem": problem.name, "periodicity_violation": pv,
                                 "periodicity_violation_slope": pvs,
                                 "reference_source": problem.reference_source}
    out_attrs.update({f"pde_{k}": float(v) for k, v in problem.parameters.items()})
    reference = problem.reference_values(*space, t)
    err_sq = ref_sq = 0.0
    for i, o in enumerate(problem.outputs):
        p = np.transpose(pred[..., i], order)
        data[f"{o}_pred"] = (dims, p, {"long_name": f"{o} (PINN prediction)",
                                       **({"units": units[o]} if o in units else {})})
        if reference is None or o not in reference:
            continue
        r = reference[o]
        e = p - r
        if o in problem.gauge:  # defined up to a constant: compare after removing the mean
            axes_space = tuple(range(1, p.ndim))
            e = e - e.mean(axis=axes_space, keepdims=True)
            r = r - r.mean(axis=axes_space, keepdims=True)
        data[f"{o}_ref"] = (dims, reference[o], {"long_name": f"{o} (reference)",
                                                 **({"units": units[o]} if o in units else {})})
        data[f"{o}_error"] = (dims, e, {"long_name": f"{o} error (prediction - reference"
                                        + (", mean removed" if o in problem.gauge else "")
                                        + ")", **({"units": units[o]} if o in units else {})})
        out_attrs[f"rel_l2_{o}"] = _rel_l2(e, r)
        if o in problem.scored:
            err_sq += float(np.sum(e ** 2))
            ref_sq += float(np.sum(r ** 2))
    if reference is not None and ref_sq > 0:
        out_attrs["rel_l2"] = float(np.sqrt(err_sq / ref_sq))
    coords: dict[str, Any] = {}
    for c, a in zip(problem.coordinates, axes):
        long = {"x": "space (x)", "y": "space (y)", "t": "time"}[c]
        coords[c] = (c, a, {"long_name": long, **({"units": units[c]} if c in units else {})})
    if history:
        keys = sorted({k for h in history for k in h})
        n = len(history)
        iters = np.cumsum([h.get("iterations", 1) for h in history])
        coords["record"] = ("record", np.arange(n),
                            {"long_name": "record of the training history", "units": "1"})
        coords["iteration"] = ("record", iters.astype(float),
                               {"long_name": "optimiser iterations so far", "units": "1"})
        # a loss is a weighted mean square of residuals: dimensionless only when the problem is
        loss_units = ("1" if all(units.get(c, "") == "1" for c in
                                 (*problem.coordinates, *problem.outputs)) else "unstated")
        for k in keys:
            if k == "iterations":
                continue
            name = k if k.startswith("loss") or k == "causal_min_weight" else f"history_{k}"
            data[name] = (("record",), np.array([h.get(k, np.nan) for h in history],
                                                dtype=float),
                          {"long_name": f"training history: {k.replace('_', ' ')}",
                           "units": loss_units if k.startswith("loss") else "1"})
    out_attrs.update(attrs)
    return xr.Dataset(data, coords=coords, attrs=out_attrs)


def _check_inside(values: np.ndarray, name: str, domain: tuple[float, float]) -> None:
    """A non-periodic coordinate must stay in the interval the network was trained on."""
    lo, hi = domain
    tol = 1e-9 * max(1.0, abs(lo), abs(hi))
    if float(values.min()) < lo - tol or float(values.max()) > hi + tol:
        raise ValidationError(f"{name} must lie in the interval the model was trained on "
                              f"[{lo:g}, {hi:g}]; got values in [{float(values.min()):g}, "
                              f"{float(values.max()):g}] (a network does not extrapolate)")
