"""Absorption and surface roughness: a pattern's intensity correction per reflection.

**Debye-Scherrer cylinder** (``model = "cylinder"``, slot ``muR``: the linear absorption
coefficient times the sample radius, dimensionless). The transmission of a cylinder fully
bathed in the beam, relative to a non-absorbing one, is the analytic approximation of
Lobanov & Alte da Veiga (6th European Powder Diffraction Conference, 1998, abstract P12-16)
that GSAS-II uses (``GSASIIpwd.Absorb('Cylinder', ...)``), with ``s = sin²θ``:

    μR ≤ 3:  A = exp(-(16/3π) μR - T1(s) μR² - T2(s) μR³ - T3(s) μR⁴)
    μR > 3:  A = [(T1'(s) - T4'(s)) / (1 + T2'(s)(μR - 3))^T3'(s) + T4'(s)] / 100

(the T's are the published fitted functions of s). The two branches differ by up to 2.7 %
at μR = 3 (at high angles): a refinement that crosses μR = 3 sees that step. For time of flight (a fixed bank angle) ``muR`` is μR at λ = 1 Å and scales with the
wavelength, ``μR(λ) = muR·λ`` (absorption cross-sections ∝ 1/v), as in GSAS-II.

**Surface roughness** of a flat Bragg-Brentano sample (``model = "suortti"``; Suortti,
J. Appl. Cryst. 5 (1972) 325; GSAS-II's ``SurfRoughA``, ``SurfRoughB``), slots ``rough_p``
and ``rough_q``:

    S(θ) = [p + (1 - p) exp(-q / sin θ)] / [p + (1 - p) exp(-q)],

1 at 2θ = 180° and lower at low angles, where a rough surface hides part of the
illuminated volume.

Both multiply every peak's intensity and have analytic derivatives with respect to their
parameters and, through θ, to everything that moves the peak (zero shift, cell,
wavelength).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._validation import check_choice, check_float
from ..errors import ArgumentTypeError, ValidationError

__all__ = ["Absorption", "ABSORPTION_MODELS", "cylinder_transmission", "suortti_roughness",
           "check_absorption", "absorption_rows"]

ABSORPTION_MODELS = ("cylinder", "suortti")
_PARAMS = {"cylinder": ("muR",), "suortti": ("rough_p", "rough_q")}
_T0 = 16.0 / (3.0 * math.pi)


def _small(s):
    """T1, T2, T3 of the μR ≤ 3 branch and their derivatives with respect to s = sin²θ."""
    e = np.exp(-0.024551 * s)
    s4 = s ** 0.25
    sq = np.sqrt(s)
    T1 = (25.99978 - 0.01911 * s4) * e + 0.109561 * sq - 26.04556
    dT1 = (-0.01911 * 0.25 * s ** -0.75 - 0.024551 * (25.99978 - 0.01911 * s4)) * e \
        + 0.5 * 0.109561 / sq
    T2 = (-0.02489 - 0.39499 * s + 1.219077 * s ** 1.5 - 1.31268 * s ** 2
          + 0.871081 * s ** 2.5 - 0.2327 * s ** 3)
    dT2 = (-0.39499 + 1.5 * 1.219077 * sq - 2 * 1.31268 * s + 2.5 * 0.871081 * s ** 1.5
           - 3 * 0.2327 * s ** 2)
    T3 = 0.003045 + 0.018167 * s - 0.03305 * s ** 2
    dT3 = 0.018167 - 2 * 0.03305 * s
    return (T1, T2, T3), (dT1, dT2, dT3)


def _large(s):
    """T1..T4 of the μR > 3 branch and their derivatives with respect to s."""
    T1 = 1.433902 + 11.07504 * s - 8.77629 * s ** 2 + 10.02088 * s ** 3 - 3.36778 * s ** 4
    dT1 = 11.07504 - 2 * 8.77629 * s + 3 * 10.02088 * s ** 2 - 4 * 3.36778 * s ** 3
    e = np.exp(3.27094 * s)
    b = 1.0 + 11.53544 * s
    T2 = (0.013869 - 0.01249 * s) * e + (0.337894 + 13.77317 * s) / b ** 1.555039
    dT2 = (-0.01249 + 3.27094 * (0.013869 - 0.01249 * s)) * e \
        + 13.77317 / b ** 1.555039 \
        - 1.555039 * 11.53544 * (0.337894 + 13.77317 * s) / b ** 2.555039
    c = 1.0 + 23.12967 * s
    sq = np.sqrt(s)
    T3 = 1.933433 / c ** 1.686715 - 0.13576 * sq + 1.163198
    dT3 = -1.686715 * 23.12967 * 1.933433 / c ** 2.686715 - 0.5 * 0.13576 / sq
    d = 1.0 + 0.41051 * s
    T4 = 0.044365 - 0.04259 / d ** 148.4202
    dT4 = 148.4202 * 0.41051 * 0.04259 / d ** 149.4202
    return (T1, T2, T3, T4), (dT1, dT2, dT3, dT4)


def cylinder_transmission(muR, theta_deg):
    """Transmission of a cylinder (Lobanov & Alte da Veiga) at Bragg angle θ (degrees).

    Returns ``A``, ``∂A/∂μR`` and ``∂A/∂θ`` (per degree), arrays broadcast from the inputs.
    """
    x, th = np.broadcast_arrays(np.asarray(muR, dtype=float),
                                np.asarray(theta_deg, dtype=float))
    s = np.maximum(np.sin(np.radians(th)) ** 2, 1e-30)     # 2θ = 0 has a singular slope
    ds_dth = np.sin(np.radians(2 * th)) * math.pi / 180.0
    A = np.empty(x.shape)
    dx = np.empty(x.shape)
    ds = np.empty(x.shape)
    lo = x <= 3.0
    if np.any(lo):
        (T1, T2, T3), (d1, d2, d3) = _small(s[lo])
        xl = x[lo]
        A[lo] = np.exp(-_T0 * xl - T1 * xl ** 2 - T2 * xl ** 3 - T3 * xl ** 4)
        dx[lo] = A[lo] * (-_T0 - 2 * T1 * xl - 3 * T2 * xl ** 2 - 4 * T3 * xl ** 3)
        ds[lo] = A[lo] * -(d1 * xl ** 2 + d2 * xl ** 3 + d3 * xl ** 4)
    hi = ~lo
    if np.any(hi):
        (T1, T2, T3, T4), (d1, d2, d3, d4) = _large(s[hi])
        base = 1.0 + T2 * (x[hi] - 3.0)
        pw = base ** -T3
        A[hi] = ((T1 - T4) * pw + T4) / 100.0
        dx[hi] = (T1 - T4) * pw * (-T3) * T2 / base / 100.0
        ds[hi] = ((d1 - d4) * pw + (T1 - T4) * pw * (-d3 * np.log(base)
                                                      - T3 * d2 * (x[hi] - 3.0) / base)
                  + d4) / 100.0
    return A, dx, ds * ds_dth


def suortti_roughness(p, q, theta_deg):
    """Suortti's surface-roughness factor at Bragg angle θ (degrees).

    Returns ``S``, ``∂S/∂p``, ``∂S/∂q`` and ``∂S/∂θ`` (per degree).
    """
    p, q = float(p), float(q)
    th = np.radians(np.asarray(theta_deg, dtype=float))
    sth = np.sin(th)
    e1 = np.exp(-q / sth)
    e0 = math.exp(-q)
    num = p + (1 - p) * e1
    den = p + (1 - p) * e0
    S = num / den
    dS_dp = ((1 - e1) * den - num * (1 - e0)) / den ** 2
    dS_dq = (-(1 - p) * e1 / sth * den + num * (1 - p) * e0) / den ** 2
    dS_dth = (1 - p) * e1 * q * np.cos(th) / sth ** 2 / den * (math.pi / 180.0)
    return S, dS_dp, dS_dq, dS_dth


@dataclass
class Absorption:
    """The absorption correction of one pattern (see the module docstring).

    Parameters
    ----------
    model : {'cylinder', 'suortti'}
    start : dict
        Starting values of the model's parameters (``muR``; ``rough_p``, ``rough_q``).
    tof : bool
        The pattern is time of flight (μR scales with the wavelength at the bank angle).
    bank_two_theta : float
        The bank's 2θ (degrees) for time of flight.
    """

    model: str
    start: dict
    tof: bool = False
    bank_two_theta: float = 0.0

    @property
    def names(self) -> tuple:
        return _PARAMS[self.model]

    @property
    def units(self) -> dict:
        return {n: "" for n in self.names}                     # all dimensionless

    def factor(self, comp, q, dq, values: dict, col: dict, grad: bool):
        """Factor of a component's peaks and its derivative rows (None without ``grad``)."""
        if self.model == "cylinder":
            muR = values["muR"]
            if muR < 0:
                raise ValidationError(f"muR (absorption) must be >= 0, got {muR:g}")
            if self.tof:
                th = np.full(q.shape, self.bank_two_theta / 2)
                lam = 2 * math.sin(math.radians(self.bank_two_theta / 2)) / np.sqrt(q)
                A, dA_dx, _ = cylinder_transmission(muR * lam, th)
                if not grad:
                    return A, None
                dA = (dA_dx * muR * (-lam / (2 * q)))[:, None] * dq
                dA[:, col["muR"]] += dA_dx * lam
                return A, dA
            th = comp.pos / 2
            A, dA_dx, dA_dth = cylinder_transmission(muR, th)
            if not grad:
                return A, None
            dA = (dA_dth / 2)[:, None] * comp.dpos
            dA[:, col["muR"]] += dA_dx
            return A, dA
        S, dp, dq_, dth = suortti_roughness(values["rough_p"], values["rough_q"],
                                            comp.pos / 2)
        if not grad:
            return S, None
        dS = (dth / 2)[:, None] * comp.dpos
        dS[:, col["rough_p"]] += dp
        dS[:, col["rough_q"]] += dq_
        return S, dS


