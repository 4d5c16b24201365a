"""The built-in (hard) initial condition: ``output = g(x) + phi(t - t0) N(x, t)``.

Checked against independent computations: a trigonometric polynomial the interpolant must
reproduce everywhere, the FFT interpolant of :func:`fourier_interpolate`, central finite
differences of the wrapped network for the PDE residual, and the previous window's network
for the hand-over."""
import math

import numpy as np
import pytest
import torch

from sciTie.errors import ValidationError
from sciTie.pinn import PDEProblem, PeriodicPINN, PINNNetwork, convection, gray_scott
from sciTie.pinn._etdrk4 import fourier_interpolate
from sciTie.pinn._losses import LossWeights, PINNLoss
from sciTie.pinn._window import Bound
from pinn_settings import plain

torch.set_num_threads(1)


def _gs_net(seed, timescale, harmonics=6):
    """A Gray-Scott network with random weights and a built-in initial condition."""
    return PINNNetwork((-1.0, 1.0), (0.3, 0.5), domain_y=(-1.0, 1.0), n_modes=3,
                       hidden=(16, 16), n_outputs=2, generator=torch.Generator().manual_seed(seed),
                       initial_harmonics=harmonics, initial_timescale=timescale)


def _trig(x, y):
    """A trigonometric polynomial of degree 3 on [-1, 1]^2 (period 2)."""
    return (0.7 + 0.3 * np.cos(np.pi * x) * np.sin(2 * np.pi * y)
            - 0.2 * np.sin(3 * np.pi * (x + 0.1)) + 0.1 * np.cos(np.pi * (x - 2 * y)))


def _gauss(x, y):
    return np.exp(-10.0 * ((x - 0.05) ** 2 + (y - 0.02) ** 2))


def _set(net, fns):
    nodes = net.initial.nodes()
    net.initial.set_values({i: f(nodes[:, 0], nodes[:, 1]) for i, f in enumerate(fns)})
    return nodes


def _at(net, x, y, t):
    z = torch.as_tensor(np.column_stack([x, y, np.broadcast_to(t, np.shape(x))]))
    with torch.no_grad():
        return net.forward_points(z).numpy()


@pytest.mark.parametrize("seed, timescale", [(0, None), (1, 0.01)])
def test_output_at_window_start_is_the_initial_values(seed, timescale):
    net = _gs_net(seed, timescale)
    nodes = _set(net, (_trig, _gauss))
    at_nodes = _at(net, nodes[:, 0], nodes[:, 1], 0.3)
    assert np.abs(at_nodes[:, 0] - _trig(nodes[:, 0], nodes[:, 1])).max() < 1e-13
    assert np.abs(at_nodes[:, 1] - _gauss(nodes[:, 0], nodes[:, 1])).max() < 1e-13
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(-1, 1, 40), rng.uniform(-1, 1, 40)
    out = _at(net, x, y, 0.3)
    # degree 3 <= 6 harmonics: the interpolant is the polynomial itself, everywhere
    assert np.abs(out[:, 0] - _trig(x, y)).max() < 1e-13
    # anything else: the FFT interpolant of the same grid samples (computed independently)
    m = net.initial.n_points
    grid = -1.0 + 2.0 * np.arange(m) / m
    samples = _gauss(*np.meshgrid(grid, grid, indexing="ij"))
    fft = np.array([fourier_interpolate(fourier_interpolate(samples, -1.0, 2.0, [a], axis=0),
                                        -1.0, 2.0, [b], axis=1)[0, 0] for a, b in zip(x, y)])
    assert np.abs(out[:, 1] - fft).max() < 1e-13
    # later in the window the network is switched on (the test is not vacuous)
    assert np.abs(_at(net, x, y, 0.4) - out).max() > 1e-3


def test_phi_is_the_documented_switch():
    for timescale in (None, 0.05):
        net = _gs_net(0, timescale)
        t = torch.tensor([0.3, 0.35, 0.5], dtype=torch.float64)
        expected = ((t - 0.3) / 0.2 if timescale is None
                    else 1.0 - torch.exp(-(t - 0.3) / timescale))
        assert torch.allclose(net.initial.phi(t), expected, rtol=0, atol=1e-15)


def test_output_exactly_periodic_with_its_slopes():
    net = _gs_net(2, 0.01)
    _set(net, (_gauss, _trig))
    rng = np.random.default_rng(2)
    y, t = rng.uniform(-1, 1, 7), rng.uniform(0.3, 0.5, 7)
    for shift in ((2.0, 0.0), (0.0, 2.0)):
        lo = np.column_stack([np.where(shift[0], -1.0, y), np.where(shift[1], -1.0, y), t])
        hi = lo + np.array([*shift, 0.0])
        z = [torch.as_tensor(a).requires_grad_(True) for a in (lo, hi)]
        vals = [net.forward_points(zi) for zi in z]
        slopes = [torch.autograd.grad(v.sum(), zi)[0] for v, zi in zip(vals, z)]
        assert torch.abs(vals[0] - vals[1]).max() < 1e-12
        assert torch.abs(slopes[0] - slopes[1]).max() < 1e-10


