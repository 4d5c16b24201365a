"""Anisotropic displacement parameters: site-symmetry ties, Ueq and the Debye-Waller factor.

Convention (Trueblood et al., Acta Cryst. A52 (1996) 770, the CIF's
``_atom_site_aniso_U_ij``): an atom's displacement is the symmetric tensor U^{ij} (Å²),
and its Debye-Waller factor for reflection h is

    T(h) = exp(-2π² Σ_ij h_i h_j a*_i a*_j U^{ij}) = exp(-2π² hᵀ U* h),   U* = N U N,

with N = diag(a*, b*, c*). U* is the covariance of the fractional displacement, so the
image of the atom under the operation (R, t) carries R U* Rᵀ and contributes
``exp(-2π² (Rᵀh)ᵀ U* (Rᵀh))`` to the structure factor. The B form is B^{ij} = 8π² U^{ij}.

Site symmetry: every operation R of the site's stabiliser maps the atom onto itself, so
``R U* Rᵀ = U*``, linear equations in the six U^{ij}. Their solutions form a subspace whose
dimension is the number of free U^{ij} (6 on a general position, 1 on a cubic site); the
free ones are picked in the order U11, U22, U33, U12, U13, U23 and the others become ties
(``U22 = U11``, ``U12 = 0.5·U11``), linear ties (``tie_linear``) or fixed zeros in the
atom's group, as in the tables of Peterse & Palm (Acta Cryst. 20 (1966) 147).

The equivalent isotropic displacement (Fischer & Tillmanns, Acta Cryst. C44 (1988) 775) is

    Ueq = (1/3) Σ_ij U^{ij} a*_i a*_j (a_i · a_j),

which depends on the cell angles only: ``Ueq = [U11 sin²α + U22 sin²β + U33 sin²γ +
2 U12 sin α sin β cos γ + 2 U13 sin α sin γ cos β + 2 U23 sin β sin γ cos α] / (3 D²)``,
``D² = 1 - cos²α - cos²β - cos²γ + 2 cos α cos β cos γ``. An anisotropic atom's ``uiso`` slot
is tied to it (a linear tie where the crystal system fixes the angles, a constraint on the
angles otherwise), so reports give Ueq with its propagated esd; the structure factor of an
anisotropic atom uses the U^{ij} alone.
"""
from __future__ import annotations

import math

import gemmi
import numpy as np

from ..errors import DataFormatError, ValidationError
from ._cell import metric_tensor

__all__ = ["UIJ_NAMES", "B_PER_U", "uij_tensor", "uij_vector", "iso_uij", "ueq",
           "ueq_coefficients", "site_uij_relations", "symmetrise_uij", "check_uij",
           "add_uij_parameters", "dw_exponent_basis", "phase_structure_factors",
           "read_cif_uij", "cif_aniso_loop"]

#: The six components in CIF order.
UIJ_NAMES = ("U11", "U22", "U33", "U12", "U13", "U23")
#: B = 8π² U: the isotropic displacement parameter B (Å², FullProf, EasyDiffraction, most
#: papers) per U (Å², GSAS-II, SHELX, sciTie's slots); B^{ij} = 8π² U^{ij} likewise.
B_PER_U = 8.0 * math.pi ** 2
_IJ = ((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2))
_TWO_PI2 = 2.0 * math.pi ** 2


def uij_tensor(u) -> np.ndarray:
    """The symmetric 3x3 tensor of ``(U11, U22, U33, U12, U13, U23)`` (also stacked: (..., 6))."""
    u = np.asarray(u, dtype=float)
    out = np.empty(u.shape[:-1] + (3, 3))
    for c, (i, j) in enumerate(_IJ):
        out[..., i, j] = out[..., j, i] = u[..., c]
    return out


def uij_vector(U) -> np.ndarray:
    """``(U11, U22, U33, U12, U13, U23)`` of a symmetric 3x3 tensor."""
    U = np.asarray(U, dtype=float)
    return np.array([U[..., i, j] for i, j in _IJ]).T


def _reciprocal_lengths(cell) -> np.ndarray:

    return np.sqrt(np.diag(np.linalg.inv(metric_tensor(np.asarray(cell, dtype=float)))))


