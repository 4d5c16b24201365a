"""Physics rows of a pattern: every reflection of every phase, with exact derivatives.

For each phase the reflections reaching the fit range are listed once (:func:`setup`); at
each evaluation every reflection gets ``q = 1/d²`` (cell and cell corrections), its
structure factor (anisotropic atoms: :mod:`._adp`), microstrain and crystallite size, and
the profile turns those into one row per peak (one per wavelength of a doublet): intensity,
position and width slots, each with its derivative row over the local vector (:func:`rows`).
The sample corrections, preferred orientation (:mod:`._texture`) and absorption
(:mod:`._absorption`), multiply the intensities.
"""
from __future__ import annotations

import numpy as np

from ..errors import ValidationError
from ._absorption import absorption_rows
from ._adp import phase_structure_factors
from ._cell import cell_volume, metric_derivatives, metric_tensor
from ._pattern_layout import PHASE_PARAMS
from ._texture import texture_rows
from .profiles import ReflectionContext

__all__ = ["setup", "rows", "reflections_in_range", "largest_d", "strain"]

_HAP = {n: i for i, n in enumerate(PHASE_PARAMS)}


def _q(hkl: np.ndarray, cell: np.ndarray) -> np.ndarray:
    return np.einsum("ni,ij,nj->n", hkl, np.linalg.inv(metric_tensor(cell)), hkl)


def setup(pat) -> list[dict]:
    """Reflections of every phase whose tails reach into the fit range, and the nodes of
    their asymmetry (fixed here)."""
    v = pat.local_vector()
    lay = pat.layout
    values = dict(zip(lay.names, v[lay.pattern]))
    refining = set(pat.refine_profile + pat.refine_profile_late)
    out = []
    for k, ph in enumerate(pat.phases):
        hap = v[lay.hap[k]]
        size = hap[_HAP["size"]]
        mu = max(hap[_HAP["mustrain"]], hap[_HAP["mustrain_axial"]])
        dmin = pat.instrument.d_min(pat.fit_range, values, size, mu, pat.tail_tolerance)
        cell = v[lay.cell[k]]
        hkl, mult = ph.reflections(dmin, cell=cell)
        h, kk, l = hkl.T
        hh = np.column_stack([h * h, kk * kk, l * l, h * kk, h * l, kk * l]).astype(float)
        q = _q(hkl, cell) if len(hkl) else np.zeros(0)
        nq = pat.instrument.node_counts(q, values, size, mu, refining)
        po = pat.texture[k].prepare(hkl) if pat.texture[k] is not None else None
        out.append({"hkl": hkl, "mult": mult, "hh": hh, "nq": np.asarray(nq, dtype=int),
                    "po": po})
    return out


def largest_d(pat) -> float:
    """The largest d-spacing of any phase (Å)."""
    d = 0.0
    for ph in pat.phases:
        cell = ph.cell_values()
        hkl, _ = ph.reflections(0.5 * float(np.max(cell[:3])), cell=cell)
        if len(hkl):
            d = max(d, float(1 / np.sqrt(_q(hkl, cell).min())))
    return d


def reflections_in_range(pat) -> dict[str, int]:
    """Number of reflections of each phase whose nominal position (first component, current
    cell) lies inside the fit range and outside the excluded regions."""
    v = pat.local_vector()
    lay = pat.layout
    values = dict(zip(lay.names, v[lay.pattern]))
    out = {}
    for k, ph in enumerate(pat.phases):
        hkl = pat._refl[k]["hkl"] if pat._refl else np.zeros((0, 3))
        if not len(hkl):
            out[ph.name] = 0
            continue
        pos = pat.instrument.positions(_q(hkl, v[lay.cell[k]]), values)
        inside = (pos >= pat.fit_range[0]) & (pos <= pat.fit_range[1])
        for lo, hi in pat.exclude:
            inside &= ~((pos >= lo) & (pos <= hi))
        out[ph.name] = int(np.count_nonzero(inside))
    return out


