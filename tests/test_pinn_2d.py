"""Two space dimensions: the torus embedding, mixed periodic/bounded problems, Taylor-Green,
2-D Allen-Cahn, and the Gauss-Newton machinery (per-point rows and their Jacobian)."""
import math

import numpy as np
import pytest
import torch

from sciTie.errors import ValidationError
from sciTie.pinn import (Fields, PDEProblem, PeriodicEmbedding, PeriodicPINN, PINNNetwork,
                         allen_cahn_2d, convection, taylor_green)
from sciTie.pinn._functional import WindowParameters
from sciTie.pinn._losses import LossWeights, PINNLoss
from sciTie.pinn._sampling import sample_batch
from pinn_settings import plain

torch.set_num_threads(1)


def _derivs(net, pts, names=("x", "y", "t")):
    """u and its first and second space derivatives at points (n, 3) through Fields."""
    cols = {c: torch.as_tensor(pts[:, i:i + 1]).clone().requires_grad_(True)
            for i, c in enumerate(names)}
    f = Fields(net(*cols.values()), cols, outputs=tuple("uvw"[:net.n_outputs]))
    keys = ["u", "u_x", "u_y", "u_xx", "u_xy", "u_yy", "u_xxx"]
    return np.stack([f[k].detach().numpy() for k in keys])


@pytest.mark.parametrize("seed", [0, 1])
def test_torus_embedding_exactly_periodic_in_each_coordinate(seed):
    gen = torch.Generator().manual_seed(seed)
    (ax, bx), (ay, by) = (-0.5, 2.5), (1.0, 1.7)
    net = PINNNetwork((ax, bx), (0.0, 1.0), domain_y=(ay, by), n_modes=3, hidden=(12, 12),
                      architecture="modified" if seed else "mlp", n_outputs=2, generator=gen)
    rng = np.random.default_rng(seed)
    n = 9
    base = np.column_stack([rng.uniform(ax, bx, n), rng.uniform(ay, by, n),
                            rng.uniform(0, 1, n)])
    d0 = _derivs(net, base)
    assert np.all(np.abs(d0).max(axis=1) > 1e-4)  # not trivially zero
    for shift in ([bx - ax, 0, 0], [0, by - ay, 0], [2 * (bx - ax), -(by - ay), 0]):
        d1 = _derivs(net, base + np.array(shift))
        assert np.max(np.abs(d1 - d0)) < 1e-11 * max(1.0, np.abs(d0).max())
    # not periodic with a wrong period (the check can fail)
    d_bad = _derivs(net, base + np.array([0.5 * (bx - ax), 0, 0]))
    assert np.max(np.abs(d_bad[0] - d0[0])) > 1e-3


def test_mixed_embedding_periodic_in_x_only():
    gen = torch.Generator().manual_seed(3)
    net = PINNNetwork((0, 2 * math.pi), (0, 1), domain_y=(0, 1), periodic=("x",), n_modes=2,
                      hidden=(10,), generator=gen)
    assert net.x_features.periods == [pytest.approx(2 * math.pi), None]
    pts = np.array([[0.3, 0.2, 0.5], [1.0, 0.9, 0.1]])
    d0 = _derivs(net, pts)
    assert np.max(np.abs(_derivs(net, pts + [2 * math.pi, 0, 0]) - d0)) < 1e-12
    assert np.max(np.abs(_derivs(net, pts + [0, 1.0, 0])[0] - d0[0])) > 1e-3
    with pytest.raises(ValidationError, match="periodic names unknown"):
        PINNNetwork((0, 1), (0, 1), periodic=("y",))
    with pytest.raises(ValidationError, match="bounds"):
        PeriodicEmbedding((1.0, None))