def iso_uij(uiso: float, cell) -> np.ndarray:
    """The U^{ij} of an isotropic displacement ``uiso``: ``U^{ij} = uiso G*_ij/(a*_i a*_j)``
    (a sphere; diagonal only for orthogonal axes)."""

    Gs = np.linalg.inv(metric_tensor(np.asarray(cell, dtype=float)))
    n = np.sqrt(np.diag(Gs))
    return uij_vector(float(uiso) * Gs / np.outer(n, n))


def ueq_coefficients(cell) -> np.ndarray:
    """``c`` with ``Ueq = c · (U11, U22, U33, U12, U13, U23)`` at this cell (angles only)."""

    G = metric_tensor(np.asarray(cell, dtype=float))
    n = _reciprocal_lengths(cell)
    return np.array([(1.0 if i == j else 2.0) * n[i] * n[j] * G[i, j] / 3.0 for i, j in _IJ])


def ueq(u, cell) -> float:
    """The equivalent isotropic displacement of ``u`` (Å²)."""
    return float(ueq_coefficients(cell) @ np.asarray(u, dtype=float))


def _ueq_expression(prefix: str) -> str:
    """Ueq of the atom whose slots are ``<prefix>U11`` ... as an expression of the cell angles
    (slots ``alpha``, ``beta``, ``gamma`` in degrees)."""
    sa, sb, sg = (f"sin({n}*pi/180)" for n in ("alpha", "beta", "gamma"))
    ca, cb, cg = (f"cos({n}*pi/180)" for n in ("alpha", "beta", "gamma"))
    d2 = f"(1 - {ca}**2 - {cb}**2 - {cg}**2 + 2*{ca}*{cb}*{cg})"
    U = {n: f"{prefix}{n}" for n in UIJ_NAMES}
    num = (f"{U['U11']}*{sa}**2 + {U['U22']}*{sb}**2 + {U['U33']}*{sg}**2"
           f" + 2*{U['U12']}*{sa}*{sb}*{cg} + 2*{U['U13']}*{sa}*{sg}*{cb}"
           f" + 2*{U['U23']}*{sb}*{sg}*{ca}")
    return f"({num}) / (3*{d2})"


def _action(Q: np.ndarray) -> np.ndarray:
    """The 6x6 matrix of ``U -> Q U Qᵀ`` on ``(U11, U22, U33, U12, U13, U23)``."""
    out = np.empty((6, 6))
    for c, (i, j) in enumerate(_IJ):
        E = np.zeros((3, 3))
        E[i, j] = E[j, i] = 1.0
        out[:, c] = uij_vector(Q @ E @ Q.T)
    return out


def _clean(c: float) -> float:
    """A coefficient snapped to a simple fraction (k/12) when it is one to rounding."""
    k = round(c * 12.0)
    return k / 12.0 if abs(c - k / 12.0) < 1e-7 else float(c)


def site_uij_relations(rotations, cell) -> tuple[list[int], np.ndarray]:
    """The U^{ij} allowed on a site with stabiliser ``rotations`` (fractional, (m, 3, 3)).

    Returns
    -------
    free : list of int
        Indices (into :data:`UIJ_NAMES`) of the free components, in CIF order.
    M : ndarray (6, len(free))
        Every component as a linear combination of the free ones (``u = M @ u[free]``),
        coefficients snapped to simple fractions.
    """
    n = _reciprocal_lengths(cell)
    rows = [_action(np.diag(1 / n) @ np.asarray(R, dtype=float) @ np.diag(n)) - np.eye(6)
            for R in rotations]
    A = np.vstack(rows) if rows else np.zeros((1, 6))
    _, s, vt = np.linalg.svd(A)
    s = np.concatenate([s, np.zeros(6 - s.size)])
    B = vt[s < 1e-8 * max(1.0, s[0])].T              # (6, r) basis of the allowed tensors
    r = B.shape[1]
    free: list[int] = []
    for c in range(6):
        if len(free) < r and np.linalg.matrix_rank(B[free + [c]], tol=1e-8) == len(free) + 1:
            free.append(c)
    M = B @ np.linalg.inv(B[free]) if r else np.zeros((6, 0))
    M = np.vectorize(_clean)(np.where(np.abs(M) < 1e-10, 0.0, M)) if r else M
    return free, M