def strain(pat, k: int, hkl: np.ndarray, Gs: np.ndarray, dGs: np.ndarray, hap: np.ndarray):
    """Microstrain of every reflection of phase ``k`` and its derivatives.

    Isotropic: ``mustrain``. Uniaxial (a ``strain_axis`` u given for the phase, as
    GSAS-II's model): ``μ = μe μa / sqrt(μe² cos²φ + μa² sin²φ)`` with φ the angle between
    the reciprocal vectors h and u, μe = ``mustrain`` (equatorial), μa =
    ``mustrain_axial``. Returns μ, dμ/dμe, dμ/dμa and dμ/dcell (None when isotropic).
    """
    me, ma = hap[_HAP["mustrain"]], hap[_HAP["mustrain_axial"]]
    n = len(hkl)
    axis = pat.strain_axis.get(pat.phases[k].name)
    if axis is None:
        return np.full(n, me), np.ones(n), np.zeros(n), None
    u = np.asarray(axis, dtype=float)
    t = hkl @ Gs @ u
    q = np.einsum("ni,ij,nj->n", hkl, Gs, hkl)
    qu = u @ Gs @ u
    c2 = t * t / (q * qu)
    dt = np.einsum("ni,cij,j->nc", hkl, dGs, u)
    dq = np.einsum("ni,cij,nj->nc", hkl, dGs, hkl)
    dqu = np.einsum("i,cij,j->c", u, dGs, u)
    dc2 = c2[:, None] * (2 * dt / t[:, None] - dq / q[:, None] - dqu[None, :] / qu) \
        if np.all(t != 0) else np.where(t[:, None] != 0, c2[:, None] * (
            2 * dt / np.where(t != 0, t, 1)[:, None] - dq / q[:, None] - dqu[None, :] / qu),
            0.0)
    s2 = 1.0 - c2
    D2 = me * me * c2 + ma * ma * s2
    if not np.all(D2 > 0):       # both strains zero: no strain, derivatives of the
        D2 = np.where(D2 > 0, D2, 1.0)   # isotropic limit (μ = μe = μa)
        iso = True
    else:
        iso = False
    D = np.sqrt(D2)
    mu = me * ma / D
    dme = ma ** 3 * s2 / D ** 3
    dma = me ** 3 * c2 / D ** 3
    dmu_dc2 = -me * ma * (me * me - ma * ma) / (2 * D ** 3)
    if iso:
        mu, dme, dma, dmu_dc2 = np.zeros(n), s2, c2, np.zeros(n)
    return mu, dme, dma, dmu_dc2[:, None] * dc2