def test_trainable_frequency_is_one_free_value_tied_to_every_harmonic():
    # the K harmonic frequencies are the slots G w with G = [1..K]^T: the gradient of any loss
    # with respect to the free w equals G^T times the gradient with respect to the slots
    emb = PeriodicEmbedding((2.0, 3.0), n_modes=(4, 2), x0=(-1.0, 0.0),
                            trainable_frequency=(True, False))
    assert [n for n, _ in emb.named_parameters()] == ["axes.0.frequency"]
    x = torch.tensor([[0.3, 0.1], [-0.6, 2.0], [0.9, 1.1]], dtype=torch.float64)
    weights = torch.linspace(-1, 1, emb.out_features, dtype=torch.float64)
    loss = (torch.tanh(emb(x)) * weights).sum()
    (g_free,) = torch.autograd.grad(loss, emb.axes[0].frequency)
    w = float(emb.axes[0].frequency.detach())
    slots = (torch.arange(1, 5, dtype=torch.float64) * w).requires_grad_(True)
    arg = (x[:, :1] + 1.0) * slots
    f0 = torch.cat([torch.cos(arg), torch.sin(arg)], dim=1)
    arg1 = x[:, 1:] * (2 * math.pi / 3.0) * torch.arange(1, 3, dtype=torch.float64)
    feats = torch.cat([f0, torch.cos(arg1), torch.sin(arg1)], dim=1)
    (g_slots,) = torch.autograd.grad((torch.tanh(feats) * weights).sum(), slots)
    G = torch.arange(1, 5, dtype=torch.float64)
    assert torch.allclose(g_free, G @ g_slots, atol=1e-13)


def test_fields_2d_closed_form():
    rng = np.random.default_rng(0)
    cols = {c: torch.tensor(rng.uniform(-1, 1, (15, 1)), requires_grad=True) for c in "xyt"}
    x, y, t = cols["x"], cols["y"], cols["t"]
    u = torch.sin(2 * x) * torch.cos(y) * torch.exp(t)
    v = x ** 2 * y ** 3 + t * y
    f = Fields(torch.cat([u, v], 1), cols, outputs=("u", "v"))
    xs, ys, ts = (cols[c].detach()[:, 0] for c in "xyt")
    assert torch.allclose(f.u_xy, -2 * torch.cos(2 * xs) * torch.sin(ys) * torch.exp(ts))
    assert torch.allclose(f.v_yy, 6 * xs ** 2 * ys)
    assert torch.allclose(f.v_t, ys) and torch.allclose(f.u_t, f.u)
    assert torch.allclose(f.y, ys)
    with pytest.raises(KeyError, match="unknown field"):
        f["w_x"]
    with pytest.raises(KeyError, match="unknown field"):
        f["u_z"]


class _ExactTG(torch.nn.Module):
    """The exact Taylor-Green solution as a 'network' (to test the residual formula)."""

    def __init__(self, nu):
        super().__init__()
        self.nu = nu

    def forward(self, x, y, t):
        F = torch.exp(-2 * self.nu * t)
        return torch.cat([-torch.cos(x) * torch.sin(y) * F, torch.sin(x) * torch.cos(y) * F,
                          -0.25 * (torch.cos(2 * x) + torch.cos(2 * y)) * F ** 2], dim=1)


def test_taylor_green_exact_solution_has_zero_residual():
    p = taylor_green(nu=0.3)
    rng = np.random.default_rng(1)
    cols = {c: torch.tensor(rng.uniform(0, 6, (40, 1)), requires_grad=True) for c in "xyt"}
    f = Fields(_ExactTG(0.3)(*cols.values()), cols, outputs=p.outputs, parameters=p.parameters)
    for r in p.residual(f):
        assert float(r.detach().abs().max()) < 1e-13
    # a wrong viscosity leaves a residual (the check can fail)
    f2 = Fields(_ExactTG(0.2)(*cols.values()), cols, outputs=p.outputs, parameters=p.parameters)
    assert float(p.residual(f2)[0].detach().abs().max()) > 1e-2
    # and the reference is that solution
    x = np.linspace(0, 2 * np.pi, 5)
    ref = p.reference(x, x, np.array([0.0, 1.0]))
    X, Y = np.meshgrid(x, x, indexing="ij")
    assert np.allclose(ref["v"][1], np.sin(X) * np.cos(Y) * np.exp(-0.6), atol=1e-15)


