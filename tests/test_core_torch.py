"""The tie map inside torch: sciTie.core.torch.TiedParameters and the transposed tie.

Independent references: the core's own numpy evaluation (``group.unpack``) and tie matrix
(``group.tie_matrix``), central finite differences through ``group.unpack``, and plain torch
networks tied by identity.
"""
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from sciTie import Expression, ExpressionError, ParameterGroup  # noqa: E402
from sciTie.core.expressions import FUNCTIONS  # noqa: E402
from sciTie.core.torch import TORCH_FUNCTIONS, TiedParameters, group_from_module  # noqa: E402
from sciTie.errors import CheckpointError, ValidationError  # noqa: E402
from sciTie.io import atomic_path  # noqa: E402

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]


def _grad_free(tp, weights):
    """Gradient of sum(weights * slots) with respect to the free vector."""
    tp.zero_grad()
    (tp.slots() * torch.as_tensor(weights)).sum().backward()
    return tp.free.grad.numpy().copy()


def _mixed_group(kind_v3, scale, offset, transposed_scale, expr):
    """Equal, scaled, offset, chained, partial, transposed, fixed and expression ties."""
    g = ParameterGroup("g")
    g.add("a", 0.7)
    g.add("v", [0.3, -1.1, 2.0, 0.4])
    g.add("c", 1.25, vary=False)
    g.add("M", [[0.5, -0.2, 1.5], [0.9, 0.1, -0.6]])
    g.add("N", np.zeros((3, 2)))
    g.add("P", np.zeros((2, 2)))
    g.add("s", 0.0)
    g.tie("v[1]", to="a", scale=scale, offset=offset)              # scaled and offset
    g.tie("v[2]", to="v[1]", scale=-0.75, offset=0.5)              # a chain of two ties
    if kind_v3 == "fixed":
        g.tie("v[3]", to="c", scale=2.0)                           # tied to a fixed value
    elif kind_v3 == "equal":
        g.tie("v[3]", to="v[0]")
    g.tie("N", to="M", transpose=True, scale=transposed_scale)     # a transposed tie
    g.tie("P[0, 0:2]", to="M[1, 1:3]")                             # partial element tie
    g.constrain("s", expr)                                         # nonlinear constraint
    g.add("w", np.zeros(2))
    g.tie_linear("w[0]", {"a": 0.5, "v[2]": -1.5, "M[0, 1]": 2.0}, offset=0.25)  # several slots
    g.tie("w[1]", to="w[0]", scale=-3.0)                           # a tie on top of it
    g.add("q", 0.0)
    g.constrain("q", "w[1] * s + c")                               # expression of computed slots
    return g


EXPRESSIONS = ["a * sin(v[0]) + exp(0.1 * M[0, 0])",
               "hypot(a, c) - v[3] / (2 + cos(M[1, 2]))",
               "max(a, v[0]) * min(M[0, 1], c) + sqrt(abs(a) + 1)",
               "arctan2(v[1], 1.5) + tanh(P[1, 1]) ** 2"]


@settings(max_examples=40, deadline=None)
@given(kind_v3=st.sampled_from(["free", "fixed", "equal"]),
       scale=st.floats(-3, 3).filter(lambda s: abs(s) > 0.05),
       offset=st.floats(-2, 2),
       transposed_scale=st.sampled_from([1.0, -2.5]),
       expr=st.sampled_from(EXPRESSIONS),
       seed=st.integers(0, 2**31 - 1))
def test_slots_and_gradient_match_the_core(kind_v3, scale, offset, transposed_scale, expr, seed):
    g = _mixed_group(kind_v3, scale, offset, transposed_scale, expr)
    rng = np.random.default_rng(seed)
    free = g.pack() + rng.normal(0, 0.3, g.n_free)
    g.set_free(free)
    tp = TiedParameters(g)
    slots = tp.slots().detach().numpy()
    expected = g.unpack(free)
    s = [g.slot_index("s"), g.slot_index("q")]
    linear = ~np.isin(np.arange(g.n_slots), s)
    np.testing.assert_array_equal(slots[linear], expected[linear])   # same operations, exactly
    # torch's and Python's libm may differ in the last bits of sin, exp, arctan2 ...
    np.testing.assert_allclose(slots[s], expected[s], rtol=1e-14, atol=1e-15)
    weights = rng.normal(size=g.n_slots)
    G = g.tie_matrix(free)
    np.testing.assert_allclose(_grad_free(tp, weights), G.T @ weights, rtol=1e-12, atol=1e-13)


