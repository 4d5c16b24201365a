"""The periodic tie in ParameterGroup vocabulary matches what the networks do."""
import numpy as np
import pytest
import torch

from sciTie.pinn import PeriodicPINN, convection, periodic_tie_group

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
    m = PeriodicPINN(convection(1.0), mode=mode, hidden=(8, 8), adam_steps=20,
                     n_collocation=64, n_initial=32, n_boundary=16, eval_grid=(16, 6),
                     budget=1.0).fit()
    group = m.boundary_group(6)
    vals = group.values()
    traces = m._traces(np.linspace(0, 1, 6))
    if mode == "hard":
        assert np.allclose(vals["u_right"], traces["u_right"], atol=1e-12)
    elif mode == "soft":
        assert np.allclose(vals["jump_3"], traces["u_right"][3] - traces["u_left"][3])
    else:
        # the free slots carry the boundary network's output; u_left/u_right read g through G
        assert np.allclose(vals["g"], traces["g"], atol=1e-12)
        assert np.allclose(vals["gx"], traces["gx"], atol=1e-12)