def _small_tg(**kw):
    args = plain(hidden=(16, 16), n_collocation=256, n_initial=64, n_boundary=32, adam_steps=60,
                 learning_rate=5e-3, eval_grid=(12, 12, 4), budget=1.0)
    args.update(kw)
    return PeriodicPINN(taylor_green(), **args)


@pytest.mark.slow
def test_taylor_green_short_training_metrics_against_exact_solution():
    untrained = _small_tg(adam_steps=0).fit()
    m = _small_tg(lm_steps=8).fit()
    ds = m.result_.data
    assert ds["u_pred"].dims == ("t", "x", "y")
    x, y, t = ds.x.values, ds.y.values, ds.t.values
    X, Y = np.meshgrid(x, y, indexing="ij")
    F = np.exp(-0.2 * t)[:, None, None]
    u, v = -np.cos(X) * np.sin(Y) * F, np.sin(X) * np.cos(Y) * F
    err = np.sqrt(np.sum((ds.u_pred.values - u) ** 2) + np.sum((ds.v_pred.values - v) ** 2))
    rel = err / np.sqrt(np.sum(u ** 2) + np.sum(v ** 2))
    assert ds.attrs["rel_l2"] == pytest.approx(rel, rel=1e-10)
    assert rel < 0.5 * untrained.result_.data.attrs["rel_l2"]
    # pressure error with the mean removed (gauge freedom)
    p = -0.25 * (np.cos(2 * X) + np.cos(2 * Y)) * F ** 2
    e = ds.p_pred.values - p
    e -= e.mean(axis=(1, 2), keepdims=True)
    p -= p.mean(axis=(1, 2), keepdims=True)
    assert ds.attrs["rel_l2_p"] == pytest.approx(np.linalg.norm(e) / np.linalg.norm(p), rel=1e-9)
    assert ds.attrs["periodicity_violation"] < 1e-12
    assert m.predict(1.0, 2.0, 0.5).shape == (3,)


def test_soft_mode_2d_penalises_both_faces():
    m = _small_tg(mode="soft", bc_weight=10.0, adam_steps=80).fit()
    pv, pvs = m.periodicity_violation(np.linspace(0, 1, 3))
    assert 0 < pv < 1.0 and pvs > 0  # not exact, but trained towards periodicity


def _channel():
    """u_t = nu (u_xx + u_yy), periodic in x, u = 0 at y = 0 and y = pi (exact solution)."""
    nu = 0.1

    def residual(f):
        return f.u_t - nu * (f.u_xx + f.u_yy)

    def boundary(f):
        return f.u  # Dirichlet zero on both faces of y

    def initial(x, y):
        return np.sin(x) * np.sin(y) + 0.5 * np.cos(2 * x) * np.sin(2 * y)

    def reference(x, y, t):
        X, Y = np.meshgrid(x, y, indexing="ij")
        tt = np.asarray(t)[:, None, None]
        return (np.exp(-2 * nu * tt) * np.sin(X) * np.sin(Y)
                + 0.5 * np.exp(-8 * nu * tt) * np.cos(2 * X) * np.sin(2 * Y))

    return PDEProblem(residual, initial, (0, 2 * math.pi), (0, 1), reference, name="channel",
                      domain_y=(0, math.pi), periodic=("x",), boundary=boundary)