def test_residual_through_autograd_matches_finite_differences():
    """Gray-Scott's residual of the wrapped network: autograd (the Adam path), torch.func
    (the Gauss-Newton path) and central differences of the network's values agree."""
    problem = gray_scott(t_final=0.5)
    net = _gs_net(3, 0.01)
    _set(net, (lambda x, y: 1 - _gauss(x + 0.1, y + 0.04), _gauss))
    loss = PINNLoss(problem, "hard", LossWeights())
    bound = Bound(net.forward_points, {}, problem.parameters)
    rng = np.random.default_rng(3)
    pts = np.column_stack([rng.uniform(-1, 1, 6), rng.uniform(-1, 1, 6),
                           rng.uniform(0.31, 0.49, 6)])
    z = torch.as_tensor(pts)
    auto = loss.pde_rows(loss.batch_fields(bound, z), 6).detach().numpy()
    one = Bound(lambda zi: net.forward_points(zi[None, :])[0], {}, problem.parameters)
    point = torch.stack([loss.pde_rows(loss.point_fields(one, zi), None) for zi in z]
                        ).detach().numpy()

    def f(dx=0.0, dy=0.0, dt=0.0):
        return _at(net, pts[:, 0] + dx, pts[:, 1] + dy, pts[:, 2] + dt)

    h, ht = 1e-3, 1e-5
    val = f()
    ft = (f(dt=ht) - f(dt=-ht)) / (2 * ht)
    lap = sum((-f(**{d: 2 * h}) + 16 * f(**{d: h}) - 30 * val + 16 * f(**{d: -h})
               - f(**{d: -2 * h})) / (12 * h * h) for d in ("dx", "dy"))
    p = problem.parameters
    u, v = val[:, 0], val[:, 1]
    fd = np.column_stack([
        ft[:, 0] - p["eps1"] * lap[:, 0] - p["b1"] * (1 - u) + p["c1"] * u * v * v,
        ft[:, 1] - p["eps2"] * lap[:, 1] + p["b2"] * v - p["c2"] * u * v * v])
    scale = np.abs(fd).max()
    assert scale > 1.0  # a residual of the size the rates give, not a vanishing one
    assert np.abs(auto - fd).max() < 1e-5 * scale
    assert np.abs(point - auto).max() < 1e-10 * scale


def test_windows_hand_over_the_previous_network_and_drop_the_loss_term():
    p = convection(beta=5.0)
    m = PeriodicPINN(p, **plain(n_windows=2, hidden=(8, 8), adam_steps=3, lm_steps=1,
                                n_collocation=64, n_initial=16), initial_condition="hard",
                     ic_timescale=0.1, n_threads=1, progress=False, random_state=0)
    with pytest.warns(Warning):  # three steps are far from the solution
        m.fit()
    assert not any("loss_ic" in h for h in m.history_)
    first, second = m.networks_
    x0 = first.initial.nodes()[:, 0]
    with torch.no_grad():
        start = first.forward_points(torch.as_tensor(np.column_stack([x0, 0 * x0])))
        t1 = torch.full((len(x0), 1), 0.5, dtype=torch.float64)
        x = torch.as_tensor(x0[:, None])
        before = first.forward_points(torch.cat([x, t1], 1))
        after = second.forward_points(torch.cat([x, t1], 1))
    assert torch.abs(start[:, 0] - torch.as_tensor(np.sin(x0))).max() < 1e-12  # 513 terms
    assert torch.abs(before - after).max() < 1e-12
    assert m.predict(np.array([0.3]), np.array([0.0])) == pytest.approx(math.sin(0.3),
                                                                        abs=1e-12)


def test_bad_settings_named():
    p = convection()
    for kw, what in [(dict(initial_condition="exact"), "initial_condition"),
                     (dict(initial_condition="hard", ic_timescale=-1.0), "ic_timescale"),
                     (dict(ic_timescale=0.1), "applies only to initial_condition='hard'"),
                     (dict(initial_condition="hard", trainable_frequency=True, n_windows=1),
                      "fixed periods")]:
        with pytest.raises(ValidationError, match=what):
            PeriodicPINN(p, progress=False, **kw).fit()

    def residual(f):
        return f.u_t - 0.1 * (f.u_xx + f.u_yy)

    channel = PDEProblem(residual, lambda x, y: np.sin(x) * np.sin(y), (0, 2 * math.pi),
                         (0, 1), domain_y=(0, math.pi), periodic=("x",),
                         boundary=lambda f: f.u)
    with pytest.raises(ValidationError, match=r"initial_condition='hard'.*\['y'\]"):
        PeriodicPINN(channel, initial_condition="hard", progress=False).fit()


def test_recipe_takes_the_option_and_names_a_bad_value(capsys):
    from sciTie.cli import main

    rc = main(["fit", "gray-scott", "--set", 'model.initial_condition="exact"'])
    err = capsys.readouterr().err
    assert rc == 2 and "initial_condition" in err and "hard" in err  # a known key, checked

