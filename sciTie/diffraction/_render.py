"""Windows and rendering: the peaks of a pattern drawn on its points, with their Jacobian.

Every peak row becomes one or more *items* (a profile with an asymmetry splits a peak into
weighted, shifted copies), each evaluated in a window around its position. Windows keep the
tails: the half-width is where the lost fraction of the peak's intensity drops below
``tail_tolerance`` (the profile's :meth:`~.profiles.PeakProfile.tails`); beyond the
profile's far-field radius a peak is evaluated in octave bands on coarse grids (see
:mod:`._tails`). Windows are frozen at the start of a fit (:class:`PeakWindows`), so that the
model is a smooth function of the parameters during it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ._kernels import item_sums as _item_sums_kernel
from ._kernels import interpolate_add, render_items
from ._pseudo_voigt import PV_SHAPE, pv_params
from ._tails import CORE_FWHM, WINDOW_MARGIN, TailGrids, window_fwhm

__all__ = ["PeakWindows", "render_pattern", "item_sums"]


@dataclass
class _Items:
    """Peaks to render: centre, switch centre, intensity, shape parameters, and where their
    derivative rows are (row ``drow[i]`` of the shared matrices ``D = (dI, dc, dW, dp)``,
    ``dW`` one per width slot; ``dp``, the rows of the switch centre, is None when it moves
    with the profile centre)."""

    c: np.ndarray            # profile centre
    p: np.ndarray            # centre of the window / switch (the reflection's position)
    I: np.ndarray
    prm: np.ndarray          # (n, k) shape parameters
    half: np.ndarray         # half-width of the window around p
    radius: np.ndarray       # switch radius C (inf: no switch)
    mask: str                # 'core' (1 - s), 'far' (a band of s)
    row: np.ndarray          # source row (reflection) of each item
    drow: np.ndarray         # row of its derivatives in D
    D: tuple | None = None   # shared derivative matrices, not sliced by take()
    level: np.ndarray | None = None      # far: grid level of each band
    scale: np.ndarray | None = None      # far: 2**band
    last: np.ndarray | None = None       # far: the outermost band
    inner: np.ndarray | None = None      # far: inner edge of the band
    taper: np.ndarray | None = None      # outer window W: weight tapers from W/2 to W

    def take(self, idx: np.ndarray) -> "_Items":
        def sub(k, a):
            return a if (a is None or k in ("mask", "D")) else a[idx]
        return _Items(**{k: sub(k, v) for k, v in self.__dict__.items()})


def _concat_items(parts: list[_Items]) -> _Items:
    keys = [k for k in _Items.__dataclass_fields__
            if k not in ("mask", "D", "level", "scale", "last", "inner", "taper")]
    return _Items(mask=parts[0].mask, **{k: np.concatenate([getattr(pt, k) for pt in parts])
                                         for k in keys})


class PeakWindows:
    """The frozen windows of one pattern: switch radius and window of every Bragg row and
    background peak, and the far-field grids.

    Each peak keeps its switch radius ``C`` (the profile's far-field radius) and its window
    ``W``, twice ``WINDOW_MARGIN`` times the half-width the lost-intensity criterion asks for,
    with a smooth taper from ``W/2`` to ``W``; ``tolerance = 0`` evaluates every peak over
    the whole pattern.
    """

    def __init__(self, pattern, v: np.ndarray) -> None:
        self.tolerance = pattern.tail_tolerance
        self.rows = self.bkpk = self.w_rows = self.w_bkpk = self.grids = None
        if self.tolerance <= 0:
            return
        w_rows, w_bk, r_rows, r_bk = criterion_windows(pattern, v)
        self.grids = TailGrids.build(pattern.x, np.concatenate([r_rows, r_bk]))
        self.rows, self.bkpk = r_rows, r_bk
        self.w_rows = 2.0 * WINDOW_MARGIN * w_rows
        self.w_bkpk = 2.0 * WINDOW_MARGIN * w_bk

    def hold(self, pattern, v: np.ndarray) -> bool:
        """Whether these windows still meet the lost-intensity criterion at ``v``."""
        if self.tolerance <= 0:
            return True
        w_rows, w_bk, _, _ = criterion_windows(pattern, v)
        return bool(np.all(w_rows <= 0.5 * self.w_rows * (1 + 1e-9))
                    and np.all(w_bk <= 0.5 * self.w_bkpk * (1 + 1e-9)))

    def light_copy(self) -> "PeakWindows":
        """A copy whose far-field grids are built again when needed (small to pickle)."""
        out = object.__new__(PeakWindows)
        out.__dict__.update(self.__dict__)
        if self.grids is not None:
            out.grids = TailGrids.build(self.grids.x, self.grids.radius)
        return out


def criterion_windows(pattern, v: np.ndarray):
    """Half-widths the lost-intensity criterion asks for now and far-field radii: Bragg rows,
    background peaks."""
    rows = pattern._rows(v, grad=False)
    inst = pattern.instrument
    lay = pattern.layout
    values = dict(zip(lay.names, v[lay.pattern]))
    asym = inst.asymmetry(rows["pos"], rows["nq"], values, lay.columns(), grad=False)
    w_rows, r_rows = inst.tails(rows["prm"], rows["fwhm"], rows["eta"], asym.span,
                                pattern.tail_tolerance)
    bk = v[lay.bkpk].reshape(4, -1)
    if bk.shape[1]:
        _, fw_bk, eta_bk = pv_params(bk[2], bk[3], inst.width_unit)
    else:
        fw_bk, eta_bk = np.zeros(0), np.zeros(0)
    w_bk = fw_bk * window_fwhm(eta_bk, pattern.tail_tolerance)
    return w_rows, w_bk, r_rows, CORE_FWHM * fw_bk


def _windows(xs: np.ndarray, sub: _Items) -> list[np.ndarray]:
    """Index windows of items on the grid ``xs``: ``[lo, hi)`` and, for a far-field band,
    the second side ``[lo2, hi2)`` (a band lies outside its inner edge)."""
    lo = np.searchsorted(xs, sub.p - sub.half, side="left")
    hi = np.searchsorted(xs, sub.p + sub.half, side="right")
    if sub.mask == "far":
        lo_in = np.searchsorted(xs, sub.p - sub.inner, side="left")
        hi_in = np.searchsorted(xs, sub.p + sub.inner, side="right")
        lo, hi, lo2, hi2 = lo, np.minimum(lo_in, hi), np.maximum(hi_in, lo), hi
    else:
        lo2 = hi2 = np.zeros_like(lo)
    return [np.asarray(a, dtype=np.int64) for a in (lo, hi, lo2, hi2)]


def _kernel_args(sub: _Items):
    radius = np.where(np.isfinite(sub.radius), sub.radius, 0.0)
    n = len(sub.c)
    scale = sub.scale if sub.scale is not None else np.ones(n)
    last = sub.last if sub.last is not None else np.ones(n, dtype=bool)
    taper = (np.where(np.isfinite(sub.taper), sub.taper, 0.0) if sub.taper is not None
             else np.zeros(n))
    return radius, scale, last, taper


def _derivative_rows(it: _Items, sel_cols: np.ndarray, grad: bool):
    """The items' derivative rows for the kernel: ``DD[row, term, entry]`` with each term's
    columns (positions in ``sel_cols``) where it is not zero, and whether ``dp`` is a term."""
    if not grad:
        return np.zeros((1, 1, 0)), np.zeros((1, 0), dtype=np.int64), np.zeros(1, np.int64), False
    terms = [it.D[0], it.D[1], *it.D[2]]
    has_p = it.D[3] is not None
    if has_p:
        terms.append(it.D[3])
    parts = [a[:, sel_cols] for a in terms]
    nonzero = [np.flatnonzero(np.any(a != 0, axis=0)) for a in parts]
    width = max(1, max(z.size for z in nonzero))
    DD = np.zeros((parts[0].shape[0], len(parts), width))
    cols = np.zeros((len(parts), width), dtype=np.int64)
    for t, (a, z) in enumerate(zip(parts, nonzero)):
        DD[:, t, :z.size] = a[:, z]
        cols[t, :z.size] = z
    return DD, cols, np.array([z.size for z in nonzero], dtype=np.int64), has_p


def _draw(shape, n_width: int, xs: np.ndarray, sub: _Items, win, deriv, grad: bool,
          y: np.ndarray, J: np.ndarray) -> None:
    """One compiled call: the items ``sub`` on the grid ``xs`` into ``y`` and ``J``."""
    DD, cols, ncols, has_p = deriv
    radius, scale, last, taper = _kernel_args(sub)
    drow = sub.drow.astype(np.int64) if grad else np.zeros(len(sub.c), dtype=np.int64)
    render_items(shape, n_width, xs, *win, sub.c, sub.p, sub.I, np.ascontiguousarray(sub.prm),
                 radius, sub.mask == "far", scale, last, taper, drow, DD, cols, ncols, has_p,
                 grad, y, J)


def _render(pattern, it: _Items, shape, n_width: int, grad: bool, sel_cols: np.ndarray,
            y: np.ndarray, Jc: np.ndarray | None, profile=None) -> None:
    """Add the items' profiles to ``y`` and their Jacobian columns ``sel_cols`` to ``Jc``,
    on the data points (core, and far-field bands coarser than the data) or on coarse grids
    interpolated onto them (far field: every grid level in one compiled call)."""
    deriv = _derivative_rows(it, sel_cols, grad)
    if profile is not None and profile.all_terms_column is not None:
        # which items must evaluate every term of their shape (the others skip some)
        prm = it.prm.copy()
        rows = [deriv[0][it.drow, 2 + j, :] for j in range(n_width)] if grad else None
        prm[:, profile.all_terms_column] = profile.needs_all_terms(prm, rows)
        it = dataclasses.replace(it, prm=prm)
    J = Jc if grad else np.zeros((0, 0))
    direct = np.ones(len(it.c), dtype=bool) if it.mask == "core" else it.level < 0
    if np.any(direct):
        sub = it if direct.all() else it.take(np.flatnonzero(direct))
        _draw(shape, n_width, pattern.x, sub, _windows(pattern.x, sub), deriv, grad, y, J)
    if direct.all():
        return
    sub = it.take(np.flatnonzero(~direct))
    grids = pattern.windows.grids
    levels = np.unique(sub.level)
    xs, starts = grids.stack(levels)
    win = [np.zeros(len(sub.c), dtype=np.int64) for _ in range(4)]
    members = []
    for ell, start in zip(levels, starts):
        sel = np.flatnonzero(sub.level == ell)
        members.append(sel)
        for w, part in zip(win, _windows(grids.grid(int(ell))[0], sub.take(sel))):
            w[sel] = part + start
    yl = np.zeros(xs.size)
    Jl = np.zeros((xs.size, J.shape[1])) if grad else J
    _draw(shape, n_width, xs, sub, win, deriv, grad, yl, Jl)
    for ell, start, sel in zip(levels, starts, members):
        index, weight = grids.grid(int(ell))[1]
        lo, hi, lo2, hi2 = (w[sel] - start for w in win)
        used = np.concatenate([lo[hi > lo], lo2[hi2 > lo2]])
        if not used.size:
            continue
        top = np.concatenate([hi[hi > lo], hi2[hi2 > lo2]]).max() - 1
        # the data points that read a grid value these items wrote
        k0 = int(np.searchsorted(index, used.min() - 1, side="left"))
        k1 = int(np.searchsorted(index, top, side="right"))
        interpolate_add(index, weight, k0, k1, int(start), yl[:, None], y[:, None])
        if grad:
            interpolate_add(index, weight, k0, k1, int(start), Jl, J)


def _bands(pattern, far: _Items, index: np.ndarray) -> _Items:
    """Split far-field items into octave bands (see :mod:`._tails`)."""
    ratio = far.half / far.radius
    nb = np.maximum(np.floor(np.log2(ratio)).astype(int) - 1, 0) + 1
    src = np.repeat(np.arange(len(nb)), nb)
    band = np.arange(src.size) - np.repeat(np.cumsum(nb) - nb, nb)
    out = far.take(src)
    out.scale = 2.0 ** band
    out.last = band == nb[src] - 1
    out.inner = out.radius * out.scale
    out.half = np.where(out.last, out.half, np.minimum(out.half, 4.0 * out.inner))
    out.level = pattern.windows.grids.levels(index[src], band)
    return out


def _peak_items(pattern, rows: dict, values: dict, grad: bool):
    """Core and far-field items of the Bragg peaks (asymmetric peaks split into copies)."""
    inst, lay, win = pattern.instrument, pattern.layout, pattern.windows
    n = len(rows["pos"])
    asym = inst.asymmetry(rows["pos"], rows["nq"], values, lay.columns(), grad)
    C = np.full(n, np.inf)
    W = np.full(n, np.inf)
    if pattern.tail_tolerance > 0:
        C, W = win.rows, win.w_rows
    far = W > C
    radius = np.where(far, C, np.inf)
    half = np.where(far, np.minimum(W, 2 * C), W)
    keep = rows["ok"]
    pos, inten, prm = rows["pos"], rows["I"], rows["prm"]
    split = np.zeros(n, dtype=bool)
    node_items, node_D = [], []
    n_extra = n
    for idx, sh, wt, dsh, dwt in asym.nodes:
        idx_k = keep[idx]
        idx, sh, wt = idx[idx_k], sh[idx_k], wt[idx_k]
        dsh = tuple(d[idx_k] for d in dsh)
        dwt = tuple(d[idx_k] for d in dwt)
        split[idx] = True
        m, nq = sh.shape
        src = np.repeat(idx, nq)
        node_items.append(_Items(
            c=(pos[idx, None] + sh).ravel(), p=pos[src], I=(inten[idx, None] * wt).ravel(),
            prm=prm[src], half=half[src], radius=radius[src], mask="core", row=src,
            drow=n_extra + np.arange(src.size)))
        n_extra += src.size
        if grad:
            dposf = rows["dpos"][idx]
            dnp = dposf[:, None, :] * (1 + dsh[0])[:, :, None]
            dnI = rows["dI"][idx][:, None, :] * wt[:, :, None]
            dnI += (inten[idx, None] * dwt[0])[:, :, None] * dposf[:, None, :]
            for j, col in enumerate(asym.cols):
                dnp[:, :, col] += dsh[1 + j]
                dnI[:, :, col] += inten[idx, None] * dwt[1 + j]
            node_D.append((dnI.reshape(-1, lay.n), dnp.reshape(-1, lay.n), src))
    plain = np.flatnonzero(keep & ~split)
    part = _Items(c=pos[plain], p=pos[plain], I=inten[plain], prm=prm[plain],
                  half=half[plain], radius=radius[plain], mask="core", row=plain, drow=plain)
    core = _concat_items([part] + node_items)
    core.taper = W[core.row]
    dW = rows["dW"]
    if grad:
        if node_D:
            srcs = np.concatenate([s for _, _, s in node_D])
            core.D = (np.concatenate([rows["dI"]] + [a for a, _, _ in node_D]),
                      np.concatenate([rows["dpos"]] + [b for _, b, _ in node_D]),
                      [np.concatenate([d, d[srcs]]) for d in dW],
                      np.concatenate([rows["dpos"], rows["dpos"][srcs]]))
        else:
            core.D = (rows["dI"], rows["dpos"], list(dW), None)
    fi = np.flatnonzero(keep & far)
    farit = None
    if len(fi):
        farit = _Items(c=pos[fi] + asym.mean[fi], p=pos[fi], I=inten[fi], prm=prm[fi],
                       half=W[fi], radius=C[fi], mask="far", row=fi, drow=fi, taper=W[fi])
        if grad:
            if asym.dmean is not None:   # the far field sits at the mean of the copies
                dc = rows["dpos"] * (1 + asym.dmean[:, 0])[:, None]
                for j, col in enumerate(asym.cols):
                    dc[:, col] += asym.dmean[:, 1 + j]
                farit.D = (rows["dI"], dc, list(dW), rows["dpos"])
            else:
                farit.D = (rows["dI"], rows["dpos"], list(dW), None)
        farit = _bands(pattern, farit, fi)
    return core, farit


def _background_peak_items(pattern, v: np.ndarray, grad: bool):
    """Core and far-field items of the pseudo-Voigt background peaks."""
    lay, win = pattern.layout, pattern.windows
    bk = v[lay.bkpk].reshape(4, -1)
    nb = bk.shape[1]
    if nb == 0:
        return None, None
    pos, area, s2, g = bk
    prm, _, _ = pv_params(s2, g, pattern.instrument.width_unit)
    if pattern.tail_tolerance > 0:
        C, W = win.bkpk, win.w_bkpk
    else:
        C = W = np.full(nb, np.inf)
    far = W > C
    core = _Items(c=pos, p=pos, I=area, prm=prm, half=np.where(far, np.minimum(W, 2 * C), W),
                  radius=np.where(far, C, np.inf), mask="core", row=np.arange(nb),
                  drow=np.arange(nb), taper=W.copy())
    if grad:
        o = lay.bkpk.start
        E = np.eye(lay.n)
        core.D = (E[o + nb:o + 2 * nb], E[o:o + nb],
                  [E[o + 2 * nb:o + 3 * nb], E[o + 3 * nb:o + 4 * nb]], None)
    fi = np.flatnonzero(far)
    farit = None
    if len(fi):
        farit = core.take(fi)
        farit.mask, farit.half, farit.radius, farit.taper = "far", W[fi], C[fi], W[fi]
        farit = _bands(pattern, farit, len(win.rows) + fi)
    return core, farit


def render_pattern(pattern, v: np.ndarray, rows: dict, grad: bool, sel_cols: np.ndarray):
    """Peaks and background of ``pattern`` at local vector ``v``: ``(peaks, background,
    Jacobian columns sel_cols or None, the core items)``."""
    inst, lay = pattern.instrument, pattern.layout
    values = dict(zip(lay.names, v[lay.pattern]))
    core, farit = _peak_items(pattern, rows, values, grad)
    x = pattern.x
    Jc = np.zeros((x.size, sel_cols.size)) if grad else None
    ypk = np.zeros(x.size)
    nw = len(inst.width_slots)
    for it in (core, farit):
        if it is not None:
            _render(pattern, it, inst.shape, nw, grad, sel_cols, ypk, Jc, profile=inst)
    yb = pattern.background_basis @ v[lay.bkg] if pattern.n_background else np.zeros_like(x)
    for it in _background_peak_items(pattern, v, grad):
        if it is not None:
            _render(pattern, it, PV_SHAPE, 2, grad, sel_cols, yb, Jc)
    return ypk, yb, Jc, core


def item_sums(pattern, info: dict, weights: np.ndarray) -> np.ndarray:
    """Σ over the data points of each reflection row's (core) contribution × ``weights``."""
    it = info["core_items"]
    out = np.zeros(len(info["refl_index"]))
    radius, scale, last, taper = _kernel_args(it)
    s = _item_sums_kernel(pattern.instrument.shape, pattern.x, *_windows(pattern.x, it), it.c,
                          it.p, it.I, np.ascontiguousarray(it.prm), radius, False, scale, last,
                          taper, np.asarray(weights, dtype=float))
    np.add.at(out, it.row, s)
    return out