@pytest.mark.slow
def test_mixed_problem_periodic_in_x_bounded_in_y():
    with pytest.raises(ValidationError, match="boundary"):
        PDEProblem(lambda f: f.u_t, lambda x, y: x, (0, 1), domain_y=(0, 1), periodic=("x",))
    p = _channel()
    kw = plain(hidden=(16, 16), n_modes=2, n_collocation=256, n_initial=64, n_boundary=64,
               learning_rate=5e-3, eval_grid=(12, 9, 4), bc_weight=10.0, ic_weight=10.0)
    kw.pop("adam_steps"), kw.pop("lm_steps")
    untrained = PeriodicPINN(p, adam_steps=0, lm_steps=0, **kw).fit()
    m = PeriodicPINN(p, adam_steps=150, lm_steps=10, **kw).fit()
    ds = m.result_.data
    assert ds.attrs["rel_l2"] < 0.5 * untrained.result_.data.attrs["rel_l2"]
    assert ds.attrs["periodicity_violation"] < 1e-12  # exact in x
    walls = m.predict(np.linspace(0, 6, 7)[:, None], np.array([0.0, math.pi]), 0.5)
    scale = np.abs(m.predict(1.0, math.pi / 2, 0.5))
    assert np.max(np.abs(walls)) < 0.2 * scale  # the wall condition is learnt


@pytest.mark.slow
def test_2d_allen_cahn_trains():
    p = allen_cahn_2d(n_points=32, dt=1e-2)
    m = PeriodicPINN(p, **plain(hidden=(16, 16), n_modes=2, n_collocation=256, n_initial=128,
                                adam_steps=100, lm_steps=5, learning_rate=5e-3,
                                ic_weight=100.0, eval_grid=(16, 16, 3))).fit()
    ds = m.result_.data
    ref = p.reference(ds.x.values, ds.y.values, ds.t.values)
    rel = np.linalg.norm(ds.u_pred.values - ref) / np.linalg.norm(ref)
    assert ds.attrs["rel_l2"] == pytest.approx(rel, rel=1e-10) and rel < 0.6


@pytest.mark.parametrize("problem, mode", [("tg", "hard"), ("tg", "shared"),
                                           ("conv", "soft")])
def test_per_point_rows_and_jacobian_match_autograd_and_finite_differences(problem, mode):
    # the window's trainable numbers: network weights, then the free vector of its parameter
    # group (a learnt coefficient, learnt periods whose harmonic frequencies are constrained
    # to 2 pi / period, shared boundary networks); the Jacobian of the group part is J_slots G
    from sciTie.core.torch import TiedParameters
    from sciTie.pinn import BoundaryNetwork
    from sciTie.pinn._tying import window_group
    from sciTie.pinn._window import bind

    p = taylor_green() if problem == "tg" else convection(2.0)
    gen = torch.Generator().manual_seed(0)
    net = PINNNetwork(p.domain_x, p.domain_t, domain_y=p.domain_y, mode=mode, hidden=(6,),
                      n_modes=2, n_outputs=len(p.outputs), generator=gen)
    templates = {}
    if mode == "shared":
        for c in p.periodic:
            doms = [p.domain(o) for o in p.space if o != c] + [p.domain_t]
            templates[c] = BoundaryNetwork(doms, (5,), "tanh", gen, n_fields=len(p.outputs))
    coef = next(iter(p.parameters))
    group = window_group(p, mode=mode, n_modes=2, learn={coef: 0.7 * p.parameters[coef]},
                         periods={c: 1.1 * v for c, v in p.periods.items()},
                         trainable_periods=mode == "hard", boundary=templates)
    tied = TiedParameters(group, check_finite=False)
    loss = PINNLoss(p, mode, LossWeights(ic=3.0, bc=2.0))
    batch = sample_batch(p, p.domain_t, gen, n_collocation=10, n_initial=6, n_boundary=4,
                         causal_chunks=None, compare_faces=mode != "hard")
    space = [batch.initial[:, i].numpy() for i in range(len(p.space))]
    batch.initial_target = {k: torch.as_tensor(v) for k, v in p.initial_values(*space).items()}
    wp = WindowParameters(net, tied, group, templates, p)
    assert wp.n_free == group.n_free and wp.size == wp.n_net + group.n_free
    x = wp.flat()
    rows, jac = wp.rows(loss, x, batch, None, None, jacobian=True)
    terms = loss.terms(bind(net, tied, templates, p), batch)
    assert float(rows @ rows) == pytest.approx(float(terms["total"].detach()), rel=1e-11)
    rng = np.random.default_rng(0)
    h = 1e-6
    cols = list(rng.choice(wp.n_net, 4, replace=False)) + list(range(wp.n_net, wp.size))[:6]
    for j in cols:
        e = torch.zeros_like(x)
        e[j] = h
        up, _ = wp.rows(loss, x + e, batch, None, None, jacobian=False)
        dn, _ = wp.rows(loss, x - e, batch, None, None, jacobian=False)
        fd = (up - dn) / (2 * h)
        assert torch.allclose(jac[:, j], fd, atol=1e-7 * max(1.0, float(fd.abs().max()))), j
    if mode == "hard":  # the learnt period moves the loss (its column is not empty)
        k = wp.free_offset("log_period_x")  # a period is learnt through its logarithm
        assert float(jac[:, k].abs().max()) > 1e-3