def check_absorption(value, instrument) -> Absorption | None:
    """The absorption correction from ``{"model": "cylinder", "muR": 0.5}`` or ``{"model":
    "suortti", "rough_p": ..., "rough_q": ...}`` (or a model name alone), checked against
    the instrument: a cylinder needs a Debye-Scherrer or time-of-flight pattern, surface
    roughness a Bragg-Brentano one."""
    if value is None:
        return None
    if isinstance(value, str):
        value = {"model": value}
    if not isinstance(value, dict):
        raise ArgumentTypeError(f"absorption must be a dict such as {{'model': 'cylinder', "
                                f"'muR': 0.5}} or a model name, got {type(value).__name__}")
    model = check_choice(value.get("model"), "absorption['model']", ABSORPTION_MODELS)
    names = _PARAMS[model]
    bad = [k for k in value if k not in ("model",) + names]
    if bad:
        raise ValidationError(f"absorption: unknown keys {bad} for model {model!r}; expected "
                              f"{['model', *names]}")
    defaults = {"muR": 0.0, "rough_p": 1.0, "rough_q": 0.0}
    start = {n: check_float(value.get(n, defaults[n]), f"absorption[{n!r}]") for n in names}
    if start.get("muR", 0.0) < 0:
        raise ValidationError(f"absorption['muR'] must be >= 0, got {start['muR']:g}")
    tof = instrument.axis != "two_theta"
    geometry = getattr(instrument, "geometry", None)
    if model == "cylinder" and not tof and geometry != "debye-scherrer":
        raise ValidationError(f"absorption: a cylinder (muR) needs a Debye-Scherrer pattern; "
                              f"this instrument's geometry is {geometry!r} (use 'suortti' "
                              "for a flat Bragg-Brentano sample)")
    if model == "suortti" and (tof or geometry != "bragg-brentano"):
        raise ValidationError(f"absorption: surface roughness ('suortti') is for a flat "
                              f"Bragg-Brentano sample; this pattern is "
                              f"{'time of flight' if tof else repr(geometry)}")
    bank = float(getattr(instrument, "two_theta", 0.0)) if tof else 0.0
    return Absorption(model, start, tof=tof, bank_two_theta=bank)


def absorption_rows(pat, comps, q, dq, v: np.ndarray, grad: bool) -> None:
    """Multiply every component's intensity correction by the pattern's absorption."""
    corr = pat.absorption
    if corr is None:
        return
    lay = pat.layout
    values = dict(zip(lay.names, v[lay.pattern]))
    col = lay.columns()
    for comp in comps:
        f, df = corr.factor(comp, q, dq, values, col, grad)
        comp.multiply(f, df)
