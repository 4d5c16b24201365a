"""Time-of-flight profile: back-to-back exponentials convolved with a pseudo-Voigt.

Calibration (GSAS, GSAS-II): a reflection of spacing d (Å) arrives at

    TOF = zero + difc·d + difa·d² + difb/d          (µs)

and its integrated intensity carries the TOF Lorentz factor ``sin θ_bank · d⁴`` (GSAS-II's;
``θ_bank`` is half the bank's 2θ). The peak is the convolution of the pulse shape, a rising
and a decaying exponential ``N e^{αt}`` (t < 0), ``N e^{-βt}`` (t > 0), ``N = αβ/(α+β)``, with
the TCH pseudo-Voigt of :mod:`.._pseudo_voigt`, whose Gaussian and Lorentzian parts both
have the total FWHM Γ (GSAS-II's convention, as its ``EPSVOIGT``). The widths per reflection
follow GSAS-II's instrument parameters:

    α  = alpha / d
    β  = beta0 + beta1 / d⁴ + betaq / d²
    σ² = sig0 + sig1 d² + sig2 d⁴ + sigq d                         (µs²)
    γ  = Z + X d + Y d² + 10⁻⁴ difc d² / size + 10⁻⁶ difc d μ      (µs; size in µm, μ in 10⁻⁶)

(GSAS-II's sample broadening, all Lorentzian). With ``s² = Γ²/(8 ln 2)``, ``x`` the offset
from the peak position and ``g = Γ/2``, the two parts are

    G(x) = N/2 [e^u erfc(y) + e^v erfc(z)],  u = α(αs² + 2x)/2,  y = (αs² + x)/(√2 s),
                                             v = β(βs² - 2x)/2,  z = (βs² - x)/(√2 s)
    L(x) = -N/π Im[f(αx + iαg) + f(-βx + iβg)],  f(w) = e^w E1(w),

and the shape is ``η L + (1 - η) G``, each part of unit area. Its derivatives with respect
to the position, α, β and Γ are analytic (``f'(w) = f(w) - 1/w``, ``d erfc(y)/dy =
-2 e^{-y²}/√π``) and reach σ² and γ through the TCH widths. ``e^w E1(w)`` is evaluated by
its power series near the origin and along the negative real axis, by its continued
fraction elsewhere, and by its asymptotic series beyond |w| = 40.

Parameters are read from GSAS-II ``.instprm`` files (``Type:PNT``) and GSAS ``.prm`` files
(``HTYPE PNT``), as GSAS-II reads them (:meth:`TimeOfFlight.from_instprm`,
:meth:`TimeOfFlight.from_gsas`).
"""
from __future__ import annotations

import cmath
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numba import cfunc, njit

from ..._validation import check_float
from ...errors import DataFormatError, ValidationError
from .._pseudo_voigt import SHAPE_SIG, tch
from .._tails import CORE_FWHM, window_fwhm
from ._base import Component, PeakProfile, ReflectionContext

__all__ = ["TimeOfFlight", "exp_e1", "tof_peak", "pulse_tail_length"]

_PARAMS = ("zero", "difc", "difa", "difb", "alpha", "beta0", "beta1", "betaq", "sig0", "sig1",
           "sig2", "sigq", "X", "Y", "Z")
_EULER = 0.5772156649015329
_SQRT2 = math.sqrt(2.0)
_TWO_SQRTPI = 2.0 / math.sqrt(math.pi)
_S_PER_FWHM = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))   # Gaussian σ per FWHM
_MIN_RATE = 1e-6                                             # α, β below this are clipped
#: Smallest d-spacing listed (Å): Rietveld data rarely reach below, and the reflections
#: multiply as 1/d³.
MIN_D = 0.1
#: Far-field radius: this many decay lengths 1/min(α, β) beyond CORE_FWHM FWHM
#: (the slower exponential is down to e^-8 there).
PULSE_CORE = 8.0