def test_levenberg_marquardt_lowers_loss_far_below_adam():
    p = convection(2.0)
    kw = plain(hidden=(12, 12), n_collocation=256, n_initial=64, learning_rate=5e-3,
               eval_grid=(32, 11), ic_weight=10.0)
    kw.pop("adam_steps"), kw.pop("lm_steps")
    adam = PeriodicPINN(p, adam_steps=100, lm_steps=0, **kw).fit()
    lm = PeriodicPINN(p, adam_steps=100, lm_steps=15, **kw).fit()
    assert [h["stage"] for h in lm.history_[-15:]] == [2] * 15 or lm.history_[-1]["stage"] == 2
    assert lm.history_[-1]["loss_total"] < 1e-2 * adam.history_[-1]["loss_total"]
    assert lm.result_.data.attrs["rel_l2"] < 0.2 * adam.result_.data.attrs["rel_l2"]


@pytest.mark.parametrize("initial", [{}, dict(initial_condition="hard", ic_timescale=0.1)])
def test_resume_inside_levenberg_marquardt_is_bit_identical(tmp_path, initial):
    p = convection(2.0)
    kw = plain(hidden=(8,), n_collocation=64, n_initial=32, adam_steps=10, lm_steps=6,
               checkpoint_every=2, eval_grid=(16, 5), n_windows=2, **initial)
    full = PeriodicPINN(p, **kw).fit()
    ck = tmp_path / "run.pt"
    calls = {"n": 0, "armed": True}

    def residual(f):
        r = p.residual(f)
        # batched calls only (per-point calls under vmap see 0-d values)
        if calls["armed"] and f.t.ndim == 1 and float(f.t.detach().min()) >= 0.5:  # window 1
            calls["n"] += 1
            if calls["n"] > 13:  # 10 Adam steps, then the third LM iteration
                return r * float("nan")
        return r

    bad = PDEProblem(residual, p.initial, p.domain_x, p.domain_t, p.reference, name=p.name,
                     parameters=p.parameters)
    from sciTie.errors import TrainingDivergedError
    from sciTie.pinn._checkpoint import read_checkpoint
    with pytest.raises(TrainingDivergedError):
        PeriodicPINN(bad, checkpoint=ck, **kw).fit()
    state = read_checkpoint(ck)
    assert state["window"] == 1 and state["stage"] == "lm" and state["step"] > 0
    calls["armed"] = False  # the same residual again (the checkpoint holds its fingerprint)
    resumed = PeriodicPINN(bad, checkpoint=ck, **kw).fit(resume=True)
    for a, b in zip(full.networks_, resumed.networks_):  # weights and buffers (hard: g)
        for (na, pa), (nb, pb) in zip(a.state_dict().items(), b.state_dict().items()):
            assert na == nb and torch.equal(pa, pb)
