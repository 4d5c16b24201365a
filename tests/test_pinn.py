"""Periodic PINN: exact periodicity, autograd derivatives, training, checkpoints, bad input."""
import math

import numpy as np
import pytest
import torch

from sciTie.errors import CheckpointError, NotFittedError
from sciTie.pinn import (Fields, PDEProblem, PeriodicEmbedding, PeriodicPINN, PINNNetwork,
                         TrainingDivergedError, allen_cahn, convection)
from sciTie.pinn._checkpoint import read_checkpoint
from pinn_settings import plain

torch.set_num_threads(1)


def _ends(net, a, b, ts):
    t = torch.as_tensor(ts, dtype=torch.float64).reshape(-1, 1)
    out = []
    for xe in (a, b):
        x = torch.full_like(t, xe).requires_grad_(True)
        f = Fields(net(x, t), {"x": x, "t": t})
        out.append(torch.stack([f.u, f.u_x, f.u_xx]).detach().numpy())
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("time_features", [None, "fourier", "periodic"])
def test_hard_mode_exactly_periodic_for_random_networks(seed, time_features):
    gen = torch.Generator().manual_seed(seed)
    a, b = -0.7, 2.3
    net = PINNNetwork((a, b), (0.0, 1.0), mode="hard", n_modes=4, hidden=(16, 16, 16),
                      time_features=time_features, architecture="modified" if seed else "mlp",
                      generator=gen)
    ts = np.linspace(0, 1, 7)
    left, right = _ends(net, a, b, ts)
    scale = np.abs(left).max(axis=1)
    assert np.all(scale > 1e-3)  # not trivially zero
    assert np.max(np.abs(left - right)) < 1e-12
    # and the soft network is not periodic by construction (the check can fail)
    soft = PINNNetwork((a, b), (0.0, 1.0), mode="soft", hidden=(16, 16), generator=gen)
    ls, rs = _ends(soft, a, b, ts)
    assert np.max(np.abs(ls[0] - rs[0])) > 1e-3


def test_embedding_features_and_trainable_frequency():
    emb = PeriodicEmbedding(2.0, 3, x0=-1.0)
    x = torch.tensor([[-1.0], [0.0], [1.0]], dtype=torch.float64)
    f = emb(x).numpy()
    expected = np.concatenate([np.cos(np.pi * np.outer(x.numpy()[:, 0] + 1, [1, 2, 3])),
                               np.sin(np.pi * np.outer(x.numpy()[:, 0] + 1, [1, 2, 3]))], axis=1)
    assert np.allclose(f, expected, atol=1e-15)
    emb2 = PeriodicEmbedding(2.0, 2, trainable_frequency=True)
    assert [n for n, _ in emb2.named_parameters()] == ["axes.0.frequency"]


def _analytic(x, t):
    return torch.sin(2 * x - t) * torch.exp(0.3 * t) + x ** 3 * t ** 2


def test_fields_match_closed_form_derivatives():
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.uniform(-1, 1, (20, 1)), requires_grad=True)
    t = torch.tensor(rng.uniform(0, 1, (20, 1)), requires_grad=True)
    f = Fields(_analytic(x, t), {"x": x, "t": t})
    xs, ts = x.detach()[:, 0], t.detach()[:, 0]
    s, c, e = torch.sin(2 * xs - ts), torch.cos(2 * xs - ts), torch.exp(0.3 * ts)
    checks = {
        "u_x": 2 * c * e + 3 * xs ** 2 * ts ** 2,
        "u_xx": -4 * s * e + 6 * xs * ts ** 2,
        "u_t": -c * e + 0.3 * s * e + 2 * xs ** 3 * ts,
        "u_xt": 2 * s * e + 0.6 * c * e + 6 * xs ** 2 * ts,
    }
    for name, want in checks.items():
        assert torch.allclose(f[name], want, atol=1e-12), name
    with pytest.raises(KeyError, match="unknown field"):
        f["u_y"]


@pytest.mark.parametrize("problem", [convection(7.0), allen_cahn()], ids=["conv", "ac"])
def test_autograd_residual_equals_finite_differences(problem):
    gen = torch.Generator().manual_seed(3)
    net = PINNNetwork(problem.domain_x, problem.domain_t, mode="hard", n_modes=3,
                      hidden=(12, 12), generator=gen)
    rng = np.random.default_rng(1)
    a, b = problem.domain_x
    xs, ts = rng.uniform(a, b, 15), rng.uniform(0.1, 0.9, 15)
    x = torch.tensor(xs[:, None], requires_grad=True)
    t = torch.tensor(ts[:, None], requires_grad=True)
    r_auto = problem.residual(Fields(net(x, t), {"x": x, "t": t},
                                     parameters=problem.parameters)).detach().numpy()

    def u(xx, tt):
        with torch.no_grad():
            return net(torch.tensor(xx[:, None]), torch.tensor(tt[:, None])).numpy()[:, 0]

    h = 1e-4
    u0 = u(xs, ts)
    u_t = (u(xs, ts + h) - u(xs, ts - h)) / (2 * h)
    u_x = (u(xs + h, ts) - u(xs - h, ts)) / (2 * h)
    hx = 1e-3
    u_xx = (u(xs + hx, ts) - 2 * u0 + u(xs - hx, ts)) / hx ** 2
    if problem.name == "convection":
        r_fd = u_t + 7.0 * u_x
    else:
        r_fd = u_t - 1e-4 * u_xx + 5 * u0 ** 3 - 5 * u0
    assert np.max(np.abs(r_auto - r_fd)) < 1e-6 * max(1.0, np.max(np.abs(r_fd)))