def symmetrise_uij(u, rotations, cell) -> np.ndarray:
    """``u`` projected onto the tensors the site allows: ``U*`` averaged over the stabiliser."""
    n = _reciprocal_lengths(cell)
    Us = np.diag(n) @ uij_tensor(u) @ np.diag(n)
    R = np.asarray(rotations, dtype=float).reshape(-1, 3, 3)
    avg = np.einsum("gij,jk,glk->il", R, Us, R) / len(R) if len(R) else Us
    return uij_vector(np.diag(1 / n) @ avg @ np.diag(1 / n))


def check_uij(value, what: str) -> tuple[float, ...]:
    """Six finite U^{ij} (Å²) whose tensor is positive definite."""
    try:
        u = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        u = np.full(1, np.nan)
    if isinstance(value, (str, bytes)) or u.shape != (6,) or not np.all(np.isfinite(u)):
        raise ValidationError(f"{what}: uij must be 6 finite numbers (U11, U22, U33, U12, U13, "
                              f"U23 in Å²), got {value!r}")
    if np.linalg.eigvalsh(uij_tensor(u)).min() <= 0:
        raise ValidationError(f"{what}: uij {u.tolist()} is not positive definite (no real "
                              "displacement ellipsoid); give U11, U22, U33 > 0 and smaller "
                              "off-diagonal terms")
    return tuple(float(x) for x in u)


def add_uij_parameters(ag, u, rotations, cell) -> None:
    """Add ``U11`` ... ``U23`` to atom group ``ag``, symmetrised and tied as the site allows
    (free ones vary, the others are ties or fixed zeros)."""
    free, M = site_uij_relations(rotations, cell)
    u = np.asarray(symmetrise_uij(u, rotations, cell))
    u = M @ u[free] if free else np.zeros(6)
    u[np.abs(u) < 1e-12 * np.abs(u).max()] = 0.0          # rounding of exact zeros
    for c, name in enumerate(UIJ_NAMES):
        ag.add(name, float(u[c]), unit="Å²", description="anisotropic displacement U^ij")
    for c, name in enumerate(UIJ_NAMES):
        if c in free:
            continue
        terms = {UIJ_NAMES[free[k]]: float(M[c, k]) for k in range(len(free)) if M[c, k] != 0}
        if not terms:
            ag.fix(name)
        elif len(terms) == 1:
            (src, scale), = terms.items()
            ag.tie(name, to=src, scale=scale)
        else:
            ag.tie_linear(name, terms)


def link_ueq(phase_group, ag, cell, angles_fixed: bool) -> None:
    """Tie the atom's ``uiso`` to its Ueq: a linear tie where the crystal system fixes the
    angles, else a constraint on the phase's ``alpha``, ``beta``, ``gamma``."""
    if angles_fixed:
        c = ueq_coefficients(cell)
        ag.tie_linear("uiso", {n: float(v) for n, v in zip(UIJ_NAMES, c) if abs(v) > 1e-14})
    else:
        phase_group.constrain(f"{ag.name}.uiso", _ueq_expression(f"{ag.name}."))
    ag["uiso"].description = "equivalent isotropic displacement Ueq (from the U^ij)"


# -- structure factors ---------------------------------------------------------------------------
def dw_exponent_basis(hR: np.ndarray, astar: np.ndarray) -> np.ndarray:
    """``W`` with ``2π² (Rᵀh)ᵀ U* (Rᵀh) = W · u`` for every reflection and image, (n, g, 6)."""
    p = hR * astar
    return _TWO_PI2 * np.stack([p[..., 0] ** 2, p[..., 1] ** 2, p[..., 2] ** 2,
                                2 * p[..., 0] * p[..., 1], 2 * p[..., 0] * p[..., 2],
                                2 * p[..., 1] * p[..., 2]], axis=-1)