def phase_rows(pat, k: int, v: np.ndarray, grad: bool) -> dict:
    """Per peak of phase ``k``: intensity, position, width slots and derivative rows."""
    lay = pat.layout
    ph, R = pat.phases[k], pat._refl[k]
    nL = lay.n
    cell = v[lay.cell[k]]
    atoms = v[lay.atoms[k]].reshape(-1, 5)
    hap = v[lay.hap[k]]
    col = lay.columns()
    values = dict(zip(lay.names, v[lay.pattern]))
    o_c, o_a, o_h = lay.cell[k].start, lay.atoms[k].start, lay.hap[k].start
    hkl = R["hkl"]
    nr = len(hkl)
    Gm = metric_tensor(cell)
    Gs = np.linalg.inv(Gm)
    q = np.einsum("ni,ij,nj->n", hkl, Gs, hkl) + R["hh"] @ hap[_HAP["D11"]:]
    if np.any(q <= 0):
        raise ValidationError(f"phase {ph.name}: the cell {np.round(cell, 5).tolist()} "
                              "gives non-positive 1/d² (degenerate cell)")
    dGs = -np.einsum("ij,cjk,kl->cil", Gs, metric_derivatives(cell), Gs)
    V, dV = cell_volume(cell, grad=True)
    dF2_duij = dF2_dcell = None
    if ph.aniso:
        F2, dF2_dq, dF2_dat, dF2_duij, dF2_dcell = phase_structure_factors(
            ph, hkl, q, atoms, v[lay.adp[k]].reshape(-1, 6), pat.scattering[k], cell, dGs, grad)
    else:
        F2, dF2_dq, dF2_dat = ph.structure_factor2(hkl, q, atoms, pat.scattering[k], grad=grad)
    size = hap[_HAP["size"]]
    if not size > 0:
        raise ValidationError(f"{pat.name}.{ph.name}.size must be > 0 µm, got {size:g}")
    mus, dmus_e, dmus_a, dmus_dcell = strain(pat, k, hkl, Gs, dGs, hap)
    dq = dmu = None
    if grad:
        dq = np.zeros((nr, nL))
        dq[:, o_c:o_c + 6] = np.einsum("ni,cij,nj->nc", hkl, dGs, hkl)
        dq[:, o_h + _HAP["D11"]:o_h + _HAP["D23"] + 1] = R["hh"]
        dmu = np.zeros((nr, nL))
        dmu[:, o_h + _HAP["mustrain"]] = dmus_e
        dmu[:, o_h + _HAP["mustrain_axial"]] = dmus_a
        if dmus_dcell is not None:
            dmu[:, o_c:o_c + 6] = dmus_dcell
    ctx = ReflectionContext(q=q, dq=dq, values=values, col=col, size=size,
                            size_col=o_h + _HAP["size"], mu=mus, dmu=dmu, n_local=nL,
                            grad=grad)
    comps = pat.instrument.components(ctx)
    po, dpo = texture_rows(pat, k, R, cell, Gs, dGs, v, grad)
    if po is not None:
        for comp in comps:
            comp.multiply(po, dpo)
    absorption_rows(pat, comps, q, dq, v, grad)
    scale = values["scale"]
    vf = hap[_HAP["fraction"]] / V ** 2            # volume fraction per cell volume squared
    base = R["mult"] * F2 * vf                     # without scale and the profile's factor
    nw = len(pat.instrument.width_slots)
    out = {key: [] for key in ("I", "pos", "W", "dI", "dpos", "dW", "ok", "comp", "ref")}
    for ci, comp in enumerate(comps):
        I = scale * base * comp.corr
        ok = comp.ok
        out["I"].append(np.where(ok, I, 0.0))
        out["pos"].append(comp.pos)
        out["W"].append(np.array(comp.widths).reshape(nw, nr))
        out["ok"].append(ok)
        out["comp"].append(np.full(nr, ci))
        out["ref"].append(np.arange(nr))
        if not grad:
            continue
        dIm = (scale * base)[:, None] * comp.dcorr
        dIm += (scale * R["mult"] * vf * comp.corr * dF2_dq)[:, None] * dq
        dIm[:, o_a:o_a + atoms.size] += ((scale * vf * comp.corr * R["mult"])[:, None]
                                         * dF2_dat.reshape(nr, atoms.size))
        if dF2_duij is not None:
            dIm[:, lay.adp[k]] += ((scale * vf * comp.corr * R["mult"])[:, None]
                                   * dF2_duij.reshape(nr, -1))
            dIm[:, o_c:o_c + 6] += (scale * vf * comp.corr * R["mult"])[:, None] * dF2_dcell
        dIm[:, col["scale"]] += base * comp.corr
        dIm[:, o_h + _HAP["fraction"]] += R["mult"] * F2 * scale * comp.corr / V ** 2
        dIm[:, o_c:o_c + 6] += np.outer(I * (-2.0 / V), dV)
        dIm *= ok[:, None]
        out["dI"].append(dIm)
        out["dpos"].append(comp.dpos)
        out["dW"].append(np.stack(comp.dwidths))
    res = {key: (np.concatenate(val, axis=-1 if key == "W" else 0) if val else None)
           for key, val in out.items() if key not in ("dW",)}
    res["dW"] = np.concatenate(out["dW"], axis=1) if out["dW"] else None
    res.update(q=q, F2=F2, nq=np.tile(R["nq"], len(comps)), volume=V)
    return res


def rows(pat, v: np.ndarray, grad: bool) -> dict:
    """Peak rows of every phase, concatenated, with the profile's shape parameters."""
    parts = [phase_rows(pat, k, v, grad) for k in range(len(pat.phases))]
    out = {}
    for key in ("I", "pos", "ok", "comp", "ref", "nq") + (("dI", "dpos") if grad else ()):
        out[key] = np.concatenate([pt[key] for pt in parts])
    out["W"] = np.concatenate([pt["W"] for pt in parts], axis=1)
    out["dW"] = np.concatenate([pt["dW"] for pt in parts], axis=1) if grad else None
    out["phase"] = np.concatenate([np.full(len(pt["I"]), k) for k, pt in enumerate(parts)])
    out["per_phase"] = parts
    out["prm"], out["fwhm"], out["eta"] = pat.instrument.shape_params(list(out["W"]))
    return out
