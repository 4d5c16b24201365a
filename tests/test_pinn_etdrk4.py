"""ETDRK4 spectral solver: exact linear solutions, 4th order, refinement for Allen-Cahn."""
import numpy as np
import pytest

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