def phase_structure_factors(ph, hkl, q, atoms, uij, scat, cell, dGs, grad: bool):
    """|F|² of a phase with anisotropic atoms and its derivatives.

    Parameters
    ----------
    ph : Phase
    hkl, q : reflections and their 1/d²
    atoms : (n_atoms, 5)
        x, y, z, uiso, occ (the uiso of anisotropic atoms is not read).
    uij : (n_aniso, 6)
        U^{ij} of the phase's anisotropic atoms (:attr:`Phase.aniso` order).
    scat : dict
        From :meth:`Phase.scattering`.
    cell : (6,)
    dGs : (6, 3, 3)
        Derivatives of the reciprocal metric with respect to the cell.

    Returns
    -------
    F2, dF2_dq, dF2_datoms
        As :meth:`Phase.structure_factor2`.
    dF2_duij : (n, n_aniso, 6) or None
    dF2_dcell : (n, 6) or None
        Through a*, b*, c* in the Debye-Waller factors (the rest of the cell dependence goes
        through q).
    """
    aniso = np.asarray(ph.aniso, dtype=int)
    Gs = np.linalg.inv(_metric(cell))
    astar = np.sqrt(np.diag(Gs))
    hR = np.einsum("ni,gij->ngj", hkl, ph.rot)
    W = dw_exponent_basis(hR, astar)                           # (n, g, 6)
    expo = np.einsum("ngk,ak->nga", W, uij)                    # (n, g, n_aniso)
    images = np.ones((len(hkl), len(ph.rot), len(ph.atoms)))
    images[:, :, aniso] = np.exp(-expo)
    at = np.array(atoms, dtype=float)
    at[aniso, 3] = 0.0                                         # no isotropic factor
    F2, dF2_dq, dF2_dat, dlogT = ph.structure_factor2(hkl, q, at, scat, grad=grad,
                                                      images=images)
    if not grad:
        return F2, None, None, None, None
    dF2_dat[:, aniso, 3] = 0.0
    dl = dlogT[:, :, aniso]                                    # ∂F2/∂ln T, (n, g, n_aniso)
    dF2_du = -np.einsum("nga,ngk->nak", dl, W)
    # a*_m enters W: ∂(W·u)/∂a*_m = 4π² p_m (U p)_m / a*_m, ∂a*_m/∂cell = ∂G*_mm/(2 a*_m);
    # summed over atoms first (U weighted by ∂F²/∂ln T), so no (n, g, atoms, 3) array
    p = hR * astar
    Uw = np.einsum("nga,akl->ngkl", dl, _tensors(uij))          # (n, g, 3, 3)
    S = np.einsum("ngm,ngml,ngl->nm", p, Uw, p)                  # Σ_g p_m (Uw p)_m
    dA = np.einsum("cmm->cm", dGs) / astar ** 2                # (6, 3)
    dF2_dcell = -_TWO_PI2 * S @ dA.T
    return F2, dF2_dq, dF2_dat, dF2_du, dF2_dcell


def _metric(cell):

    return metric_tensor(np.asarray(cell, dtype=float))


def _tensors(uij) -> np.ndarray:
    return uij_tensor(np.asarray(uij, dtype=float).reshape(-1, 6))


# -- CIF ------------------------------------------------------------------------------------------
def read_cif_uij(block, path) -> dict:
    """``{label: (U11, ..., U23)}`` from a CIF block's aniso loop (U or B form, CIF1 or CIF2
    tags); B values are divided by 8π²."""
    out: dict = {}
    for sep in ("_", "."):
        for form, factor in (("U", 1.0), ("B", 1.0 / B_PER_U)):
            tags = ["label"] + [f"{form}_{i}{j}" for i, j in ("11", "22", "33", "12", "13",
                                                              "23")]
            table = block.find(f"_atom_site_aniso{sep}", tags)
            for row in table:
                label = gemmi.cif.as_string(row[0])
                try:
                    vals = [gemmi.cif.as_number(row[k]) * factor for k in range(1, 7)]
                except (RuntimeError, ValueError):
                    vals = [math.nan]
                if not all(math.isfinite(v) for v in vals):
                    raise DataFormatError(f"atom {label!r}: aniso {form}_ij values must be "
                                          "numbers", path=path)
                out[label] = tuple(vals)
    return out


def cif_aniso_loop(ph, vals, fmt, adp: str = "U") -> list[str]:
    """The ``_atom_site_aniso_`` loop of a phase's anisotropic atoms (values from ``vals``,
    each written by ``fmt(slot name, value, factor)``), as U^{ij} or, with ``adp='B'``,
    B^{ij} = 8π² U^{ij}."""
    if not ph.aniso:
        return []
    factor = B_PER_U if adp == "B" else 1.0
    lines = ["loop_", "_atom_site_aniso_label"] + [f"_atom_site_aniso_{adp}_{n[1:]}"
                                                     for n in UIJ_NAMES]
    for i in ph.aniso:
        at = ph.atoms[i]
        cols = [fmt(f"{at.name}.{n}", vals[f"{at.name}.{n}"], factor) for n in UIJ_NAMES]
        lines.append(f"{at.label} " + " ".join(cols))
    return lines