def test_gradient_of_a_nonlinear_loss_matches_finite_differences():
    g = _mixed_group("fixed", 1.7, -0.3, -2.5, EXPRESSIONS[0])
    tp = TiedParameters(g)
    target = np.linspace(-1, 1, g.n_slots)

    def loss_np(free):
        return float(np.sum(np.tanh(g.unpack(free) - target) ** 2))

    loss = torch.sum(torch.tanh(tp.slots() - torch.as_tensor(target)) ** 2)
    loss.backward()
    x, h = g.pack(), 1e-6
    fd = np.array([(loss_np(x + h * e) - loss_np(x - h * e)) / (2 * h) for e in np.eye(g.n_free)])
    np.testing.assert_allclose(tp.free.grad.numpy(), fd, rtol=1e-7, atol=1e-9)


def test_named_slots_are_shaped_like_their_selection():
    g = _mixed_group("free", 2.0, 0.5, 1.0, EXPRESSIONS[1])
    tp = TiedParameters(g)
    vals = g.valuesdict()
    for name in ["a", "v", "v[1]", "M", "N", "N[2]", "P[0, 0:2]", "s", "c", "w", "q"]:
        got = tp.slot(name)
        assert got.shape == np.shape(vals[name]), name
        np.testing.assert_allclose(got.detach().numpy(), vals[name], rtol=1e-15)
        np.testing.assert_allclose(tp.values()[name].detach().numpy(), vals[name], rtol=1e-15)
    np.testing.assert_array_equal(tp.slot("N").detach().numpy(), tp.slot("M").detach().numpy().T)
    assert sorted(tp.values()) == sorted(g.parameters)
    assert tp.slot_names == g.slot_names and tp.free_names == g.free_names


def test_child_group_parameters_and_shared_children():
    shared = ParameterGroup("structure")
    shared.add("a", 5.4)
    root = ParameterGroup("fit")
    for name in ("xray", "neutron"):
        child = root.add_group(ParameterGroup(name))
        child.add_group(shared)
        child.add("scale", 1.0)
    root.tie("neutron.scale", to="xray.scale", scale=0.5)
    tp = TiedParameters(root)
    assert tp.n_free == root.n_free == 2
    assert tp.slot("neutron.structure.a") is not None
    assert tp.slot("neutron.structure.a").item() == tp.slot("xray.structure.a").item() == 5.4
    (tp.slot("neutron.scale") * 3 + tp.slot("xray.structure.a")).backward()
    np.testing.assert_allclose(tp.free.grad.numpy(),
                               root.tie_matrix().T @ _slot_weights(root, {"neutron.scale": 3,
                                                                          "xray.structure.a": 1}))


def _slot_weights(group, weights):
    out = np.zeros(group.n_slots)
    for name, w in weights.items():
        out[group.slot_index(name)] += w
    return out


def test_tie_statements_of_the_core_train_through_the_bridge():
    g = ParameterGroup("levels")
    g.add("mu", [1.0, 2.1, 2.9, 4.2])
    g.add("var", [0.5, 0.6, 0.7, 0.8])
    g.apply_ties(["mu[2] = 3 * mu[0]", "mu[1] = mu[0] + delta", "var[3] = phi * mu[3]"],
                 new_parameters=True)
    tp = TiedParameters(g)
    assert tp.free_names == g.free_names
    np.testing.assert_array_equal(tp.slots().detach().numpy(), g.unpack(g.pack()))
    weights = np.linspace(-1.0, 2.0, g.n_slots)
    np.testing.assert_allclose(_grad_free(tp, weights), g.tie_matrix().T @ weights,
                               rtol=1e-13, atol=1e-14)


