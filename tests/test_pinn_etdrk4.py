"""ETDRK4 spectral solver: exact linear solutions, 4th order, refinement for Allen-Cahn."""
import numpy as np
import pytest

from sciTie.errors import ValidationError
from sciTie.pinn import (etdrk4_solve, fourier_interpolate, spectral_derivative,
                         semilinear_reference)


def test_linear_pde_with_nonlinear_slot_matches_exact_solution():
    # u_t = nu u_xx + a u - c u_x; the "a u - c u_x" part goes through the N(u) slot, so the
    # exponential Runge-Kutta stages (not just exp(hL)) are exercised.
    nu, a, c = 0.1, 0.7, 0.3
    period = 2 * np.pi
    ds = etdrk4_solve(lambda k: -nu * k ** 2,
                      lambda u: a * u - c * spectral_derivative(u, period),
                      lambda x: np.sin(x) + 0.5 * np.cos(3 * x), domain=(0, period),
                      t_final=1.0, n_points=32, dt=5e-3, n_snapshots=11)
    x, t = ds.x.values, ds.t.values[:, None]
    exact = (np.exp((a - nu) * t) * np.sin(x - c * t)
             + 0.5 * np.exp((a - 9 * nu) * t) * np.cos(3 * (x - c * t)))
    assert np.max(np.abs(ds.u.values - exact)) < 1e-10


def test_complex_symbol_advection_diffusion_exact():
    nu, c, period = 0.05, 2.0, 3.0
    w = 2 * np.pi / period
    ds = etdrk4_solve(lambda k: -1j * c * k - nu * k ** 2, lambda u: 0.0 * u,
                      lambda x: np.cos(2 * w * (x - 1.0)), domain=(1.0, 1.0 + period), t_final=0.7,
                      n_points=16, dt=0.1, n_snapshots=8)
    x, t = ds.x.values, ds.t.values[:, None]
    exact = np.exp(-nu * (2 * w) ** 2 * t) * np.cos(2 * w * (x - 1.0 - c * t))
    assert np.max(np.abs(ds.u.values - exact)) < 1e-12


def _ac(n, dt, t_final=1.0):
    return etdrk4_solve(lambda k: -1e-4 * k ** 2, lambda u: 5 * u - 5 * u ** 3,
                        lambda x: x ** 2 * np.cos(np.pi * x), domain=(-1, 1), t_final=t_final,
                        n_points=n, dt=dt, n_snapshots=11)


def test_allen_cahn_fourth_order_in_time():
    d = [np.max(np.abs(_ac(256, h).u.values - _ac(256, h / 2).u.values)) for h in (0.02, 0.01)]
    assert 12 < d[0] / d[1] < 20  # 2**4 = 16


@pytest.mark.slow
def test_allen_cahn_self_consistent_under_refinement():
    base = _ac(1024, 1e-3)
    finer_t = _ac(1024, 5e-4)
    assert np.max(np.abs(base.u.values - finer_t.u.values)) < 1e-10
    finer_x = _ac(2048, 1e-3)
    xs = np.linspace(-1, 1, 301)
    d = np.abs(fourier_interpolate(base.u.values, -1, 2, xs)
               - fourier_interpolate(finer_x.u.values, -1, 2, xs))
    assert d[-1].max() < 1e-9  # at t = 1 the interfaces are resolved to round-off level
    # the solution has developed the known metastable +-1 plateaus
    assert base.u.values[-1].min() < -0.99 and base.u.values[-1].max() > 0.9


def test_fourier_interpolate_and_derivative_exact_for_trig_polynomials():
    period, a = 2.5, -0.3
    n = 16
    x = a + period * np.arange(n) / n
    w = 2 * np.pi / period
    u = np.sin(3 * w * (x - a)) + 0.2 * np.cos(w * (x - a)) + 0.1
    xs = np.random.default_rng(0).uniform(-5, 5, 50)
    exact = np.sin(3 * w * (xs - a)) + 0.2 * np.cos(w * (xs - a)) + 0.1
    assert np.max(np.abs(fourier_interpolate(u, a, period, xs) - exact)) < 1e-13
    du = 3 * w * np.cos(3 * w * (x - a)) - 0.2 * w * np.sin(w * (x - a))
    assert np.max(np.abs(spectral_derivative(u, period) - du)) < 1e-12