def _small(problem, **kw):
    args = plain(mode="hard", hidden=(16, 16), n_collocation=256, n_initial=64, n_boundary=32,
                 adam_steps=150, learning_rate=5e-3, resample_every=25, random_state=0,
                 eval_grid=(64, 21), budget=1.0)
    args.update(kw)
    return PeriodicPINN(problem, **args)


@pytest.mark.parametrize("mode", ["hard", "soft", "shared"])
def test_short_training_lowers_loss_and_error(mode):
    problem = convection(1.0)
    untrained = _small(problem, mode=mode, adam_steps=0).fit()
    model = _small(problem, mode=mode, lbfgs_steps=30).fit()
    assert model is not untrained
    first = np.mean([h["loss_total"] for h in model.history_[:10]])
    last = model.history_[-1]["loss_total"]
    assert last < 0.05 * first
    assert model.result_.data.attrs["rel_l2"] < 0.3 * untrained.result_.data.attrs["rel_l2"]
    ds = model.result_.data
    assert set(ds["u_pred"].dims) == {"t", "x"}
    # the reference field is the analytic solution sin(x - beta t), beta = 1, and the reported
    # error is recomputed from the prediction against that solution, not from the stored error
    exact = np.sin(ds["x"].values[None, :] - ds["t"].values[:, None])
    u_pred = ds["u_pred"].transpose("t", "x").values
    assert np.allclose(ds["u_ref"].transpose("t", "x").values, exact, atol=1e-12)
    assert np.isclose(ds.attrs["rel_l2"], np.linalg.norm(u_pred - exact) / np.linalg.norm(exact))
    pv = ds.attrs["periodicity_violation"]
    if mode == "hard":
        assert pv < 1e-12 and ds.attrs["periodicity_violation_slope"] < 1e-12
    else:
        assert 1e-12 < pv < 0.5


def test_time_marching_and_causal_weights_run_and_predict_piecewise():
    model = _small(convection(2.0), n_windows=2, causal_eps=1.0, n_causal_chunks=8,
                   time_features="fourier", n_time_features=4, adam_steps=60).fit()
    assert len(model.networks_) == 2
    assert "causal_min_weight" in model.result_.data
    # prediction at t in window 1 uses network 1
    with torch.no_grad():
        direct = model.networks_[1](torch.tensor([[0.5]], dtype=torch.float64),
                                    torch.tensor([[0.8]], dtype=torch.float64)).item()
    assert model.predict(0.5, 0.8) == pytest.approx(direct, abs=1e-15)


class _Interrupt(Exception):
    pass


def _interrupting(problem, n_calls, t_min=-np.inf):
    """Same PDE, but while ``trigger["armed"]`` the residual makes the loss NaN after n_calls
    evaluations at t >= t_min. Disarmed, it is the same function again (a checkpoint holds
    the residual's fingerprint, so the run is resumed with this very problem)."""
    trigger = {"n": 0, "after": n_calls, "t_min": t_min, "armed": True}

    def residual(f):
        r = problem.residual(f)
        if trigger["armed"] and float(f.t.detach().min()) >= trigger["t_min"]:
            trigger["n"] += 1
            if trigger["n"] > trigger["after"]:
                return r * float("nan")
        return r

    return PDEProblem(residual, problem.initial, problem.domain_x, problem.domain_t,
                      problem.reference, name=problem.name,
                      parameters=problem.parameters), trigger


def _state(model):
    return torch.cat([p.detach().reshape(-1) for n in model.networks_ for p in n.parameters()])


@pytest.mark.parametrize("mode", ["hard", "shared"])
def test_nan_stops_keeps_checkpoint_and_resume_is_bit_identical(tmp_path, mode):
    problem = convection(3.0)
    kw = dict(mode=mode, n_windows=2, adam_steps=30, lbfgs_steps=20, checkpoint_every=10,
              resample_every=7)
    full = _small(problem, **kw).fit()
    ck = tmp_path / "run.pt"
    # interrupt in window 1 during Adam: the NaN is reported and the last good state is kept
    crashing, trigger = _interrupting(problem, 15, t_min=0.5)
    with pytest.raises(TrainingDivergedError, match="non-finite.*last good checkpoint"):
        _small(crashing, checkpoint=ck, **kw).fit()
    saved = read_checkpoint(ck)
    assert saved["window"] == 1 and saved["stage"] == "adam" and saved["step"] == 10
    with pytest.raises(CheckpointError, match="problem residual source"):
        _small(problem, checkpoint=ck, **kw).fit(resume=True)  # another PDE's checkpoint
    trigger["armed"] = False
    resumed = _small(crashing, checkpoint=ck, **kw).fit(resume=True)
    assert torch.equal(_state(full), _state(resumed))
    assert [h["loss_total"] for h in full.history_] == [h["loss_total"] for h in resumed.history_]