def test_min_and_max_follow_the_first_argument_on_a_tie_like_the_core():
    g = ParameterGroup("g")
    g.add("a", 1.0)
    g.add("b", 1.0)
    g.add("m", 0.0)
    g.add("n", 0.0)
    g.constrain("m", "min(a, b)")
    g.constrain("n", "max(b, a)")
    tp = TiedParameters(g)
    weights = np.array([0.0, 0.0, 1.0, 10.0])
    np.testing.assert_allclose(_grad_free(tp, weights), g.tie_matrix().T @ weights)
    np.testing.assert_allclose(_grad_free(tp, weights), [1.0, 10.0])


# -- the torch twins of the whitelisted functions ------------------------------------------------
def test_every_whitelisted_function_has_a_torch_twin():
    assert set(TORCH_FUNCTIONS) == set(FUNCTIONS)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_torch_functions_agree_with_the_core_value_and_derivative(name):
    binary = name in {"arctan2", "hypot", "min", "max"}
    text = f"{name}(x, y)" if binary else f"{name}(x)"
    expr = Expression(text)
    for point in ([0.3, 0.8], [0.6, -0.45], [-0.2, 0.25]):
        args = point[:len(expr.names)]
        if name in {"log", "log10", "sqrt"}:
            args = [abs(a) for a in args]
        value, grad = expr.evaluate_with_gradient(args)
        xs = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in args]
        got = expr.evaluate_with(xs, TORCH_FUNCTIONS)
        got.backward()
        assert got.item() == pytest.approx(value, rel=1e-14, abs=1e-15)
        np.testing.assert_allclose([float(x.grad) for x in xs], grad, rtol=1e-13, atol=1e-15)


def test_evaluate_with_uses_the_same_whitelisted_tree():
    expr = Expression("2 * a ** 2 + sin(pi / 2) - b / 4")
    assert expr.evaluate_with([3.0, 2.0], TORCH_FUNCTIONS) == pytest.approx(18.5)
    with pytest.raises(ExpressionError, match="no implementation given for the function"):
        expr.evaluate_with([3.0, 2.0], {"sin": math.sin})
    with pytest.raises(ExpressionError, match="expected 2 values"):
        expr.evaluate_with([3.0], TORCH_FUNCTIONS)
    with pytest.raises(ExpressionError, match="failed"):
        Expression("(-8) ** 0.5 + a").evaluate_with([torch.tensor(1.0)], TORCH_FUNCTIONS)


# -- the transposed tie in the core --------------------------------------------------------------
def test_transposed_tie_reads_the_target_transposed_and_g_is_a_permutation():
    g = ParameterGroup("ae")
    enc = np.arange(12.0).reshape(3, 4)
    g.add("enc", enc)
    g.add("dec", np.zeros((4, 3)))
    g.tie("dec", to="enc", transpose=True, scale=2.0, offset=1.0)
    np.testing.assert_array_equal(g.valuesdict()["dec"], 2.0 * enc.T + 1.0)
    G = g.tie_matrix().toarray()
    assert G.shape == (24, 12)
    dec_rows = g.slot_index("dec")
    for i in range(4):
        for j in range(3):
            expected = np.zeros(12)
            expected[g.slot_index(f"enc[{j},{i}]")] = 2.0
            np.testing.assert_array_equal(G[dec_rows[i, j]], expected)
    assert "== '2*enc[1,2] + 1'" in g.describe()


def test_transpose_accepts_an_axes_permutation():
    g = ParameterGroup("g")
    t = np.arange(24.0).reshape(2, 3, 4)
    g.add("t", t)
    g.add("u", np.zeros((4, 2, 3)))
    g.tie("u", to="t", transpose=(2, 0, 1))
    np.testing.assert_array_equal(g.valuesdict()["u"], np.transpose(t, (2, 0, 1)))
    assert g.n_free == 24


@pytest.mark.parametrize("transpose, match", [
    (True, "at least two axes"), ((0, 0), "permutation"), ((1, 0, 2), "permutation"),
    ("10", "permutation"), ((1.0, 0.0), "permutation")])
def test_bad_transpose_is_refused_with_the_argument_named(transpose, match):
    g = ParameterGroup("g")
    g.add("v", np.zeros(3))
    g.add("w", np.zeros(3))
    g.add("M", np.zeros((2, 3)))
    g.add("N", np.zeros((3, 2)))
    to, slots = ("v", "w") if transpose is True else ("M", "N")
    with pytest.raises(ValidationError, match=f"transpose.*{match}|{match}"):
        g.tie(slots, to=to, transpose=transpose)
    assert g.n_free == g.n_slots  # nothing was tied