def test_semilinear_reference_requires_uniform_times():
    ref = semilinear_reference(lambda k: -0.01 * k ** 2, lambda u: 0 * u, np.sin,
                               (0, 2 * np.pi), n_points=32, dt=0.01)
    x = np.linspace(0, 2 * np.pi, 9)
    out = ref(x, np.linspace(0, 1, 5))
    assert np.allclose(out, np.exp(-0.01 * np.linspace(0, 1, 5))[:, None] * np.sin(x),
                       atol=1e-12)
    with pytest.raises(ValueError, match="equally spaced"):
        ref(x, np.array([0.0, 0.1, 0.5]))


@pytest.mark.parametrize("kwargs, match", [
    (dict(domain=(1.0, 1.0)), "domain"),
    (dict(domain=(0, 1), t_final=-1.0), "t_final"),
    (dict(domain=(0, 1), dt=0.0), "dt"),
    (dict(domain=(0, 1), n_points=3), "n_points"),
])
def test_etdrk4_bad_input(kwargs, match):
    args = dict(t_final=1.0, n_points=16, dt=0.1)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        etdrk4_solve(lambda k: -k ** 2, lambda u: 0 * u, np.sin, **args)


def test_etdrk4_bad_initial_shape():
    with pytest.raises(ValueError, match="u0"):
        etdrk4_solve(lambda k: -k ** 2, lambda u: 0 * u, np.zeros(5), domain=(0, 1),
                     t_final=1.0, n_points=16)


# ---------------------------------------------------------------- 2-D (torus)
def test_2d_linear_pde_with_nonlinear_slot_matches_exact_solution():
    # u_t = nu (u_xx + u_yy) + a u - cx u_x - cy u_y on [0, 2pi] x [-1, 1]; the a u - c.grad u
    # part goes through N(u) (spectral derivatives along each axis), so the RK stages act.
    nu, a, cx, cy = 0.05, 0.4, 0.3, -0.2
    ky = np.pi  # y has period 2
    ds = etdrk4_solve(lambda kx, k_y: -nu * (kx ** 2 + k_y ** 2),
                      lambda u: a * u - cx * spectral_derivative(u, 2 * np.pi, axis=0)
                      - cy * spectral_derivative(u, 2.0, axis=1),
                      lambda x, y: np.sin(x) * np.cos(ky * (y + 1))
                      + 0.5 * np.cos(3 * x + 2 * ky * (y + 1)),
                      domain=[(0, 2 * np.pi), (-1, 1)], t_final=1.0, n_points=(16, 12),
                      dt=5e-3, n_snapshots=6, oversample=2)
    assert ds.u.dims == ("t", "x", "y") and ds.u.shape == (6, 16, 12)
    X, Y = np.meshgrid(ds.x.values, ds.y.values, indexing="ij")
    t = ds.t.values[:, None, None]
    xs, ys = X - cx * t, Y + 1 - cy * t
    exact = (np.exp((a - nu * (1 + ky ** 2)) * t) * np.sin(xs) * np.cos(ky * ys)
             + 0.5 * np.exp((a - nu * (9 + 4 * ky ** 2)) * t) * np.cos(3 * xs + 2 * ky * ys))
    assert np.max(np.abs(ds.u.values - exact)) < 1e-10


def test_2d_complex_symbol_exact():
    nu, cx, cy = 0.02, 1.5, -0.7
    ds = etdrk4_solve(lambda kx, ky: -1j * (cx * kx + cy * ky) - nu * (kx ** 2 + ky ** 2),
                      lambda u: 0.0 * u, lambda x, y: np.cos(x + 2 * y), domain=[(0, 2 * np.pi)] * 2,
                      t_final=0.5, n_points=8, dt=0.1, n_snapshots=3)
    X, Y = np.meshgrid(ds.x.values, ds.y.values, indexing="ij")
    t = ds.t.values[:, None, None]
    exact = np.exp(-5 * nu * t) * np.cos(X - cx * t + 2 * (Y - cy * t))
    assert np.max(np.abs(ds.u.values - exact)) < 1e-12


