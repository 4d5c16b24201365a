"""Preferred orientation: March-Dollase and spherical harmonics, per phase and pattern.

Both multiply the intensity of reflection h of a phase in a pattern by a factor ``P(h)``
whose parameters live in the pattern's child group of the phase (GSAS-II's
histogram-and-phase terms), with analytic derivatives with respect to them and to the cell.

**March-Dollase** (Dollase, J. Appl. Cryst. 19 (1986) 267; GSAS-II's ``MD``): platelets or
needles with their axis along the reciprocal-lattice direction ``axis`` and the ratio ``r``
(``po_ratio``; 1: random, < 1: platy along the axis, > 1: needles) give

    P(h) = (1/M) Σ_{h' ≡ h} (r² cos²α_h' + sin²α_h' / r)^(-3/2),

averaged over the M symmetry-equivalent reflections h' that overlap in the powder pattern
(α is the angle between the reciprocal vectors h' and ``axis``). A reflection along the
axis gets ``r⁻³``, one perpendicular to it ``r^(3/2)``; the function integrates to 1 over
the sphere, so the overall scale is kept.

**Spherical harmonics** with cylindrical sample symmetry (Bunge, *Texture Analysis in
Materials Science* (1982); Von Dreele, J. Appl. Cryst. 30 (1997) 517; GSAS-II's cylindrical
"SH" model) up to an even order L:

    P(h) = 1 + Σ_{l=2,4..L} Σ_ν (4π/(2l+1)) C_l^ν K_l^ν(h) k_l(ψ),

with ``K_l^ν`` the real spherical harmonics of degree l invariant under the phase's Laue
group (orthonormal on the sphere, evaluated at the direction of the reciprocal vector in the
crystal's Cartesian frame: a along x, b in the xy plane) and ``k_l(ψ) = √((2l+1)/4π)
P_l(cos ψ)`` the sample harmonic at the angle ψ between the scattering vector and the
sample's symmetry axis (0 for a spinning flat plate in Bragg-Brentano, 90° for a capillary
or a time-of-flight can with the detectors in the equatorial plane). Only Laue-allowed
terms exist: their number per order follows from the group's characters (Molien). The
coefficients are the slots ``sh<l>_<ν>`` (``sh4_1``); the texture index is
``J = 1 + Σ C²/(2l+1)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from .._validation import check_choice, check_float, check_int, check_mapping
from ..errors import ArgumentTypeError, ValidationError

__all__ = ["MarchDollase", "SphericalHarmonics", "check_preferred_orientation",
           "texture_index", "laue_rotations", "symmetric_harmonics", "cartesian_matrix"]

PO_MODELS = ("march-dollase", "spherical-harmonics")
MAX_ORDER = 24


# -- March-Dollase -------------------------------------------------------------------------------
@dataclass
class MarchDollase:
    """The March-Dollase model of one phase in one pattern (see the module docstring).

    Parameters
    ----------
    axis : (h, k, l)
        The preferred-orientation axis, a reciprocal-lattice direction.
    ratio : float
        Starting ``po_ratio`` (> 0).
    """

    axis: tuple
    ratio: float = 1.0
    rot: np.ndarray = field(default=None, repr=False)

    names = ("po_ratio",)

    def start(self) -> dict:
        return {"po_ratio": self.ratio}

    def prepare(self, hkl: np.ndarray):
        """The symmetry-equivalent reflections of each of ``hkl``: (n, m, 3) padded, mask."""
        rot = np.rint(self.rot).astype(int)
        orb = np.einsum("ni,gij->ngj", hkl, rot)
        orb = np.concatenate([orb, -orb], axis=1)
        m = 1
        uniq = []
        for o in orb:
            u = np.unique(o, axis=0)
            uniq.append(u)
            m = max(m, len(u))
        E = np.zeros((len(hkl), m, 3))
        mask = np.zeros((len(hkl), m), dtype=bool)
        for i, u in enumerate(uniq):
            E[i, :len(u)] = u
            E[i, len(u):] = u[0]
            mask[i, :len(u)] = True
        return E, mask

    def factor(self, data, hkl, cell, Gs, dGs, prm, grad: bool):
        E, mask = data
        r = float(prm[0])
        if not r > 0:
            raise ValidationError(f"po_ratio (March-Dollase) must be > 0, got {r:g}")
        u = np.asarray(self.axis, dtype=float)
        t = E @ (Gs @ u)                                          # (n, m)
        qe = np.einsum("nmi,ij,nmj->nm", E, Gs, E)
        qu = u @ Gs @ u
        c2 = np.clip(t * t / (qe * qu), 0.0, 1.0)
        s2 = 1.0 - c2
        D = r * r * c2 + s2 / r
        w = mask / mask.sum(axis=1, keepdims=True)
        P = (w * D ** -1.5).sum(axis=1)
        if not grad:
            return P, None, None
        dD = -1.5 * D ** -2.5 * w                                  # ∂P/∂D per equivalent
        dP_dr = (dD * (2 * r * c2 - s2 / r ** 2)).sum(axis=1)
        dt = np.einsum("nmi,cij,j->nmc", E, dGs, u)
        dqe = np.einsum("nmi,cij,nmj->nmc", E, dGs, E)
        dqu = np.einsum("i,cij,j->c", u, dGs, u)
        dc2 = (2 * t / (qe * qu))[..., None] * dt - c2[..., None] * (dqe / qe[..., None]
                                                                     + dqu / qu)
        dP_dcell = np.einsum("nm,nmc->nc", dD * (r * r - 1.0 / r), dc2)
        return P, dP_dr[:, None], dP_dcell


# -- spherical harmonics -------------------------------------------------------------------------
def _monomials(l: int) -> np.ndarray:
    """Exponents (a, b, c), a + b + c = l, of the degree-l monomials."""
    return np.array([(a, b, l - a - b) for a in range(l, -1, -1) for b in range(l - a, -1, -1)])


def _poly_mul(p: dict, q: dict) -> dict:
    out: dict = {}
    for e1, c1 in p.items():
        for e2, c2 in q.items():
            e = (e1[0] + e2[0], e1[1] + e2[1], e1[2] + e2[2])
            out[e] = out.get(e, 0) + c1 * c2
    return out


def _solid_harmonics(l: int) -> np.ndarray:
    """Real solid harmonics r^l Y_lm (orthonormal on the unit sphere), m = -l..l, as
    coefficient rows over :func:`_monomials` (exact rational arithmetic, then floats)."""
    exps = {tuple(e): i for i, e in enumerate(_monomials(l))}
    r2 = {(2, 0, 0): 1, (0, 2, 0): 1, (0, 0, 2): 1}
    out = np.zeros((2 * l + 1, len(exps)))
    for m in range(l + 1):
        # (x + iy)^m = Σ_j C(m, j) x^(m-j) (iy)^j: real part (cos mφ), imaginary part (sin mφ)
        re_p, im_p = {}, {}
        for j in range(m + 1):
            c = math.comb(m, j)
            e = (m - j, j, 0)
            if j % 2 == 0:
                re_p[e] = c * (-1) ** (j // 2)
            else:
                im_p[e] = c * (-1) ** (j // 2)
        # r^(l-m) d^m P_l / dt^m (t = z/r): Σ_k c_k (l-2k)!/(l-2k-m)! z^(l-2k-m) r^(2k)
        radial: dict = {}
        r2k = {(0, 0, 0): 1}
        for k in range((l - m) // 2 + 1):
            ck = Fraction((-1) ** k * math.comb(l, k) * math.comb(2 * l - 2 * k, l), 2 ** l)
            ck *= Fraction(math.factorial(l - 2 * k), math.factorial(l - 2 * k - m))
            for e, c in _poly_mul(r2k, {(0, 0, l - 2 * k - m): 1}).items():
                radial[e] = radial.get(e, 0) + ck * c
            r2k = _poly_mul(r2k, r2)
        norm = math.sqrt((2 * l + 1) / (4 * math.pi) * math.factorial(l - m)
                         / math.factorial(l + m))
        if m:
            norm *= math.sqrt(2.0)
        for part, row in ((re_p, l + m), (im_p, l - m)):
            if m == 0 and part is im_p:
                continue
            for e, c in _poly_mul(part, radial).items():
                out[row, exps[e]] += norm * float(c)
    return out


def _eval_monomials(v: np.ndarray, exps: np.ndarray) -> np.ndarray:
    """Monomials of the rows of ``v`` (n, 3): (n, n_monomials)."""
    top = int(exps.max()) + 1 if exps.size else 1
    pw = v[:, :, None] ** np.arange(top)                   # (n, 3, top)
    return pw[:, 0, exps[:, 0]] * pw[:, 1, exps[:, 1]] * pw[:, 2, exps[:, 2]]


def _sphere_rule(l: int):
    """Points and weights of a product rule exact for polynomials of degree 2l on the sphere."""
    t, wt = np.polynomial.legendre.leggauss(l + 2)
    nphi = 2 * l + 2
    phi = 2 * np.pi * np.arange(nphi) / nphi
    st = np.sqrt(1 - t * t)
    pts = np.stack([np.outer(st, np.cos(phi)), np.outer(st, np.sin(phi)),
                    np.outer(t, np.ones(nphi))], axis=-1).reshape(-1, 3)
    w = np.outer(wt, np.full(nphi, 2 * np.pi / nphi)).ravel()
    return pts, w


def cartesian_matrix(cell) -> np.ndarray:
    """Orthogonalisation matrix (columns: the cell vectors a, b, c in Å; a along x, b in the
    xy plane), complex-safe for complex-step derivatives."""
    a, b, c = cell[:3]
    al, be, ga = (x * (np.pi / 180.0) for x in cell[3:6])
    ca, cb, cg, sg = np.cos(al), np.cos(be), np.cos(ga), np.sin(ga)
    cy = (ca - cb * cg) / sg
    cz = np.sqrt(1 - cb * cb - cy * cy)
    z = 0 * a
    return np.array([[a, b * cg, c * cb], [z, b * sg, c * cy], [z, z, c * cz]])


def laue_rotations(rot: np.ndarray, cell) -> np.ndarray:
    """The Laue group (±R of every operation) acting on Cartesian reciprocal vectors,
    ``S = M⁻ᵀ Rᵀ Mᵀ`` (orthogonal for a cell with the group's symmetry)."""
    M = cartesian_matrix(np.asarray(cell, dtype=float))
    Mi = np.linalg.inv(M)
    rs = np.unique(np.rint(np.concatenate([rot, -rot])).astype(int), axis=0)
    S = np.einsum("ij,gkj,lk->gil", Mi.T, rs, M)    # Mi.T @ R.T @ M.T
    if not np.allclose(np.einsum("gij,gkj->gik", S, S), np.eye(3), atol=1e-6):
        raise ValidationError("spherical harmonics: the cell does not have the metric of "
                              "its space group's Laue symmetry")
    return S


def symmetric_harmonics(S: np.ndarray, l: int) -> np.ndarray:
    """Coefficients (n_ν, n_monomials of degree l) of the real spherical harmonics of even
    degree l invariant under the Cartesian rotations ``S``, orthonormal on the sphere.

    The invariant subspace is the range of the group average of the rotation matrices of the
    degree-l harmonics (computed exactly with a product quadrature); its basis is made
    unique by reduced row echelon form in the order m = -l..l, orthonormalised in that
    order, the first non-zero component positive.
    """
    Y = _solid_harmonics(l)
    exps = _monomials(l)
    pts, w = _sphere_rule(l)
    Yp = _eval_monomials(pts, exps) @ Y.T                       # (npts, 2l+1)
    proper = [Sg for Sg in S if np.linalg.det(Sg) > 0]       # -1 acts as 1 on even l
    P = np.zeros((2 * l + 1, 2 * l + 1))
    for Sg in proper:
        P += (Yp * w[:, None]).T @ (_eval_monomials(pts @ Sg.T, exps) @ Y.T)
    P /= len(proper)
    vals, vecs = np.linalg.eigh(0.5 * (P + P.T))
    B = vecs[:, vals > 0.5].T                                   # rows span the subspace
    if not len(B):
        return np.zeros((0, exps.shape[0]))
    # canonical basis: reduced row echelon form, then Gram-Schmidt in row order
    R = B.copy()
    row = 0
    for col in range(R.shape[1]):
        if row == len(R):
            break
        piv = row + int(np.argmax(np.abs(R[row:, col])))
        if abs(R[piv, col]) < 1e-8:
            continue
        R[[row, piv]] = R[[piv, row]]
        R[row] /= R[row, col]
        for i in range(len(R)):
            if i != row:
                R[i] -= R[i, col] * R[row]
        row += 1
    Q, _ = np.linalg.qr(R.T)
    Q = Q.T
    for i in range(len(Q)):
        first = Q[i][np.abs(Q[i]) > 1e-8][0]
        Q[i] *= np.sign(first)
    Q[np.abs(Q) < 1e-13] = 0.0
    return Q @ Y


def texture_index(coefficients: dict) -> float:
    """``J = 1 + Σ C_l^ν²/(2l+1)`` of spherical-harmonic coefficients ``{"sh4_1": C}``."""
    out = 1.0
    for name, c in coefficients.items():
        l = int(name[2:].split("_")[0])
        out += float(c) ** 2 / (2 * l + 1)
    return out


@dataclass
class SphericalHarmonics:
    """Cylindrical spherical-harmonics preferred orientation of one phase in one pattern.

    Parameters
    ----------
    order : int
        Highest (even) order L.
    psi : float
        Angle (degrees) between the scattering vector and the sample's symmetry axis.
    coefficients : dict
        Starting values ``{"sh4_1": 0.1}`` (default 0).
    """

    order: int
    psi: float
    coefficients: dict = field(default_factory=dict)
    rot: np.ndarray = field(default=None, repr=False)
    cell: np.ndarray = field(default=None, repr=False)

    def __post_init__(self) -> None:
        S = laue_rotations(self.rot, self.cell)
        self.terms = []                       # (l, exps, coefficient rows)
        names = []
        for l in range(2, self.order + 1, 2):
            C = symmetric_harmonics(S, l)
            if len(C):
                self.terms.append((l, _monomials(l), C))
                names += [f"sh{l}_{j + 1}" for j in range(len(C))]
        self.names = tuple(names)
        bad = sorted(set(self.coefficients) - set(names))
        if bad:
            raise ValidationError(f"spherical harmonics: no coefficients {bad} at order "
                                  f"{self.order} in this Laue class; coefficients: "
                                  f"{list(names)}")
        cos_psi = math.cos(math.radians(self.psi))
        self.sample = {l: math.sqrt(4 * math.pi / (2 * l + 1))
                       * float(np.polynomial.legendre.legval(cos_psi, [0] * l + [1]))
                       for l, _, _ in self.terms}

    def start(self) -> dict:
        return {n: float(self.coefficients.get(n, 0.0)) for n in self.names}

    def prepare(self, hkl: np.ndarray):
        return None

    def harmonics(self, v: np.ndarray, grad: bool):
        """``f_l K_l^ν`` at Cartesian vectors ``v`` (n, 3), and its gradient (n, n_ν, 3)."""
        r2 = np.einsum("ni,ni->n", v, v)
        vals, grads = [], []
        for l, exps, C in self.terms:
            mono = _eval_monomials(v, exps)
            p = mono @ C.T                                    # (n, n_ν)
            rl = r2 ** (l / 2)
            f = self.sample[l]
            vals.append(f * p / rl[:, None])
            if grad:
                dmono = np.stack([exps[:, i] * _eval_monomials(
                    v, np.maximum(exps - np.eye(3, dtype=int)[i], 0)) for i in range(3)], -1)
                dp = np.einsum("nmi,jm->nji", dmono, C)        # (n, n_ν, 3)
                grads.append(f * (dp / rl[:, None, None]
                                  - l * (p / (rl * r2)[:, None])[:, :, None] * v[:, None, :]))
        K = np.concatenate(vals, axis=1) if vals else np.zeros((len(v), 0))
        dK = np.concatenate(grads, axis=1) if grad and grads else None
        return K, dK

    def factor(self, data, hkl, cell, Gs, dGs, prm, grad: bool):
        M = cartesian_matrix(np.asarray(cell, dtype=float))
        Mi_T = np.linalg.inv(M).T
        v = hkl @ Mi_T.T                                      # Cartesian reciprocal vectors
        K, dK = self.harmonics(v, grad)
        P = 1.0 + K @ prm
        if not grad:
            return P, None, None
        # v = M⁻ᵀ h: dv = -M⁻ᵀ dMᵀ v; dM by complex step (exact to rounding)
        dM = np.empty((6, 3, 3))
        for c in range(6):
            z = np.asarray(cell, dtype=complex)
            z[c] += 1e-30j
            dM[c] = cartesian_matrix(z).imag / 1e-30
        dv = -np.einsum("ij,ckj,nk->nci", Mi_T, dM, v)          # (n, 6, 3)
        dP_dcell = np.einsum("j,nji,nci->nc", prm, dK, dv)
        return P, K, dP_dcell


# -- set-up -----------------------------------------------------------------------------------------
def check_preferred_orientation(value, phases, instrument) -> list:
    """One model (or None) per phase from ``{phase: {"model": ..., ...}}``.

    ``{"model": "march-dollase", "axis": [0, 0, 1], "ratio": 1.0}`` or ``{"model":
    "spherical-harmonics", "order": 4, "psi": 0.0, "coefficients": {"sh4_1": 0.0}}``
    (``psi`` defaults to 0 for a Bragg-Brentano pattern, 90° otherwise).
    """
    value = check_mapping(value, "preferred_orientation", [ph.name for ph in phases],
                          what="phases", example="{phase name: {'model': ...}}")
    out = []
    for ph in phases:
        spec = value.get(ph.name)
        if spec is None:
            out.append(None)
            continue
        what = f"preferred_orientation[{ph.name!r}]"
        if not isinstance(spec, dict):
            raise ArgumentTypeError(f"{what} must be a dict such as {{'model': "
                                    f"'march-dollase', 'axis': [0, 0, 1]}}, got {spec!r}")
        model = check_choice(spec.get("model"), f"{what}['model']", PO_MODELS)
        allowed = {"march-dollase": ("model", "axis", "ratio"),
                   "spherical-harmonics": ("model", "order", "psi", "coefficients")}[model]
        bad = [k for k in spec if k not in allowed]
        if bad:
            raise ValidationError(f"{what}: unknown keys {bad} for model {model!r}; expected "
                                  f"{list(allowed)}")
        if model == "march-dollase":
            try:
                ax = np.asarray(spec.get("axis"), dtype=float)
            except (TypeError, ValueError):
                ax = np.full(1, np.nan)
            if ax.shape != (3,) or not np.all(np.isfinite(ax)) or not np.any(ax != 0):
                raise ValidationError(f"{what}['axis']: expected a non-zero reciprocal-lattice "
                                      f"direction (h, k, l), got {spec.get('axis')!r}")
            ratio = check_float(spec.get("ratio", 1.0), f"{what}['ratio']", minimum=0.0,
                                low_open=True)
            out.append(MarchDollase(tuple(float(a) for a in ax), ratio, rot=ph.rot))
        else:
            order = check_int(spec.get("order"), f"{what}['order']", minimum=2,
                              maximum=MAX_ORDER)
            if order % 2:
                raise ValidationError(f"{what}['order'] must be even (odd orders vanish for a "
                                      f"centrosymmetric powder average), got {order}")
            default_psi = 0.0 if getattr(instrument, "geometry", "") == "bragg-brentano" \
                else 90.0
            psi = check_float(spec.get("psi", default_psi), f"{what}['psi']", minimum=0.0,
                              maximum=180.0)
            coefs = spec.get("coefficients", {}) or {}
            if not isinstance(coefs, dict):
                raise ArgumentTypeError(f"{what}['coefficients'] must be a dict {{'sh4_1': "
                                        f"value}}, got {coefs!r}")
            coefs = {k: check_float(v, f"{what}['coefficients'][{k!r}]")
                     for k, v in coefs.items()}
            try:
                sh = SphericalHarmonics(order, psi, coefs, rot=ph.rot, cell=ph.cell_values())
            except ValidationError as exc:
                raise ValidationError(f"{what}: {exc}") from None
            if not sh.names:
                raise ValidationError(f"{what}: the Laue class of {ph.name} allows no term "
                                      f"up to order {order}; raise the order")
            out.append(sh)
    return out


def texture_rows(pat, k: int, R: dict, cell, Gs, dGs, v: np.ndarray, grad: bool):
    """The factor of phase ``k``'s reflections in ``pat`` and its derivative rows over the
    local vector (None, None without preferred orientation)."""
    model = pat.texture[k]
    if model is None:
        return None, None
    lay = pat.layout
    P, dprm, dcell = model.factor(R["po"], R["hkl"], cell, Gs, dGs, v[lay.po[k]], grad)
    if not grad:
        return P, None
    dP = np.zeros((len(P), lay.n))
    dP[:, lay.po[k]] = dprm
    dP[:, lay.cell[k]] = dcell
    return P, dP
