"""Bad input to the periodic PINN: checkpoints that are crafted, corrupt, foreign or missing;
settings validated before any training; files never replaced unless asked."""
import math
import os
import pickle

import numpy as np
import pytest
import torch

import sciTie
from sciTie.errors import (CheckpointError, NotFittedError, OutputExistsError,
                           ValidationError)
from sciTie.pinn import PDEProblem, PeriodicPINN, allen_cahn, convection, plot_result
from sciTie.pinn._checkpoint import encode, read_checkpoint
from pinn_settings import plain

torch.set_num_threads(1)


def _counting(problem):
    """The same PDE with a residual that counts its calls (0 calls = no training started)."""
    calls = {"n": 0}

    def residual(f):
        calls["n"] += 1
        return problem.residual(f)

    p = PDEProblem(residual, problem.initial, problem.domain_x, problem.domain_t,
                   problem.reference, name=problem.name, parameters=problem.parameters)
    return p, calls


def _tiny(problem=None, **kw):
    args = plain(hidden=(6,), n_collocation=32, n_initial=16, n_boundary=8, adam_steps=3,
                 eval_grid=(9, 5), budget=1.0)
    args.update(kw)
    return PeriodicPINN(problem if problem is not None else convection(1.0), **args)


class _Payload:
    """Unpickling this would create a file (if the loader ran code)."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


@pytest.mark.parametrize("how", ["pickle", "torch.save"])
def test_crafted_checkpoint_runs_no_code(tmp_path, how):
    marker = tmp_path / "pwned"
    ck = tmp_path / "evil.pt"
    payload = {"magic": "sciTie.pinn.PeriodicPINN checkpoint", "version": 2,
               "settings": _Payload(marker)}
    if how == "pickle":
        ck.write_bytes(pickle.dumps(payload))
    else:
        torch.save(payload, ck)
    # the payload works: an unsafe load would run it (checked on a copy, in this test only)
    assert not marker.exists()
    problem, calls = _counting(convection(1.0))
    with pytest.raises(CheckpointError, match="evil.pt"):
        _tiny(problem, checkpoint=ck).fit(resume=True)
    assert not marker.exists(), "loading the checkpoint executed code"
    assert calls["n"] == 0
    # resume=False must not read it unsafely either, and refuses to replace it
    with pytest.raises(OutputExistsError, match="not a checkpoint of this model"):
        _tiny(problem, checkpoint=ck).fit()
    assert not marker.exists()
    # an unrestricted unpickler would have run the payload: proves the test can fail
    pickle.loads(pickle.dumps(payload))
    assert marker.exists()


@pytest.mark.parametrize("content", [b"", b"\x00" * 64, b"PK\x03\x04 truncated zip",
                                     b"not a checkpoint at all\n"])
def test_corrupt_checkpoint_is_a_checkpoint_error(tmp_path, content):
    ck = tmp_path / "run.pt"
    ck.write_bytes(content)
    with pytest.raises(CheckpointError, match="run.pt") as err:
        _tiny(checkpoint=ck).fit(resume=True)
    assert not isinstance(err.value, pickle.UnpicklingError)
    assert ck.read_bytes() == content  # untouched


def test_truncated_real_checkpoint(tmp_path):
    ck = tmp_path / "run.pt"
    _tiny(checkpoint=ck).fit()
    data = ck.read_bytes()
    ck.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="run.pt"):
        _tiny(checkpoint=ck).fit(resume=True)


def test_foreign_file_never_replaced_unless_overwrite(tmp_path):
    target = tmp_path / "notes.txt"
    target.write_text("my lab notes\n")
    problem, calls = _counting(convection(1.0))
    with pytest.raises(OutputExistsError, match="notes.txt"):
        _tiny(problem, checkpoint=target).fit()
    assert target.read_text() == "my lab notes\n" and calls["n"] == 0
    _tiny(checkpoint=target).fit(overwrite=True)
    assert read_checkpoint(target)["stage"] == "done"


def test_own_checkpoint_may_be_replaced_other_settings_not(tmp_path):
    ck = tmp_path / "run.pt"
    first = _tiny(checkpoint=ck).fit()
    again = _tiny(checkpoint=ck).fit()  # same settings: a fresh run may replace it
    assert torch.equal(first.networks_[0].body.out.weight, again.networks_[0].body.out.weight)
    before = ck.read_bytes()
    with pytest.raises(OutputExistsError):
        _tiny(checkpoint=ck, hidden=(5,)).fit()
    with pytest.raises(CheckpointError, match="different settings.*hidden"):
        _tiny(checkpoint=ck, hidden=(5,)).fit(resume=True)
    assert ck.read_bytes() == before


def test_resume_with_missing_checkpoint_raises(tmp_path):
    problem, calls = _counting(convection(1.0))
    with pytest.raises(CheckpointError, match="does not exist"):
        _tiny(problem, checkpoint=tmp_path / "typo.pt").fit(resume=True)
    assert calls["n"] == 0
    with pytest.raises(CheckpointError, match="needs checkpoint"):
        _tiny(problem).fit(resume=True)


def _rewrite(path, **changes):
    """Change entries of a checkpoint's training state, as sciTie would write it (valid
    checksum), or of its envelope (``magic``, ``version``)."""
    outer = {"magic", "version"}
    state = read_checkpoint(path)
    state.update({k: v for k, v in changes.items() if k not in outer})
    path.write_bytes(encode(state, **{k: v for k, v in changes.items() if k in outer}))


def test_checkpoint_magic_version_and_shapes_validated(tmp_path):
    ck = tmp_path / "run.pt"
    _tiny(checkpoint=ck, adam_steps=4, checkpoint_every=2).fit()
    good = ck.read_bytes()
    _rewrite(ck, magic="something else")
    with pytest.raises(CheckpointError, match="magic"):
        _tiny(checkpoint=ck).fit(resume=True)
    ck.write_bytes(good)
    _rewrite(ck, version=1)
    with pytest.raises(CheckpointError, match="version"):
        _tiny(checkpoint=ck).fit(resume=True)
    ck.write_bytes(good)
    state = read_checkpoint(ck)
    net = state["networks"][0]
    net["body.out.weight"] = torch.zeros(1, 7, dtype=torch.float64)
    _rewrite(ck, networks=[net])
    with pytest.raises(CheckpointError, match="shape"):
        _tiny(checkpoint=ck).fit(resume=True)
    ck.write_bytes(good)
    _rewrite(ck, window=5)
    with pytest.raises(CheckpointError, match="window"):
        _tiny(checkpoint=ck).fit(resume=True)
    ck.write_bytes(good)
    _rewrite(ck, stage="sgd")
    with pytest.raises(CheckpointError, match="stage"):
        _tiny(checkpoint=ck).fit(resume=True)


def test_failed_checkpoint_write_keeps_previous_file(tmp_path, monkeypatch):
    ck = tmp_path / "run.pt"
    _tiny(checkpoint=ck).fit()
    before = ck.read_bytes()
    from sciTie.pinn import _checkpoint

    import contextlib

    from sciTie import io as sciTie_io

    real = sciTie_io.atomic_open

    @contextlib.contextmanager
    def failing_open(path, mode, **kw):
        with real(path, mode, **kw) as fh:
            class HalfWritten:  # half-written, then the disk "fails"
                def write(self, data):
                    fh.write(data[:10])
                    raise OSError("disk full")
            yield HalfWritten()

    monkeypatch.setattr(sciTie_io, "atomic_open", failing_open)
    with pytest.raises(OSError, match="disk full"):
        _tiny(checkpoint=ck).fit()
    assert ck.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.pt"]  # no stray temporary file


@pytest.mark.parametrize("kw, match", [
    (dict(eval_grid=(1, 5)), "eval_grid"), (dict(eval_grid=(9,)), "eval_grid"),
    (dict(eval_grid="big"), "eval_grid"), (dict(eval_grid=(9.5, 5)), "eval_grid"),
    (dict(mode="periodic"), "mode"), (dict(n_collocation=0), "n_collocation"),
    (dict(learning_rate=-1.0), "learning_rate"), (dict(learning_rate=float("nan")),
                                                  "learning_rate"),
    (dict(dtype="float16"), "dtype"), (dict(adam_steps=-3), "adam_steps"),
    (dict(adam_steps=2.5), "adam_steps"), (dict(lbfgs_steps=True), "lbfgs_steps"),
    (dict(lm_steps=-1), "lm_steps"), (dict(ic_weight=-1.0), "ic_weight"),
    (dict(bc_weight=float("inf")), "bc_weight"), (dict(n_threads=0), "n_threads"),
    (dict(n_threads=1.5), "n_threads"), (dict(random_state=-1), "random_state"),
    (dict(random_state="seed"), "random_state"), (dict(budget=0.0), "budget"),
    (dict(causal_eps=-1.0), "causal_eps"), (dict(warm_start="yes"), "warm_start"),
    (dict(trainable_frequency="False"), "trainable_frequency"),
    (dict(hidden=(8, 0)), "hidden"), (dict(hidden="64"), "hidden"),
    (dict(activation="relu6"), "activation"), (dict(architecture="resnet"), "architecture"),
    (dict(time_features="wavelet"), "time_features"), (dict(time_period=0.0), "time_period"),
    (dict(device="tpu"), "device"), (dict(checkpoint=123), "checkpoint"),
    (dict(n_windows=0), "n_windows"), (dict(resample_every=0), "resample_every"),
    (dict(learn={"gamma": 1.0}), "learn"), (dict(learn=["beta"]), "learn"),
    (dict(learn={"beta": float("nan")}), "learn"), (dict(data_weight=-2.0), "data_weight"),
    (dict(mode="soft", trainable_frequency=True), "trainable_frequency"),
    (dict(causal_eps=1.0, n_causal_chunks=64), "n_collocation"),
    (dict(n_windows=2, window_budget=(2.0, 0.0)), "window_budget"),
    (dict(window_budget="2"), "window_budget"),
    (dict(window_budget=(float("nan"),)), "window_budget"),
    (dict(n_windows=2, window_budget=(2.0, 2.0, 2.0)), "window_budget"),
    (dict(window_budget=(1e300,), adam_steps=10), "adam_steps"),
])
def test_bad_settings_rejected_before_training(kw, match):
    problem, calls = _counting(convection(1.0))
    with pytest.raises(ValidationError, match=match):
        _tiny(problem, **kw).fit()
    assert calls["n"] == 0


@pytest.mark.parametrize("X, y, match", [
    (np.zeros((5, 3)), np.zeros(5), r"X must have shape \(n, 2\)"),
    (np.zeros((5, 2)), np.zeros(4), "y must have shape"),
    (np.full((5, 2), np.nan), np.zeros(5), "finite"),
    (np.array([[7.0, 0.5]]), np.zeros(1), r"X column 0 \(x\)"),
    (np.array([[1.0, 2.0]]), np.zeros(1), r"X column 1 \(t\)"),
    (np.zeros((0, 2)), np.zeros(0), "no observations"),
    (None, np.zeros(3), "both X"),
    ([["a", "b"]], [1.0], "numeric"),
])
def test_bad_observations_rejected_before_training(X, y, match):
    problem, calls = _counting(convection(1.0))
    with pytest.raises(ValidationError, match=match):
        _tiny(problem).fit(X, y)
    assert calls["n"] == 0


def test_bad_fit_flags():
    with pytest.raises(ValidationError, match="resume"):
        _tiny().fit(resume="no")
    with pytest.raises(ValidationError, match="overwrite"):
        _tiny().fit(overwrite=1)
    with pytest.raises(ValidationError, match="unknown parameter"):
        _tiny().set_params(colour="blue")


@pytest.mark.parametrize("method, args", [("predict", (0.0, 0.0)), ("evaluate", ()),
                                          ("periodicity_violation", ([0.0],)),
                                          ("boundary_group", ())])
def test_not_fitted(method, args):
    with pytest.raises(NotFittedError, match=method):
        getattr(_tiny(), method)(*args)


def test_threads_from_config_and_restored():
    seen = []
    base = convection(1.0)

    def residual(f):
        seen.append(torch.get_num_threads())
        return base.residual(f)

    problem = PDEProblem(residual, base.initial, base.domain_x, parameters=base.parameters)
    before = torch.get_num_threads()
    with sciTie.config_context(n_threads=2):
        _tiny(problem).fit()
    assert set(seen) == {2} and torch.get_num_threads() == before
    seen.clear()
    with sciTie.config_context(n_threads=2):
        _tiny(problem, n_threads=1).fit()  # the argument wins over the setting
    assert set(seen) == {1} and torch.get_num_threads() == before


def test_plot_refuses_to_replace_an_image(tmp_path):
    m = _tiny().fit()
    png = tmp_path / "result.png"
    png.write_bytes(b"my figure")
    with pytest.raises(OutputExistsError, match="result.png"):
        plot_result(m.result_.data, png)
    assert png.read_bytes() == b"my figure"
    plot_result(m.result_.data, png, overwrite=True)
    assert png.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(IsADirectoryError):
        plot_result(m.result_.data, tmp_path)
    with pytest.raises(ValidationError, match="output"):
        plot_result(m.result_.data, output="v")


def test_plot_has_labelled_colour_bars_and_loss_against_iterations():
    m = _tiny(lbfgs_steps=20).fit()
    fig = plot_result(m.result_.data)
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert "u (PINN prediction)" in labels and any("error" in lab for lab in labels)
    loss_ax = [ax for ax in fig.axes if ax.get_ylabel() == "loss"][0]
    assert loss_ax.get_xlabel() == "optimiser iteration"
    x = loss_ax.get_lines()[0].get_xdata()
    hist = m.history_
    # L-BFGS records cover 10 iterations each: the axis counts iterations, not records
    assert x[-1] == sum(h["iterations"] for h in hist) and len(x) == len(hist)
    import matplotlib.pyplot as plt
    plt.close(fig)


# ------------------------------------------------------------------ issue 19: PINN surfaces
_RAISING = '''
import numpy as np

def residual(f):
    scale = 0.0
    return f.u_t + (1.0 / scale) * f.u_x

def initial(x):
    return np.sin(x)
'''


def _user_recipe(tmp_path, code, extra=""):
    (tmp_path / "my_pde.py").write_text(code)
    path = tmp_path / "my.toml"
    path.write_text('kind = "pinn"\nname = "mine"\n\n[problem]\nfile = "my_pde.py"\n'
                    'domain_x = [0.0, 6.283185307179586]\n' + extra
                    + '\n[model]\nhidden = [6]\nadam_steps = 3\nlm_steps = 2\n'
                    'n_collocation = 32\nn_initial = 16\neval_grid = [9, 5]\n')
    return path


def test_residual_that_raises_is_a_clear_error_from_the_command_line(tmp_path, capsys):
    from sciTie.cli import main

    path = _user_recipe(tmp_path, _RAISING)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert main(["fit", str(path), "--json", str(tmp_path / "out.json")]) != 0
    err = capsys.readouterr().err
    assert "residual raised ZeroDivisionError" in err and "my_pde.py, line 6" in err
    assert "Traceback" not in err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # nothing written


def test_user_functions_that_fail_are_named_before_training():
    base = convection(1.0)
    calls = {"n": 0}

    def residual(f):
        calls["n"] += 1
        return base.residual(f)

    def bad_initial(x):
        return {"u": np.sin(x)}["v"]

    with pytest.raises(ValidationError, match=r"initial raised KeyError.*test_pinn_hardening"):
        _tiny(PDEProblem(residual, bad_initial, base.domain_x,
                         parameters=base.parameters)).fit()
    assert calls["n"] == 0

    def not_pointwise(f):  # fine batched, impossible under torch.vmap (the Gauss-Newton stage)
        r = base.residual(f)
        return r if float(r.sum()) < 1e300 else r

    with pytest.raises(ValidationError, match="residual raised RuntimeError.*point by point"):
        _tiny(PDEProblem(not_pointwise, np.sin, base.domain_x, parameters=base.parameters),
              lm_steps=5, adam_steps=200).fit()
    # the failure came from the check before training, not after 200 Adam steps

    def unknown_field(f):
        return f.u_t + f.w_x

    with pytest.raises(ValidationError, match="residual raised AttributeError.*'w_x'"):
        _tiny(PDEProblem(unknown_field, np.sin, base.domain_x)).fit()

    def raising(f):
        calls["n"] += 1
        return base.residual(f) * (1 / (4 - calls["n"]))  # the fourth call divides by zero

    calls["n"] = 0  # during training too (after the check): named, not a traceback
    with pytest.raises(ValidationError, match="residual raised ZeroDivisionError"):
        _tiny(PDEProblem(raising, np.sin, base.domain_x, parameters=base.parameters),
              adam_steps=10).fit()


def test_checkpoint_with_a_flipped_byte_is_refused(tmp_path):
    ck = tmp_path / "run.pt"
    _tiny(checkpoint=ck, adam_steps=4, checkpoint_every=2).fit()
    data = bytearray(ck.read_bytes())
    body = read_checkpoint(ck)  # readable before
    assert body["stage"] == "done"
    # flip one bit in every region of the file in turn (header, container, tensors): always
    # refused, never resumed
    positions = np.r_[np.arange(0, 120, 7), np.linspace(120, len(data) - 1, 40)].astype(int)
    for pos in positions:
        bad = bytearray(data)
        bad[pos] ^= 0x10
        ck.write_bytes(bytes(bad))
        with pytest.raises(CheckpointError, match="run.pt"):
            _tiny(checkpoint=ck, adam_steps=4, checkpoint_every=2).fit(resume=True)
    ck.write_bytes(bytes(data))
    _tiny(checkpoint=ck, adam_steps=4, checkpoint_every=2).fit(resume=True)  # intact: resumes


def test_checkpoint_of_another_pde_with_the_same_name_is_refused(tmp_path):
    ck = tmp_path / "run.pt"
    base = convection(1.0)
    _tiny(base, checkpoint=ck, adam_steps=4, checkpoint_every=2).fit()
    other_residual = PDEProblem(lambda f: f.u_t - f.parameters["beta"] * f.u_x, base.initial,
                                base.domain_x, base.domain_t, name=base.name,
                                parameters=base.parameters)
    with pytest.raises(CheckpointError, match="problem residual source"):
        _tiny(other_residual, checkpoint=ck, adam_steps=4).fit(resume=True)
    other_initial = PDEProblem(base.residual, np.cos, base.domain_x, base.domain_t,
                               name=base.name, parameters=base.parameters)
    with pytest.raises(CheckpointError, match="problem initial source"):
        _tiny(other_initial, checkpoint=ck, adam_steps=4).fit(resume=True)
    other_beta = convection(1.5)
    with pytest.raises(CheckpointError, match="problem parameters"):
        _tiny(other_beta, checkpoint=ck, adam_steps=4).fit(resume=True)


def test_tied_parameters_strict_false_still_checks_the_structure():
    from sciTie import ParameterGroup
    from sciTie.core.torch import TiedParameters

    g = ParameterGroup("g")
    g.add("a", 1.0)
    g.add("b", 2.0)
    tp = TiedParameters(g)
    foreign = {"free": torch.tensor([5.0, 6.0], dtype=torch.float64)}  # no structure record
    for strict in (True, False):
        with pytest.raises(CheckpointError, match="_extra_state"):
            tp.load_state_dict(foreign, strict=strict)
    assert tp.free.tolist() == [1.0, 2.0]
    h = ParameterGroup("h")
    h.add("a", 1.0)
    h.add("b", 2.0)
    h.tie("b", to="a")
    other = TiedParameters(h).state_dict()
    with pytest.raises(CheckpointError, match="other slots or ties"):
        tp.load_state_dict(other, strict=False)
    tp.load_state_dict(TiedParameters(g).state_dict(), strict=False)  # its own kind loads


def test_nan_in_an_observation_file_is_not_an_hmm_message(tmp_path):
    from sciTie.errors import DataFormatError
    from sciTie.recipes import load_recipe, run_recipe

    (tmp_path / "obs.csv").write_text("x,t,u\n0.5,0.1,0.3\n1.0,nan,0.2\n")
    path = tmp_path / "inv.toml"
    path.write_text('kind = "pinn"\nname = "inv"\n[problem]\nname = "convection"\n'
                    '[inverse]\nlearn = ["beta"]\nobservations = "obs.csv"\n')
    with pytest.raises(DataFormatError, match=r"obs.csv:3 \[t\].*not finite") as err:
        run_recipe(load_recipe(path))
    assert "HMM" not in str(err.value)


def test_device_without_cuda_is_a_validation_error():
    if torch.cuda.is_available():  # pragma: no cover - only on machines with a GPU
        pytest.skip("CUDA is available here")
    for device in ("cuda", "cuda:1", "meta", "xpu"):
        with pytest.raises(ValidationError, match="device"):
            _tiny(device=device).fit()


def test_trainable_period_cannot_reach_zero():
    from sciTie.pinn import window_group
    from sciTie.core.torch import TiedParameters

    g = window_group(convection(1.0), mode="hard", n_modes=2, learn={}, periods={"x": 6.0},
                     trainable_periods=True)
    assert g.free_names == ["log_period_x"]
    tp = TiedParameters(g)
    for step in (-50.0, 50.0):  # an optimiser step as far as it may go
        with torch.no_grad():
            tp.free.fill_(step)
        v = tp.values()
        assert float(v["period_x"]) > 0 and bool(torch.isfinite(v["frequency_x"]).all())
    assert tp.out_of_bounds() == []
    with torch.no_grad():
        tp.free.fill_(math.log(3.0))
    assert torch.allclose(tp.values()["frequency_x"], torch.tensor([2 * math.pi / 3,
                                                                    4 * math.pi / 3],
                                                                   dtype=torch.float64))
    # a start that is not positive is refused before training
    with pytest.raises(ValidationError, match="positive"):
        _tiny(allen_cahn(), learn={"eps": -1e-3}).fit(np.zeros((3, 2)) + 0.5, np.zeros(3))


@pytest.mark.parametrize("call", [
    lambda: __import__("sciTie.pinn", fromlist=["x"]).periodic_tie_group("hardest", 3),
    lambda: __import__("sciTie.pinn", fromlist=["x"]).periodic_tie_group("soft", 0),
    lambda: __import__("sciTie.pinn.data", fromlist=["x"]).load_convection(n_x=1),
    lambda: __import__("sciTie.pinn.data", fromlist=["x"]).load_convection(beta=float("inf")),
])
def test_pinn_raises_scitie_errors(call):
    from sciTie.errors import SciTieError

    with pytest.raises(SciTieError):
        call()