def test_2d_allen_cahn_with_x_only_data_equals_1d_solver():
    kw = dict(t_final=0.5, dt=5e-3, n_snapshots=6)
    one = etdrk4_solve(lambda k: -1e-3 * k ** 2, lambda u: 5 * u - 5 * u ** 3,
                       lambda x: x ** 2 * np.cos(np.pi * x), domain=(-1, 1), n_points=64,
                       oversample=4, **kw)
    two = etdrk4_solve(lambda kx, ky: -1e-3 * (kx ** 2 + ky ** 2), lambda u: 5 * u - 5 * u ** 3,
                       lambda x, y: x ** 2 * np.cos(np.pi * x) + 0 * y, domain=[(-1, 1), (0, 3)],
                       n_points=(64, 8), oversample=4, **kw)
    for j in range(8):  # every y column carries the 1-D solution
        assert np.max(np.abs(two.u.values[:, :, j] - one.u.values)) < 1e-12
    assert np.max(np.abs(one.u.values[-1] - one.u.values[0])) > 0.1  # it did evolve
    # and the same with the data along y (the last, half-spectrum axis)
    two_y = etdrk4_solve(lambda kx, ky: -1e-3 * (kx ** 2 + ky ** 2),
                         lambda u: 5 * u - 5 * u ** 3,
                         lambda x, y: y ** 2 * np.cos(np.pi * y) + 0 * x,
                         domain=[(0, 3), (-1, 1)], n_points=(6, 64), oversample=4, **kw)
    for i in range(6):
        assert np.max(np.abs(two_y.u.values[:, i, :] - one.u.values)) < 1e-12


def test_2d_reference_interpolates_and_matches_solver_grid():
    from sciTie.pinn import allen_cahn_2d

    p = allen_cahn_2d(n_points=32, dt=1e-2)
    x = np.linspace(-1, 1, 32, endpoint=False)
    ref = p.reference(x, x, np.linspace(0, 0.2, 3))
    sol = etdrk4_solve(lambda kx, ky: -0.01 * (kx ** 2 + ky ** 2), lambda u: 5 * u - 5 * u ** 3,
                       lambda x, y: x ** 2 * np.cos(np.pi * x) + y ** 2 * np.cos(np.pi * y),
                       domain=[(-1, 1), (-1, 1)], t_final=0.2, n_points=32, dt=1e-2,
                       n_snapshots=3, oversample=4)
    assert ref.shape == (3, 32, 32)
    assert np.allclose(ref[1:], sol.u.values[1:], atol=1e-12)
    assert np.allclose(ref[0], sol.u.values[0], atol=1e-15)  # exact data at t = 0


def test_fourier_interpolate_along_an_axis():
    n, period = 12, 2.0
    x = -1 + period * np.arange(n) / n
    u = np.stack([np.sin(np.pi * x) * c for c in (1.0, 2.0, 3.0)], axis=1)  # (x, other)
    xs = np.linspace(-3, 3, 7)
    out = fourier_interpolate(u, -1, period, xs, axis=0)
    assert out.shape == (7, 3)
    assert np.allclose(out, np.sin(np.pi * xs)[:, None] * [1.0, 2.0, 3.0], atol=1e-13)