@njit(cache=True, nogil=True)
def exp_e1(z):
    """``e^z E1(z)`` for complex ``z`` off the negative real axis (principal branch)."""
    r2 = z.real * z.real + z.imag * z.imag
    if r2 > 1600.0:
        # asymptotic series (1/z) Σ k!/(-z)^k, summed while its terms shrink (k < |z|)
        w = 1.0 / z
        s = 1.0 + 0.0j
        term = 1.0 + 0.0j
        kmax = math.sqrt(r2)
        k = 1.0
        while k < kmax:
            term = term * (-k * w)
            s += term
            if term.real * term.real + term.imag * term.imag < 1e-34:
                break
            k += 1.0
        return s * w
    r = math.sqrt(r2)
    if r <= 4.0 or r + z.real < 8.0:
        # power series; along the negative axis its terms grow like e^|z| but e^z shrinks
        # the cancellation error back to rounding
        s = 0.0 + 0.0j
        term = 1.0 + 0.0j
        mz = -z
        for k in range(1, 400):
            term = term * mz * (1.0 / k)
            add = term * (1.0 / k)
            s += add
            if (add.real * add.real + add.imag * add.imag
                    <= 1e-34 * (s.real * s.real + s.imag * s.imag)):
                break
        return cmath.exp(z) * (-_EULER - cmath.log(z) - s)
    # continued fraction 1/(z+1 - 1/(z+3 - 4/(z+5 - ...))), modified Lentz
    b = z + 1.0
    C = 1e300 + 0.0j
    D = 1.0 / b
    h = D
    for i in range(1, 2000):
        a = -float(i * i)
        b = b + 2.0
        D = 1.0 / (a * D + b)
        C = b + a / C
        dl = C * D
        h = h * dl
        e = dl - 1.0
        if e.real * e.real + e.imag * e.imag < 1e-32:
            break
    return h


@njit(cache=True, nogil=True, inline="always")
def _erfc_scaled(w):
    """``e^{w²} erfc(w)`` for ``w >= 0``."""
    if w < 26.0:
        return math.exp(w * w) * math.erfc(w)
    iw2 = 1.0 / (w * w)
    return (1.0 - 0.5 * iw2 * (1.0 - 1.5 * iw2 * (1.0 - 2.5 * iw2 * (1.0 - 3.5 * iw2)))) \
        / (w * math.sqrt(math.pi))


@njit(cache=True, nogil=True, inline="always")
def _exp_erfc(a, w, E):
    """``e^a erfc(w)``, with ``E = a - w²`` (used when ``w > 0``, where ``e^a`` overflows)."""
    if w > 0.0:
        return math.exp(E) * _erfc_scaled(w) if E > -745.0 else 0.0
    return math.exp(a) * math.erfc(w)