def test_transposed_shape_mismatch_names_both_shapes():
    g = ParameterGroup("g")
    g.add("M", np.zeros((2, 3)))
    g.add("Q", np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3, 2\)"):
        g.tie("Q", to="M", transpose=True)


# -- state, checkpoints, group round trips --------------------------------------------------------
def _autoencoder_group(n_in=6, n_hidden=3, seed=0):
    rng = np.random.default_rng(seed)
    g = ParameterGroup("autoencoder")
    enc = g.add_group(ParameterGroup("encoder"))
    dec = g.add_group(ParameterGroup("decoder"))
    enc.add("weight", rng.normal(size=(n_hidden, n_in)))
    enc.add("bias", rng.normal(size=n_hidden))
    dec.add("weight", np.zeros((n_in, n_hidden)))
    dec.add("bias", rng.normal(size=n_in))
    g.tie("decoder.weight", to="encoder.weight", transpose=True)
    return g


def test_state_dict_holds_the_free_vector_once():
    g = _autoencoder_group()
    tp = TiedParameters(g)
    state = tp.state_dict()
    assert sorted(state) == ["_extra_state", "fixed", "free"]
    assert state["free"].shape == (g.n_free,) and g.n_free == 18 + 3 + 6
    assert state["fixed"].shape == (0,)
    # plain torch tying by identity keeps both names in its state_dict
    enc, dec = nn.Linear(6, 3), nn.Linear(3, 6)
    plain = nn.ModuleDict({"encoder": enc, "decoder": dec})
    assert {"encoder.weight", "decoder.weight"} <= set(plain.state_dict())
    assert list(tp.parameters()) == [tp.free]