# ---------------------------------------------------------------- several fields
def test_two_coupled_fields_match_the_exact_rotation():
    # u_t = nu lap u + w v, v_t = mu lap v - w u: the coupling goes through N(u, v), the
    # two diffusivities through the per-field symbols. With nu = mu the Fourier mode
    # sin(x + 2y) rotates: u = e^{-5 nu t} cos(wt) s, v = -e^{-5 nu t} sin(wt) s.
    nu, w = 0.03, 4.0
    ds = etdrk4_solve(lambda kx, ky, parameters: (-parameters["nu"] * (kx ** 2 + ky ** 2),
                                                  -parameters["nu"] * (kx ** 2 + ky ** 2)),
                      lambda u, v, parameters: (parameters["w"] * v, -parameters["w"] * u),
                      lambda x, y: {"u": np.sin(x + 2 * y), "v": 0 * x},
                      domain=[(0, 2 * np.pi)] * 2, t_final=1.0, n_points=8, dt=1e-3,
                      n_snapshots=6, fields=("u", "v"), parameters={"nu": nu, "w": w},
                      oversample=2)
    assert set(ds.data_vars) == {"u", "v"}
    X, Y = np.meshgrid(ds.x.values, ds.y.values, indexing="ij")
    t = ds.t.values[:, None, None]
    decay = np.exp(-5 * nu * t) * np.sin(X + 2 * Y)
    assert np.max(np.abs(ds.u.values - decay * np.cos(w * t))) < 1e-9
    assert np.max(np.abs(ds.v.values + decay * np.sin(w * t))) < 1e-9
    # unequal diffusivities, no coupling: each field decays at its own rate
    ds = etdrk4_solve(lambda kx, ky: (-0.1 * (kx ** 2 + ky ** 2), -0.4 * (kx ** 2 + ky ** 2)),
                      lambda u, v: (0 * u, 0 * v), lambda x, y: (np.cos(x), np.cos(y)),
                      domain=[(0, 2 * np.pi)] * 2, t_final=1.0, n_points=8, dt=0.1,
                      n_snapshots=2, fields=("a", "b"), oversample=1)
    assert np.allclose(ds.a.values[1], np.exp(-0.1) * np.cos(X), atol=1e-12)
    assert np.allclose(ds.b.values[1], np.exp(-0.4) * np.cos(Y), atol=1e-12)


def test_several_fields_bad_returns_are_named():
    kw = dict(domain=(0, 2 * np.pi), t_final=0.1, n_points=8, dt=0.05, fields=("u", "v"))
    with pytest.raises(ValidationError, match="linear.*one array per field"):
        etdrk4_solve(lambda k: -k ** 2, lambda u, v: (u, v), lambda x: (np.sin(x), x), **kw)
    with pytest.raises(ValidationError, match="u0 must return a value for every field"):
        etdrk4_solve(lambda k: (-k ** 2, -k ** 2), lambda u, v: (u, v),
                     lambda x: {"u": np.sin(x)}, **kw)
    with pytest.raises(ValidationError, match=r"nonlinear raised ZeroDivisionError"):
        etdrk4_solve(lambda k: (-k ** 2, -k ** 2), lambda u, v: (u / 0.0 if False else 1 / 0, v),
                     lambda x: (np.sin(x), np.cos(x)), **kw)


def test_gray_scott_reference_feed_only_is_exact_and_fourth_order():
    from sciTie.pinn import gray_scott

    # with v = 0 the u equation is linear: u - 1 diffuses and decays at rate b1
    p = gray_scott(n_points=16, dt=1e-3, t_final=0.05)
    start = lambda x, y: {"u": 1 + 0.3 * np.cos(np.pi * x) * np.sin(2 * np.pi * y),  # noqa
                          "v": 0 * x}
    ref = semilinear_reference(*_gs_terms(), start, (-1, 1), (0, 0.05), domain_y=(-1, 1),
                               n_points=16, dt=1e-3, parameters=p.parameters, fields=("u", "v"))
    x = np.linspace(-1, 1, 9)
    t = np.linspace(0, 0.05, 3)
    out = ref(x, x, t)
    X, Y = np.meshgrid(x, x, indexing="ij")
    k2 = np.pi ** 2 * 5
    exact = 1 + 0.3 * np.cos(np.pi * X) * np.sin(2 * np.pi * Y) * np.exp(
        -(p.parameters["b1"] + p.parameters["eps1"] * k2) * t[:, None, None])
    assert np.allclose(out["u"], exact, atol=1e-10) and np.all(out["v"] == 0)
    # the full system (stiff reaction): fourth order in time on a coarse grid
    sols = [etdrk4_solve(*_gs_terms(), p.initial, domain=[(-1, 1)] * 2, t_final=0.05,
                         n_points=16, dt=h, n_snapshots=2, fields=("u", "v"),
                         parameters=p.parameters, oversample=2) for h in (1e-3, 5e-4, 2.5e-4)]
    d = [max(np.abs(a[f].values[-1] - b[f].values[-1]).max() for f in "uv")
         for a, b in zip(sols, sols[1:])]
    assert 12 < d[0] / d[1] < 20