@njit(cache=True, nogil=True)
def _tof_point(dx, alpha, beta, fwhm, eta, lorentz):
    """The unit-area back-to-back-exponential ⊗ pseudo-Voigt at ``dx = x - position``.

    Returns the value and ``∂/∂dx, ∂/∂α, ∂/∂β, ∂/∂Γ, ∂/∂η``. The Lorentzian part is skipped
    when ``lorentz`` is False (then ``η`` must be 0 and ``∂/∂η`` is not used).
    """
    ab = alpha + beta
    N = alpha * beta / ab
    Na = beta * beta / (ab * ab)
    Nb = alpha * alpha / (ab * ab)
    s = fwhm * _S_PER_FWHM
    s2 = s * s
    E = -dx * dx / (2.0 * s2)
    K = _TWO_SQRTPI * math.exp(E) if E > -745.0 else 0.0
    y = (alpha * s2 + dx) / (_SQRT2 * s)
    z = (beta * s2 - dx) / (_SQRT2 * s)
    A = _exp_erfc(0.5 * alpha * (alpha * s2 + 2.0 * dx), y, E)
    B = _exp_erfc(0.5 * beta * (beta * s2 - 2.0 * dx), z, E)
    G = 0.5 * N * (A + B)
    dA_dx = alpha * A - K / (_SQRT2 * s)
    dB_dx = -beta * B + K / (_SQRT2 * s)
    dA_da = (alpha * s2 + dx) * A - K * s / _SQRT2
    dB_db = (beta * s2 - dx) * B - K * s / _SQRT2
    dA_ds = alpha * alpha * s * A - K * (alpha / _SQRT2 - dx / (_SQRT2 * s2))
    dB_ds = beta * beta * s * B - K * (beta / _SQRT2 + dx / (_SQRT2 * s2))
    dG_dx = 0.5 * N * (dA_dx + dB_dx)
    dG_da = 0.5 * Na * (A + B) + 0.5 * N * dA_da
    dG_db = 0.5 * Nb * (A + B) + 0.5 * N * dB_db
    dG_df = 0.5 * N * (dA_ds + dB_ds) * _S_PER_FWHM
    if not lorentz:
        return G, dG_dx, dG_da, dG_db, dG_df, -G
    g = 0.5 * fwhm
    z1 = complex(alpha * dx, alpha * g)
    z2 = complex(-beta * dx, beta * g)
    f1 = exp_e1(z1)
    f2 = exp_e1(z2)
    d1 = f1 - 1.0 / z1
    d2 = f2 - 1.0 / z2
    c = -N / math.pi
    L = c * (f1.imag + f2.imag)
    dL_dx = c * (alpha * d1 - beta * d2).imag
    dL_da = -Na / math.pi * (f1.imag + f2.imag) + c * (d1 * complex(dx, g)).imag
    dL_db = -Nb / math.pi * (f1.imag + f2.imag) + c * (d2 * complex(-dx, g)).imag
    dL_df = 0.5 * c * (alpha * d1 + beta * d2).real
    return (eta * L + (1.0 - eta) * G, eta * dL_dx + (1.0 - eta) * dG_dx,
            eta * dL_da + (1.0 - eta) * dG_da, eta * dL_db + (1.0 - eta) * dG_db,
            eta * dL_df + (1.0 - eta) * dG_df, L - G)


#: Columns of a peak's shape parameters: α, β, Γ, η, ∂Γ/∂σ², ∂Γ/∂γ, ∂η/∂σ², ∂η/∂γ, whether
#: α and β are above their clip (1/0), and whether the Lorentzian part is evaluated.
_PRM = ("alpha", "beta", "fwhm", "eta", "df_ds2", "df_dg", "de_ds2", "de_dg", "alpha_on",
        "beta_on", "lorentz")


@cfunc(SHAPE_SIG, cache=True, nogil=True)
def _tof_shape(dx, prm, out, grad):
    """The TOF peak as a kernel shape; width slots ``(alpha, beta, sigma2, gamma)``."""
    val, d_x, d_a, d_b, d_f, d_e = _tof_point(dx, prm[0], prm[1], prm[2], prm[3],
                                              prm[10] != 0.0)
    if grad:
        out[0] = -d_x
        out[1] = d_a * prm[8]
        out[2] = d_b * prm[9]
        out[3] = d_f * prm[4] + d_e * prm[6]
        out[4] = d_f * prm[5] + d_e * prm[7]
    return val


@njit(cache=True, nogil=True)
def _tof_arrays(dx, alpha, beta, fwhm, eta, out):
    for i in range(dx.size):
        r = _tof_point(dx[i], alpha[i], beta[i], fwhm[i], eta[i], True)
        for j in range(6):
            out[j, i] = r[j]


def tof_peak(dx, alpha, beta, fwhm, eta):
    """The unit-area TOF peak (see the module docstring) at offsets ``dx = x - position``.

    Returns
    -------
    value, d_ddx, d_dalpha, d_dbeta, d_dfwhm, d_deta : ndarray
        The value and its analytic derivatives (with respect to the offset, α, β, the total
        FWHM Γ and the Lorentzian fraction η).
    """
    arrays = np.broadcast_arrays(*(np.asarray(a, dtype=float)
                                   for a in (dx, alpha, beta, fwhm, eta)))
    shape = arrays[0].shape
    flat = [np.ascontiguousarray(a).ravel() for a in arrays]
    out = np.empty((6, flat[0].size))
    _tof_arrays(*flat, out)
    return tuple(o.reshape(shape) for o in out)