def test_checkpoint_round_trip_is_bit_identical(tmp_path):
    g = _autoencoder_group()
    g.add("temperature", 295.0, vary=False)
    tp = TiedParameters(g)
    opt = torch.optim.Adam(tp.parameters(), lr=0.05)
    x = torch.randn(8, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    for _ in range(5):
        opt.zero_grad()
        v = tp.values()
        h = torch.tanh(F.linear(x, v["encoder.weight"], v["encoder.bias"]))
        F.mse_loss(F.linear(h, v["decoder.weight"], v["decoder.bias"]), x).backward()
        opt.step()
    with torch.no_grad():
        tp.fixed.fill_(300.0)
    path = tmp_path / "tied.pt"
    with atomic_path(path) as tmp:
        torch.save(tp.state_dict(), tmp)
    fresh = TiedParameters(_with_temperature())   # other starting values, same ties
    fresh.load_state_dict(torch.load(path, weights_only=True))
    assert torch.equal(fresh.free, tp.free) and torch.equal(fresh.fixed, tp.fixed)
    assert torch.equal(fresh.slots(), tp.slots())
    back = fresh.to_group()
    assert back["temperature"].value == 300.0
    np.testing.assert_array_equal(back.pack(), tp.free.detach().numpy())
    np.testing.assert_array_equal(back.valuesdict()["decoder.weight"],
                                  back.valuesdict()["encoder.weight"].T)


def _with_temperature():
    g = _autoencoder_group(seed=5)
    g.add("temperature", 1.0, vary=False)
    return g


def test_loading_a_state_from_other_ties_is_refused():
    tp = TiedParameters(_autoencoder_group())
    untied = _autoencoder_group()
    untied.untie("decoder.weight")
    other = TiedParameters(untied)
    with pytest.raises(CheckpointError, match="other slots or ties"):
        other.load_state_dict(tp.state_dict(), strict=False)
    # same shapes, different tie: also refused
    g1, g2 = ParameterGroup("g"), ParameterGroup("g")
    for g in (g1, g2):
        g.add("a", 1.0)
        g.add("b", 2.0)
    g1.tie("b", to="a", scale=2.0)
    g2.tie("b", to="a", scale=3.0)
    target = TiedParameters(g2)
    with torch.no_grad():
        target.free.fill_(-7.0)
    with pytest.raises(CheckpointError, match="other slots or ties"):
        target.load_state_dict(TiedParameters(g1).state_dict())
    assert target.free.tolist() == [-7.0]     # refused before anything was copied in
    with pytest.raises(CheckpointError, match="not a sciTie TiedParameters state"):
        TiedParameters(g1).load_state_dict({"free": torch.zeros(1, dtype=torch.float64),
                                            "fixed": torch.zeros(0, dtype=torch.float64),
                                            "_extra_state": {"format": "other"}})


def test_to_group_and_load_group_round_trip_without_touching_the_original():
    g = _mixed_group("fixed", 1.5, 0.2, 1.0, EXPRESSIONS[0])
    before = g.pack().copy()
    tp = TiedParameters(g)
    new = before + 0.125
    with torch.no_grad():
        tp.free.copy_(torch.as_tensor(new))
    out = tp.to_group()
    np.testing.assert_array_equal(out.pack(), new)
    np.testing.assert_allclose(out.unpack(new), tp.slots().detach().numpy(), rtol=1e-15)
    np.testing.assert_array_equal(g.pack(), before)       # the user's group is untouched
    tp2 = TiedParameters(g).load_group(out)
    assert torch.equal(tp2.free, tp.free)
    with pytest.raises(ValidationError, match="different slots or ties"):
        tp2.load_group(_autoencoder_group())
    g.untie("v[2]")
    with pytest.raises(ValidationError, match="other slots or ties after this module was built"):
        tp.to_group()


def test_bounds_are_projected_by_clamp_and_refused_by_to_group():
    g = ParameterGroup("g")
    g.add("rate", 0.5, min=0.0, max=1.0)
    g.add("level", 2.0)
    g.add("twice", 0.0)
    g.tie("twice", to="rate", scale=2.0)
    tp = TiedParameters(g)
    opt = torch.optim.SGD(tp.parameters(), lr=1.0)
    (-10 * tp.slot("twice")).backward()       # pushes rate to 0.5 + 20
    opt.step()
    assert tp.out_of_bounds() == ["rate"]
    with pytest.raises(ValidationError, match="rate.*outside their bounds"):
        tp.to_group()
    tp.clamp_()
    assert tp.slot("rate").item() == 1.0 and tp.slot("twice").item() == 2.0
    assert tp.to_group()["rate"].value == 1.0
    # the same projection as a hook after every step
    handle = tp.clamp_after_step(opt)
    opt.zero_grad()
    (10 * tp.slot("rate")).backward()
    opt.step()
    assert tp.slot("rate").item() == 0.0
    handle.remove()
    with pytest.raises(ValidationError, match="optimizer"):
        tp.clamp_after_step(torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0))


# -- dtypes, devices, modules ---------------------------------------------------------------------
def test_float32_and_casting_after_construction():
    g = _mixed_group("fixed", 1.5, 0.2, -2.5, EXPRESSIONS[2])
    tp = TiedParameters(g, dtype=torch.float32)
    assert tp.slots().dtype == torch.float32 and tp.free.dtype == torch.float32
    np.testing.assert_allclose(tp.slots().detach().numpy(), g.unpack(g.pack()), rtol=1e-6)
    tp64 = TiedParameters(g)
    assert tp64.slot("N").dtype == torch.float64
    tp64.float()   # cached index plans are rebuilt for the new dtype
    assert tp64.slot("N").dtype == torch.float32 and tp64.slots().dtype == torch.float32