def _gray_scott_finite_differences(p, n: int, t_final: float, dt: float):
    """Gray-Scott by fourth-order central differences and classical RK4 on an n^2 grid."""
    q, h = p.parameters, 2.0 / n
    x = -1 + h * np.arange(n)
    start = p.initial(*np.meshgrid(x, x, indexing="ij"))
    u, v = start["u"], start["v"]

    def lap(f):
        out = -5.0 * f
        for ax in (0, 1):
            out = out + (4 / 3) * (np.roll(f, 1, ax) + np.roll(f, -1, ax)) \
                - (np.roll(f, 2, ax) + np.roll(f, -2, ax)) / 12
        return out / h ** 2

    def rhs(u, v):
        uv2 = u * v * v
        return np.stack([q["eps1"] * lap(u) + q["b1"] * (1 - u) - q["c1"] * uv2,
                         q["eps2"] * lap(v) - q["b2"] * v + q["c2"] * uv2])

    w = np.stack([u, v])
    for _ in range(int(round(t_final / dt))):
        k1 = rhs(*w)
        k2 = rhs(*(w + dt / 2 * k1))
        k3 = rhs(*(w + dt / 2 * k2))
        k4 = rhs(*(w + dt * k3))
        w = w + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return x, w


def test_gray_scott_reference_agrees_with_finite_differences():
    from sciTie.pinn import gray_scott

    # an independent solver (no FFT, no exponential integrator): its difference from the
    # ETDRK4 reference is its own O(h^4) error, shrinking about 4-5 times from 64^2 to 96^2
    p = gray_scott(n_points=64, dt=5e-4, t_final=0.1)
    diffs = []
    for n in (64, 96):
        x, w = _gray_scott_finite_differences(p, n, 0.1, 1e-4)
        ref = p.reference(x, x, np.array([0.0, 0.1]))
        diffs.append(max(np.abs(w[0] - ref["u"][-1]).max(), np.abs(w[1] - ref["v"][-1]).max()))
    assert diffs[1] < 3e-3 and diffs[0] / diffs[1] > 3.5


def _gs_terms():
    from sciTie.pinn._problems import _gray_scott_reaction, _gray_scott_symbols

    return _gray_scott_symbols, _gray_scott_reaction


def test_kuramoto_sivashinsky_reference_linear_case_exact_and_refined():
    from sciTie.pinn import kuramoto_sivashinsky

    # alpha = 0: linear, each mode grows or decays at beta k^2 - gamma k^4
    lin = kuramoto_sivashinsky(alpha=0.0, n_points=32, dt=1e-3)
    b, g = lin.parameters["beta"], lin.parameters["gamma"]
    x, t = np.linspace(0, 2 * np.pi, 17), np.linspace(0, 0.1, 6)
    exact = (np.exp((b - g) * t)[:, None] * np.cos(x)[None]
             + 0.5 * np.exp((4 * b - 16 * g) * t)[:, None] * np.sin(2 * x)[None])
    assert np.allclose(lin.reference_values(x, t)["u"], exact, atol=1e-12)
    # JAXPI's chaotic case: the mean is conserved; steps of 1e-4 agree with the default
    # 2.5e-5 to 5e-9 up to t = 0.1 (the error is fourth order; 128 points instead of 256 would
    # be off by 6e-5)
    ks = kuramoto_sivashinsky(n_points=256, dt=1e-4)
    fine = kuramoto_sivashinsky()
    xs = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    a, c = ks.reference_values(xs, t)["u"], fine.reference_values(xs, t)["u"]
    assert np.max(np.abs(a - c)) < 5e-9
    assert np.abs(c.mean(axis=1)).max() < 1e-12
    assert np.abs(c[-1]).max() > 2.0  # the front steepens: max |u| grows from 1.3 to 2.4
