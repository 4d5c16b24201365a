"""The periodic tie in ParameterGroup vocabulary matches what the networks do."""
import numpy as np
import pytest
import torch

from sciTie.pinn import PeriodicPINN, convection, periodic_tie_group
from pinn_settings import plain

torch.set_num_threads(1)


def test_tie_matrices_count_free_boundary_values():
    n = 4
    hard, soft, shared = (periodic_tie_group(m, n) for m in ("hard", "soft", "shared"))
    assert hard.n_free == 2 * n and shared.n_free == 2 * n and soft.n_free == 4 * n
    G = hard.tie_matrix().toarray()
    left, right = hard.slot_index("u_left"), hard.slot_index("u_right")
    assert np.array_equal(G[left], G[right])  # both ends read the same free value
    with pytest.raises(ValueError, match="mode"):
        periodic_tie_group("exact", 3)
    with pytest.raises(ValueError, match="n_times"):
        periodic_tie_group("hard", 0)


def test_autograd_sum_over_shared_uses_is_G_transpose():
    # A shared boundary trace g is read at both ends (tying by identity); the gradient that
    # autograd accumulates on g equals G.T @ (gradient with respect to the slots).
    n = 5
    group = periodic_tie_group("shared", n)
    rng = np.random.default_rng(0)
    g = torch.tensor(rng.normal(size=2 * n), requires_grad=True)
    order = {"u_left": g[:n], "u_right": g[:n], "ux_left": g[n:], "ux_right": g[n:]}
    slots = torch.zeros(group.n_slots, dtype=torch.float64)
    for key, val in order.items():
        slots = slots.index_put((torch.as_tensor(group.slot_index(key)),), val)
    for key in ("g", "gx"):
        part = g[:n] if key == "g" else g[n:]
        slots = slots.index_put((torch.as_tensor(group.slot_index(key)),), part)
    weights = torch.tensor(rng.normal(size=group.n_slots))
    loss = torch.sum(weights * slots ** 2)
    (grad_g,) = torch.autograd.grad(loss, g)
    grad_slots = (2 * weights * slots).detach().numpy()
    pooled = group.pool(grad_slots)
    free_order = [group.free_names.index(f"g[{i}]") for i in range(n)] + \
                 [group.free_names.index(f"gx[{i}]") for i in range(n)]
    assert np.allclose(pooled[free_order], grad_g.numpy(), atol=1e-12)


@pytest.mark.parametrize("mode", ["hard", "soft", "shared"])
def test_boundary_group_values_from_trained_model(mode):
    m = PeriodicPINN(convection(1.0), **plain(mode=mode, hidden=(8, 8), adam_steps=20,
                                              n_collocation=64, n_initial=32, n_boundary=16,
                                              eval_grid=(16, 6), budget=1.0)).fit()
    group = m.boundary_group(6)
    vals = group.valuesdict()
    traces = m._traces(np.linspace(0, 1, 6))
    if mode == "hard":
        assert np.allclose(vals["u_right"], traces["u_right"], atol=1e-12)
    elif mode == "soft":
        assert np.allclose(vals["jump_3"], traces["u_right"][3] - traces["u_left"][3])
    else:
        # the free slots carry the boundary network's output; u_left/u_right read g through G
        assert np.allclose(vals["g"], traces["g"], atol=1e-12)
        assert np.allclose(vals["gx"], traces["gx"], atol=1e-12)


def test_group_is_the_one_trained_shared_boundary_network():
    # shared mode: the boundary network's weights live in the model's parameter group and are
    # trained through it (TiedParameters); group_ reports exactly what was trained
    m = PeriodicPINN(convection(1.0), **plain(mode="shared", hidden=(8, 8), adam_steps=15,
                                              n_collocation=64, n_initial=32, n_boundary=16,
                                              eval_grid=(16, 6), bc_weight=10.0,
                                              budget=1.0)).fit()
    g = m.group_
    bnet = m.boundary_networks_[0]["x"]
    n_weights = sum(p.numel() for p in bnet.parameters())
    assert g.n_free == n_weights  # coefficient and period are fixed in a forward problem
    assert np.array_equal(m.tied_[0].free.detach().numpy(), g.pack())
    w0 = bnet.body.layers[0].weight.detach().numpy()
    assert np.allclose(g.valuesdict()["boundary_x.body.layers_0.weight"], w0, atol=0)
    # the trained boundary network is what the loss saw: it moved from its initial weights
    fresh = PeriodicPINN(convection(1.0), **plain(mode="shared", hidden=(8, 8), adam_steps=0,
                                                  n_collocation=64, n_initial=32,
                                                  n_boundary=16, eval_grid=(16, 6),
                                                  budget=1.0)).fit()
    assert not np.allclose(fresh.group_.pack(), g.pack())
    assert g["beta"].vary is False and g.valuesdict()["beta"] == 1.0


def test_learnt_period_is_one_free_value_and_harmonics_follow_it():
    from sciTie.pinn.data import synthetic_observations

    p = convection(1.0)
    X, y = synthetic_observations(p, 60, 0.0, random_state=1)
    from sciTie.pinn import PDEProblem

    guess = PDEProblem(p.residual, p.initial, p.domain_x, p.domain_t, p.reference,
                       name=p.name, parameters=p.parameters, periods={"x": 6.0})
    m = PeriodicPINN(guess, **plain(hidden=(8, 8), n_modes=3, trainable_frequency=True,
                                    adam_steps=30, learning_rate=1e-2, n_collocation=64,
                                    n_initial=32, eval_grid=(16, 6), budget=1.0)).fit(X, y)
    g = m.group_
    assert g.free_names == ["log_period_x"]  # a period is learnt through its logarithm
    P = g.valuesdict()["period_x"]
    assert P == pytest.approx(np.exp(g.valuesdict()["log_period_x"]), rel=1e-15)
    assert P != 6.0 and m.periods_["x"] == P
    assert np.allclose(g.valuesdict()["frequency_x"], 2 * np.pi / P * np.array([1, 2, 3]),
                       rtol=1e-14)
    # the network alone carries the trained period (for predict / periodicity_violation)
    assert m.networks_[0].x_features.periods[0] == pytest.approx(P, rel=1e-14)
    assert m.periodicity_violation([0.0, 1.0])[0] < 1e-12
    # the uncertainty is reported on the group's free parameter and, through the tie map
    # (the delta method for exp), on the period itself
    log_se = m.result_.params["log_period_x"].stderr
    assert log_se > 0 and "log_period_x" in m.result_.free_names
    assert m.result_.params["period_x"].stderr == pytest.approx(P * log_se, rel=1e-6)
    assert m.uncertainty_.names == ["period_x"]
    assert m.uncertainty_.stderr[0] == pytest.approx(P * log_se, rel=1e-6)


def test_checkpoint_holds_the_free_vector_once(tmp_path):
    ck = tmp_path / "run.pt"
    PeriodicPINN(convection(1.0), **plain(mode="shared", hidden=(6,), adam_steps=4,
                                          n_collocation=32, n_initial=16, n_boundary=8,
                                          eval_grid=(9, 5), checkpoint=ck)).fit()
    from sciTie.pinn._checkpoint import read_checkpoint

    state = read_checkpoint(ck)
    assert list(state["tied"][0]) == ["free", "fixed", "_extra_state"]
    net_keys = set(state["networks"][0])
    assert not any("boundary" in k for k in net_keys)  # not a second copy in the network