def test_resume_inside_lbfgs_is_bit_identical(tmp_path):
    problem = convection(3.0)
    kw = dict(adam_steps=20, lbfgs_steps=40, checkpoint_every=10)
    full = _small(problem, **kw).fit()
    ck = tmp_path / "run.pt"
    n_adam_calls = 20
    crashing, trigger = _interrupting(problem, n_adam_calls + 30)
    with pytest.raises(TrainingDivergedError):
        _small(crashing, checkpoint=ck, **kw).fit()
    assert read_checkpoint(ck)["stage"] == "lbfgs"
    trigger["armed"] = False
    resumed = _small(crashing, checkpoint=ck, **kw).fit(resume=True)
    assert torch.equal(_state(full), _state(resumed))


def test_resume_refuses_other_settings(tmp_path):
    ck = tmp_path / "run.pt"
    _small(convection(1.0), adam_steps=5, checkpoint=ck).fit()
    with pytest.raises(ValueError, match="different settings.*hidden"):
        _small(convection(1.0), adam_steps=5, checkpoint=ck, hidden=(8, 8)).fit(resume=True)


def test_budget_environment_variable(monkeypatch):
    monkeypatch.setenv("SCITIE_PINN_BUDGET", "0.2")
    m = _small(convection(1.0), adam_steps=50, budget=None).fit()
    assert m.n_adam_steps_ == 10 and len(m.history_) == 10
    monkeypatch.setenv("SCITIE_PINN_BUDGET", "zero")
    with pytest.raises(ValueError, match="SCITIE_PINN_BUDGET"):
        _small(convection(1.0), budget=None).fit()


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("period", [0.0, -1.0, float("nan")])
def test_non_positive_period_rejected(period):
    with pytest.raises(ValueError, match="period"):
        PeriodicEmbedding(period)
    with pytest.raises(ValueError, match="domain_x"):
        PDEProblem(lambda f: f.u_t, np.sin, (1.0, 1.0 + period))


def test_wrong_tensor_shapes_rejected():
    net = PINNNetwork((0, 1), (0, 1), hidden=(4,))
    with pytest.raises(ValueError, match=r"x must have shape \(n, 1\)"):
        net(torch.zeros(5, dtype=torch.float64), torch.zeros(5, 1, dtype=torch.float64))
    with pytest.raises(ValueError, match="same number of rows"):
        net(torch.zeros(5, 1, dtype=torch.float64), torch.zeros(4, 1, dtype=torch.float64))
    with pytest.raises(ValueError, match="x must have shape"):
        PeriodicEmbedding(1.0)(torch.zeros(3, 2, dtype=torch.float64))
    m = _small(convection(1.0), adam_steps=1).fit()
    with pytest.raises(ValueError, match="broadcast"):
        m.predict(np.zeros(3), np.zeros(4))


def test_residual_with_wrong_shape_rejected():
    p = convection(1.0)
    bad = PDEProblem(lambda f: (f.u_t + f.u_x)[:5], p.initial, p.domain_x)
    with pytest.raises(ValueError, match="residual must return shape"):
        _small(bad).fit()
    bad2 = PDEProblem(lambda f: 1.0, p.initial, p.domain_x)
    with pytest.raises(TypeError, match="residual must return a torch.Tensor"):
        _small(bad2).fit()


@pytest.mark.parametrize("kw, match", [
    (dict(mode="periodic"), "mode"), (dict(n_collocation=0), "n_collocation"),
    (dict(learning_rate=-1.0), "learning_rate"), (dict(dtype="float16"), "dtype"),
    (dict(adam_steps=-3), "adam_steps"),
])
def test_bad_settings_rejected(kw, match):
    with pytest.raises(ValueError, match=match):
        _small(convection(1.0), **kw).fit()


def test_predict_before_fit():
    with pytest.raises(NotFittedError, match="not fitted"):
        _small(convection(1.0)).predict(0.0, 0.0)


def test_float32_trains():
    m = _small(convection(1.0), dtype="float32", adam_steps=20).fit()
    assert next(m.networks_[0].parameters()).dtype == torch.float32
    assert math.isfinite(m.result_.data.attrs["rel_l2"])


def test_resume_from_finished_checkpoint_does_not_retrain(tmp_path):
    ck = tmp_path / "run.pt"
    done = _small(convection(1.0), adam_steps=10, lbfgs_steps=10, checkpoint=ck).fit()
    again = _small(convection(1.0), adam_steps=10, lbfgs_steps=10, checkpoint=ck).fit(resume=True)
    assert torch.equal(_state(done), _state(again))
    assert len(again.history_) == len(done.history_)