def pulse_tail_length(alpha, beta, tolerance: float) -> np.ndarray:
    """Distance beyond which the back-to-back exponentials keep at most ``tolerance``.

    The rising side holds ``β/(α+β)`` of the area and loses ``β/(α+β) e^{-αD}`` beyond D;
    the decaying side ``α/(α+β) e^{-βD}``: the larger of the two distances where each loss
    reaches ``tolerance`` (0 when it never does).
    """
    alpha, beta = np.asarray(alpha, dtype=float), np.asarray(beta, dtype=float)
    if tolerance <= 0:
        return np.full(np.broadcast(alpha, beta).shape, np.inf)
    left = np.log(np.maximum(beta / (alpha + beta) / tolerance, 1.0)) / alpha
    right = np.log(np.maximum(alpha / (alpha + beta) / tolerance, 1.0)) / beta
    return np.maximum(left, right)


@dataclass
class TimeOfFlight(PeakProfile):
    """A time-of-flight neutron detector bank: settings and starting values.

    Parameters
    ----------
    two_theta : float
        The bank's 2θ (degrees; its ``sin θ`` enters the Lorentz factor).
    difc : float
        Linear d-to-TOF calibration (µs/Å).
    zero, difa, difb : float
        Offset (µs), quadratic (µs/Å²) and reciprocal (µs·Å) calibration terms.
    alpha : float
        Rise of the pulse (α = alpha/d; Å/µs).
    beta0, beta1, betaq : float
        Decay of the pulse (β = beta0 + beta1/d⁴ + betaq/d²; 1/µs, Å⁴/µs, Å²/µs).
    sig0, sig1, sig2, sigq : float
        Gaussian variance (σ² = sig0 + sig1 d² + sig2 d⁴ + sigq d; µs², µs²/Å², µs²/Å⁴,
        µs²/Å).
    X, Y, Z : float
        Lorentzian FWHM (γ = Z + X d + Y d²; µs/Å, µs/Å², µs).
    flight_path : float
        Total flight path (m), for the record.

    The defaults of the profile terms are placeholders: take them from the instrument's
    parameter file (:func:`sciTie.diffraction.read_instrument`).
    """

    two_theta: float
    difc: float
    zero: float = 0.0
    difa: float = 0.0
    difb: float = 0.0
    alpha: float = 1.0
    beta0: float = 0.05
    beta1: float = 0.0
    betaq: float = 0.0
    sig0: float = 0.0
    sig1: float = 50.0
    sig2: float = 0.0
    sigq: float = 0.0
    X: float = 0.0
    Y: float = 0.0
    Z: float = 0.0
    flight_path: float = 0.0

    kind: ClassVar[str] = "tof"
    description: ClassVar[str] = ("time of flight: back-to-back exponentials ⊗ TCH "
                                  "pseudo-Voigt")
    axis: ClassVar[str] = "tof"
    axis_units: ClassVar[str] = "microsecond"
    axis_label: ClassVar[str] = "time of flight (µs)"
    params: ClassVar[tuple[str, ...]] = _PARAMS
    units: ClassVar[dict] = {"zero": "µs", "difc": "µs/Å", "difa": "µs/Å²", "difb": "µs·Å",
                             "alpha": "Å/µs", "beta0": "1/µs", "beta1": "Å⁴/µs",
                             "betaq": "Å²/µs", "sig0": "µs²", "sig1": "µs²/Å²",
                             "sig2": "µs²/Å⁴", "sigq": "µs²/Å", "X": "µs/Å", "Y": "µs/Å²",
                             "Z": "µs"}
    minimum: ClassVar[dict] = {}
    width_slots: ClassVar[tuple[str, ...]] = ("alpha", "beta", "sigma2", "gamma")
    width_unit: ClassVar[float] = 1.0
    background_peak_units: ClassVar[tuple[str, ...]] = ("µs", "counts·µs", "µs²", "µs")
    default_refine: ClassVar[tuple[str, ...]] = ("alpha", "beta0", "beta1", "sig1")
    shape: ClassVar = _tof_shape
    settings: ClassVar[tuple[str, ...]] = ("two_theta", "flight_path")
    radiation: ClassVar[str] = "neutron"
    all_terms_column: ClassVar[int] = _PRM.index("lorentz")

    def __post_init__(self) -> None:
        self.two_theta = check_float(self.two_theta, "two_theta (the bank's 2θ, degrees)",
                                     minimum=0.0, maximum=180.0, low_open=True,
                                     high_open=True)
        self.flight_path = check_float(self.flight_path, "flight_path (m)", minimum=0.0)
        self._check_values()
        if not self.difc > 0:
            raise ValidationError(f"difc must be > 0 µs/Å, got {self.difc:g}")

    def metadata(self, values: dict) -> dict:
        return {"profile": self.kind, "radiation": "neutron", "two_theta_bank": self.two_theta,
                "flight_path_m": self.flight_path, "difc": values["difc"],
                "difa": values["difa"], "difb": values["difb"], "zero": values["zero"]}

    # -- calibration ---------------------------------------------------------------------------
    @staticmethod
    def _tof(d, P):
        return P["zero"] + P["difc"] * d + P["difa"] * d * d + P["difb"] / d

    def positions(self, q, values):
        return self._tof(1.0 / np.sqrt(q), values)

    def d_of(self, tof, values) -> np.ndarray:
        """The d-spacing (Å) whose peak is at ``tof`` (the calibration inverted)."""
        t = np.atleast_1d(np.asarray(tof, dtype=float))
        lo = np.full(t.shape, 1e-3)
        hi = np.full(t.shape, 1e3)
        for _ in range(80):              # bisection: the calibration rises with d
            mid = 0.5 * (lo + hi)
            up = self._tof(mid, values) > t
            hi = np.where(up, mid, hi)
            lo = np.where(up, lo, mid)
        return 0.5 * (lo + hi)

    def describe_position(self, d, values):
        return f"TOF = {float(self._tof(d, values)):.6g} µs"

    # -- physics -----------------------------------------------------------------------------------
    def _widths(self, d, P, size, mu):
        alpha = P["alpha"] / d
        beta = P["beta0"] + P["beta1"] / d ** 4 + P["betaq"] / d ** 2
        s2 = P["sig0"] + P["sig1"] * d ** 2 + P["sig2"] * d ** 4 + P["sigq"] * d
        gam = (P["Z"] + P["X"] * d + P["Y"] * d ** 2 + 1e-4 * P["difc"] * d ** 2 / size
               + 1e-6 * P["difc"] * d * mu)
        return alpha, beta, s2, gam

    def components(self, ctx: ReflectionContext) -> list[Component]:
        P, col = ctx.values, ctx.col
        d = 1.0 / np.sqrt(ctx.q)
        sin_th = math.sin(math.radians(self.two_theta / 2))
        pos = self._tof(d, P)
        corr = sin_th * d ** 4
        widths = list(self._widths(d, P, ctx.size, ctx.mu))
        comp = Component(pos=pos, corr=corr, widths=widths, ok=np.ones(d.shape, dtype=bool))
        if not ctx.grad:
            return [comp]
        dd = (-0.5 * d ** 3)[:, None] * ctx.dq                 # ∂d/∂local
        dP = (P["difc"] + 2 * P["difa"] * d - P["difb"] / d ** 2)[:, None] * dd
        for n, v in (("zero", 1.0), ("difc", d), ("difa", d ** 2), ("difb", 1.0 / d)):
            dP[:, col[n]] += v
        dC = (4 * sin_th * d ** 3)[:, None] * dd
        dA = (-P["alpha"] / d ** 2)[:, None] * dd
        dA[:, col["alpha"]] += 1.0 / d
        dB = (-4 * P["beta1"] / d ** 5 - 2 * P["betaq"] / d ** 3)[:, None] * dd
        for n, v in (("beta0", 1.0), ("beta1", d ** -4.0), ("betaq", d ** -2.0)):
            dB[:, col[n]] += v
        dS = (2 * P["sig1"] * d + 4 * P["sig2"] * d ** 3 + P["sigq"])[:, None] * dd
        for n, v in (("sig0", 1.0), ("sig1", d ** 2), ("sig2", d ** 4), ("sigq", d)):
            dS[:, col[n]] += v
        size, mu, difc = ctx.size, ctx.mu, P["difc"]
        dG = (P["X"] + 2 * P["Y"] * d + 2e-4 * difc * d / size + 1e-6 * difc * mu)[:, None] * dd
        for n, v in (("Z", 1.0), ("X", d), ("Y", d ** 2),
                     ("difc", 1e-4 * d ** 2 / size + 1e-6 * d * mu)):
            dG[:, col[n]] += v
        dG[:, ctx.size_col] += -1e-4 * difc * d ** 2 / size ** 2
        dG += (1e-6 * difc * d)[:, None] * ctx.dmu
        comp.dpos, comp.dcorr, comp.dwidths = dP, dC, [dA, dB, dS, dG]
        return [comp]

    def shape_params(self, widths):
        alpha, beta, s2, gam = widths
        fwhm, eta, df_ds2, df_dg, de_ds2, de_dg = tch(s2, gam, unit=1.0)
        a_on = alpha > _MIN_RATE
        b_on = beta > _MIN_RATE
        prm = np.column_stack([np.maximum(alpha, _MIN_RATE), np.maximum(beta, _MIN_RATE),
                               fwhm, eta, df_ds2, df_dg, de_ds2, de_dg, a_on, b_on,
                               eta > 0]).astype(float)
        return np.ascontiguousarray(prm), fwhm, eta

    def needs_all_terms(self, prm, width_rows):
        """The Lorentzian part is evaluated where η > 0 or where γ's rows are not zero."""
        need = prm[:, 3] > 0
        if width_rows is not None:
            need = need | np.any(width_rows[3] != 0, axis=1)
        return need

    def tails(self, prm, fwhm, eta, span, tolerance):
        alpha, beta = prm[:, 0], prm[:, 1]
        half = (fwhm * window_fwhm(eta, 0.5 * tolerance)
                + pulse_tail_length(alpha, beta, 0.5 * tolerance) + span)
        radius = CORE_FWHM * fwhm + PULSE_CORE / np.minimum(alpha, beta) + 4.0 * span
        return half, radius

    def width_at(self, x, values, size, mu):
        d = self.d_of(x, values)
        _, _, fwhm, eta = self._peak_at(d, values, size, mu)
        return fwhm, eta

    def _peak_at(self, d, values, size, mu):
        prm, fwhm, eta = self.shape_params(list(self._widths(d, values, size, mu)))
        return prm[:, 0], prm[:, 1], fwhm, eta

    def d_min(self, fit_range, values, size, mu, tolerance):
        # the tails of reflections below the range reach up into it; like the 180° limit of
        # constant wavelength, the reach stops at half the lowest TOF (a Lorentzian-rich
        # window can be wider than the pattern, and the reflections multiply as 1/d³)
        lo = fit_range[0]
        bottom = 0.5 * lo
        if tolerance > 0:
            d = self.d_of(lo, values)
            alpha, beta, fwhm, eta = self._peak_at(d, values, size, mu)
            prm = np.column_stack([alpha, beta])
            half, _ = self.tails(prm, fwhm, eta, np.zeros(1), tolerance)
            bottom = max(lo - 1.5 * float(half[0]) - 1.0, bottom)
        return max(float(self.d_of(bottom, values)[0]), MIN_D)

    # -- instrument files --------------------------------------------------------------------------
    @classmethod
    def from_instprm(cls, values: dict, path) -> "TimeOfFlight":
        """The bank of a GSAS-II ``.instprm`` file with ``Type:PNT``.

        ``difC, difA, difB, Zero, alpha, beta-0, beta-1, beta-q, sig-0, sig-1, sig-2, sig-q,
        X, Y, Z`` map onto the parameters of the same names (without the dashes), ``2-theta``
        and ``fltPath`` onto the settings.
        """
        keys = {"difC": "difc", "difA": "difa", "difB": "difb", "Zero": "zero",
                "alpha": "alpha", "beta-0": "beta0", "beta-1": "beta1", "beta-q": "betaq",
                "sig-0": "sig0", "sig-1": "sig1", "sig-2": "sig2", "sig-q": "sigq",
                "X": "X", "Y": "Y", "Z": "Z", "2-theta": "two_theta",
                "fltPath": "flight_path"}
        missing = [k for k in ("difC", "2-theta") if k not in values]
        if missing:
            raise DataFormatError(f"a time-of-flight .instprm needs {missing}", path=path)
        out = {}
        for key, name in keys.items():
            if key in values:
                line, v = values[key]
                try:
                    out[name] = float(v)
                except (TypeError, ValueError):
                    raise DataFormatError(f"{key} must be a number, got {v!r}", path=path,
                                          line=line) from None
        try:
            return cls(**out)
        except (ValidationError, TypeError) as exc:
            raise DataFormatError(str(exc), path=path) from None

    @classmethod
    def from_gsas(cls, records: dict, htype: str | None, path) -> "TimeOfFlight":
        """One bank of a GSAS ``.prm`` file with ``HTYPE PNT``, read as GSAS-II reads it.

        ``INS n ICONS``: difc, difa, zero; ``INS n BNKPAR``: the secondary flight path and
        the bank's 2θ; ``INS n PRCF1`` the profile type and ``PRCF11``/``PRCF12`` its
        coefficients. Types 3 and 5: alpha, beta0, beta1 then sig1, sig2; type 4: alpha,
        beta0, beta1, sig1; type 1: alpha, beta0, beta1 (fields 2-4) then sig1, sig2 (fields
        2-3). Like GSAS-II, the other terms (sig0, the Lorentzian γ terms) start at 0; type 2
        has no GSAS-II counterpart and is refused.
        """
        def numbers(key, n=1):
            if key not in records:
                raise DataFormatError(f"no 'INS  n{key}' line for this bank", path=path)
            line, text = records[key]
            try:
                vals = [float(v) for v in text.split()]
            except ValueError:
                raise DataFormatError(f"non-numeric value in {key} line {text.strip()!r}",
                                      path=path, line=line) from None
            if len(vals) < n or not all(math.isfinite(v) for v in vals):
                raise DataFormatError(f"{key} needs {n} finite numbers, got {text.strip()!r}",
                                      path=path, line=line)
            return vals, line

        (difc, difa, zero, *_), _ = numbers("ICONS", 3)
        bnk, _ = numbers("BNKPAR", 2)
        out = {"difc": difc, "difa": difa, "zero": zero, "two_theta": bnk[1],
               "flight_path": bnk[0]}
        if "PRCF1" in records:
            (ptype, *_), line = numbers("PRCF1", 1)
            ptype = abs(int(ptype))
            c1, _ = numbers("PRCF11", 3)
            if ptype == 1:
                c1, _ = numbers("PRCF11", 4)
                c2, _ = numbers("PRCF12", 3)
                out.update(alpha=c1[1], beta0=c1[2], beta1=c1[3], sig1=c2[1], sig2=c2[2])
            elif ptype in (3, 5):
                c2, _ = numbers("PRCF12", 2)
                out.update(alpha=c1[0], beta0=c1[1], beta1=c1[2], sig1=c2[0], sig2=c2[1])
            elif ptype == 4:
                c1, _ = numbers("PRCF11", 4)
                out.update(alpha=c1[0], beta0=c1[1], beta1=c1[2], sig1=c1[3], sig2=0.0)
            else:
                raise DataFormatError(f"time-of-flight profile type {ptype} is not supported "
                                      "(use 1, 3, 4 or 5)", path=path, line=line)
            out.update(sig0=0.0, betaq=0.0, sigq=0.0, X=0.0, Y=0.0, Z=0.0)
        try:
            return cls(**out)
        except (ValidationError, TypeError) as exc:
            raise DataFormatError(str(exc), path=path) from None