class _AE(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder, self.decoder = nn.Linear(5, 2), nn.Linear(2, 5)

    def forward(self, x):
        return self.decoder(torch.tanh(self.encoder(x)))


def test_functional_call_and_group_from_module_match_a_plain_tied_network():
    torch.manual_seed(0)
    ae = _AE().double()
    g = group_from_module(ae, "ae")
    assert g.slot_names[:2] == ["encoder.weight[0,0]", "encoder.weight[0,1]"]
    np.testing.assert_array_equal(g.valuesdict()["decoder.bias"], ae.decoder.bias.detach().numpy())
    g.tie("decoder.weight", to="encoder.weight", transpose=True)
    tp = TiedParameters(g)
    assert g.n_free == 10 + 2 + 5
    x = torch.randn(4, 5, dtype=torch.float64)
    out = tp.functional_call(ae, x)
    out.square().sum().backward()
    # the same network tied by hand in plain torch (identity: decoder uses encoder.weight.t())
    enc_w = ae.encoder.weight.detach().clone().requires_grad_()
    h = torch.tanh(F.linear(x, enc_w, ae.encoder.bias))
    plain = F.linear(h, enc_w.t(), ae.decoder.bias)
    # same numbers; a contiguous copy and a transposed view may sum in another order
    torch.testing.assert_close(out, plain, rtol=1e-14, atol=1e-15)
    plain.square().sum().backward()
    torch.testing.assert_close(tp.free.grad[:10].view(2, 5), enc_w.grad, rtol=1e-14, atol=1e-15)
    with pytest.raises(ValidationError, match="^module: parameter.*not in group"):
        tp.functional_call(nn.Linear(3, 3), x)
    with pytest.raises(ValidationError, match="^module: expected"):
        tp.functional_call(lambda x: x, x)


def test_group_from_module_turns_identity_sharing_into_a_tie_and_frozen_into_fixed():
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(7, 3)
            self.head = nn.Linear(3, 7)
            self.head.weight = self.embed.weight
            self.head.bias.requires_grad_(False)

    g = group_from_module(Shared())
    assert g.slot_names.count("head.weight[0,0]") == 1
    assert "head.weight" not in [n.split("[")[0] for n in g.free_names]
    assert not any(n.startswith("head.bias") for n in g.free_names)
    assert g.n_free == 21


def test_sequential_modules_inside_a_larger_group_with_a_prefix():
    """The PINN pattern: a network's weights as one child group next to model parameters."""
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1)).double()
    pinn = ParameterGroup("pinn")
    boundary = pinn.add_group(group_from_module(net, "boundary"))
    assert list(boundary.parameters) == ["layer_0.weight", "layer_0.bias", "layer_2.weight",
                                         "layer_2.bias"]
    pinn.add("period", 2.0, min=0.5)
    pinn.add("frequency", np.zeros(3))
    pinn.constrain("frequency[0]", "2 * pi / period")
    pinn.tie("frequency[1]", to="frequency[0]", scale=2.0)
    pinn.tie("frequency[2]", to="frequency[0]", scale=3.0)
    tp = TiedParameters(pinn)
    assert tp.n_free == net[0].weight.numel() + 8 + 8 + 1 + 1
    x = torch.randn(5, 2, dtype=torch.float64)
    values = tp.values()
    out = tp.functional_call(net, (x,), prefix="boundary", values=values)
    torch.testing.assert_close(out, net(x), rtol=0, atol=0)
    k = torch.arange(1, 4, dtype=torch.float64)
    torch.testing.assert_close(values["frequency"], 2 * math.pi / 2.0 * k, rtol=1e-15, atol=0)
    (out.sum() + values["frequency"].sum()).backward()
    period = tp.free_names.index("period")
    # d/dL sum_k k 2 pi / L = -6 * 2 pi / L^2
    assert tp.free.grad[period].item() == pytest.approx(-6 * 2 * math.pi / 4.0, rel=1e-14)
    with pytest.raises(ValidationError, match="^values:"):
        tp.functional_call(net, (x,), prefix="boundary", values={})
    with pytest.raises(ValidationError, match="^module: parameter.*prefix=.boundary."):
        tp.functional_call(net, (x,))


def test_group_from_module_refuses_names_it_cannot_map():
    class Clash(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(1, 1)])
            self.layers_0 = nn.Linear(1, 1)

    with pytest.raises(ValidationError, match="would both be named 'layers_0.weight'"):
        group_from_module(Clash())

    class Reserved(nn.Module):
        def __init__(self):
            super().__init__()
            self.exp = nn.Linear(1, 1)

    with pytest.raises(ValidationError, match="^module: parameter 'exp.weight'.*reserved"):
        group_from_module(Reserved())
    with pytest.raises(ValidationError, match="^module:"):
        group_from_module("net")


# -- errors ---------------------------------------------------------------------------------------
def test_bad_arguments_raise_validation_errors_naming_them():
    g = _autoencoder_group()
    with pytest.raises(ValidationError, match="^group: expected a sciTie ParameterGroup"):
        TiedParameters({"a": 1.0})
    with pytest.raises(ValidationError, match="^dtype:"):
        TiedParameters(g, dtype=torch.int64)
    with pytest.raises(ValidationError, match="^dtype:"):
        TiedParameters(g, dtype="float64")
    with pytest.raises(ValidationError, match="^device:"):
        TiedParameters(g, device="no-such-device")
    tp = TiedParameters(g)
    with pytest.raises(ValidationError, match="^name: unknown parameter or slot 'encoder.w'"):
        tp.slot("encoder.w")
    with pytest.raises(ValidationError, match="^name:.*out of bounds|^name:.*index"):
        tp.slot("encoder.weight[7]")
    with pytest.raises(KeyError, match="encoder.w"):
        tp.values()["encoder.w"]
    with pytest.raises(ValidationError, match="^group:"):
        tp.load_group("autoencoder")
    broken = ParameterGroup("broken")
    broken.add("a", 1.0)
    broken.add("b", 1.0)
    broken.constrain("b", "a + outsider")
    with pytest.raises(ValidationError, match="^group: 'broken' cannot be evaluated.*outsider"):
        TiedParameters(broken)


def test_a_non_finite_constraint_raises_instead_of_returning_nan():
    g = ParameterGroup("g")
    g.add("a", 4.0)
    g.add("r", 0.0)
    g.constrain("r", "sqrt(a)")
    tp = TiedParameters(g)
    assert tp.slot("r").item() == 2.0
    with torch.no_grad():
        tp.free.fill_(-1.0)
    with pytest.raises(ExpressionError, match=r"slot 'r'.*sqrt\(a\).*nan"):
        tp.slots()
    with pytest.raises(ValidationError, match="non-finite"):
        with torch.no_grad():
            tp.free.fill_(float("nan"))
        tp.to_group()
    unchecked = TiedParameters(g, check_finite=False)
    with torch.no_grad():
        unchecked.free.fill_(-1.0)
    assert math.isnan(unchecked.slot("r").item())


def test_importing_sciTie_does_not_import_torch():
    code = ("import sys, sciTie, sciTie.core; import sciTie.core.group; "
            "assert 'torch' not in sys.modules, 'torch imported'; "
            "import sciTie.core.torch; assert 'torch' in sys.modules")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_docstring_examples_run():
    import doctest

    import sciTie.core.torch as bridge

    outcome = doctest.testmod(bridge, optionflags=doctest.ELLIPSIS)
    assert outcome.attempted >= 8 and outcome.failed == 0


def test_tie_matrix_of_the_module_is_the_core_one_at_the_module_values():
    g = _mixed_group("fixed", 1.5, 0.2, -2.5, EXPRESSIONS[1])
    tp = TiedParameters(g)
    with torch.no_grad():
        tp.free.add_(0.25)
        tp.fixed.fill_(0.75)           # the expression reads the fixed slot c
    moved = g.copy()
    moved["c"].value = 0.75
    np.testing.assert_allclose(tp.tie_matrix().toarray(),
                               moved.tie_matrix(g.pack() + 0.25).toarray(), rtol=1e-14)
    assert not np.allclose(tp.tie_matrix().toarray(), g.tie_matrix(g.pack() + 0.25).toarray())


def test_copies_and_pickles_of_the_module_keep_working(tmp_path):
    import copy
    import pickle

    shared = ParameterGroup("structure")
    shared.add("a", 5.4)
    root = ParameterGroup("fit")
    for name in ("xray", "neutron"):
        root.add_group(ParameterGroup(name)).add_group(shared)
    root.add("b", 1.0)
    root.tie("b", to="xray.structure.a", scale=2.0)
    tp = TiedParameters(root)
    with torch.no_grad():
        tp.free.fill_(3.0)
    for clone in (copy.deepcopy(tp), pickle.loads(pickle.dumps(tp))):
        assert torch.equal(clone.slots(), tp.slots())
        assert clone.slot("neutron.structure.a").item() == 3.0
        np.testing.assert_array_equal(clone.tie_matrix().toarray(), tp.tie_matrix().toarray())
        assert clone.to_group()["b"].value == 6.0
        assert clone.free is not tp.free
