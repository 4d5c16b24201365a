"""The two tied-network examples of the docs (autoencoder on digits, character model on sonnets).

Checked against independent references: plain torch networks tied by identity, PCA (the best
linear reconstruction) and the mean image for the autoencoder, the unigram character
frequencies for the language model; parameter counts against the architecture's arithmetic.
"""
import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")
import torch.nn.functional as F  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs" / "examples"))
import tied_autoencoder as ae  # noqa: E402
import tied_char_lm as lm  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def autoencoder_rows():
    return ae.compare()


@pytest.fixture(scope="module")
def language_rows():
    return lm.compare()


def test_autoencoder_parameter_counts_follow_the_architecture(autoencoder_rows):
    tied, untied = autoencoder_rows["tied"], autoencoder_rows["untied"]
    assert tied["n_slots"] == untied["n_slots"] == 2 * 64 * 16 + 16 + 64
    assert untied["n_free"] == untied["n_slots"]
    assert tied["n_free"] == 64 * 16 + 16 + 64          # one weight matrix, two biases
    values = tied["group"].valuesdict()
    np.testing.assert_array_equal(values["decoder.weight"], values["encoder.weight"].T)


def test_autoencoder_losses_against_pca_and_the_mean_image(autoencoder_rows):
    x_train, x_test = ae.load_digits_split()
    mean_image = F.mse_loss(x_train.mean(0).expand_as(x_test), x_test).item()
    pca = autoencoder_rows["pca_heldout_mse"]
    # the linear rank-16 optimum, computed independently with numpy
    X, T = x_train.numpy(), x_test.numpy()
    mu = X.mean(0)
    V = np.linalg.svd(X - mu, full_matrices=False)[2][:16].T
    assert pca == pytest.approx(np.mean(((T - mu) @ V @ V.T + mu - T) ** 2), rel=1e-10)
    for name in ("tied", "untied"):
        row = autoencoder_rows[name]
        assert row["heldout_mse"] < mean_image / 4, name    # learned far more than the mean
        assert row["heldout_mse"] < 1.25 * pca, name        # close to the linear optimum
        assert row["train_mse"] <= row["heldout_mse"] * 1.1, name


def test_bridge_trains_exactly_like_plain_torch_tied_by_identity():
    x_train, _ = ae.load_digits_split()
    group = ae.autoencoder_group(64, 8, tied=True, seed=3)
    bridged = ae.train(ae.Autoencoder(group), x_train, epochs=2, seed=3)
    start = group.valuesdict()
    w = torch.nn.Parameter(torch.tensor(start["encoder.weight"]))
    b_e = torch.nn.Parameter(torch.tensor(start["encoder.bias"]))
    b_d = torch.nn.Parameter(torch.tensor(start["decoder.bias"]))

    class Plain(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w, self.b_e, self.b_d = w, b_e, b_d

        def forward(self, x):
            return F.linear(torch.tanh(F.linear(x, self.w, self.b_e)), self.w.t(), self.b_d)

    ae.train(Plain(), x_train, epochs=2, seed=3)
    values = bridged.weights.values()
    torch.testing.assert_close(values["encoder.weight"], w, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(values["decoder.bias"], b_d, rtol=1e-9, atol=1e-12)


def test_examples_are_reproducible():
    first = ae.compare(epochs=2, n_hidden=4)
    second = ae.compare(epochs=2, n_hidden=4)
    assert first["tied"]["heldout_mse"] == second["tied"]["heldout_mse"]
    assert first["untied"]["heldout_mse"] == second["untied"]["heldout_mse"]
    one, two = lm.compare(epochs=1), lm.compare(epochs=1)
    assert one["tied"]["heldout_bits"] == two["tied"]["heldout_bits"]
    assert one["untied"]["heldout_bits"] == two["untied"]["heldout_bits"]


def test_language_model_counts_and_the_tie(language_rows):
    alphabet, _, _ = lm.load_text()
    n, width, context, hidden = len(alphabet), 16, 4, 32
    shared = n * width
    body = hidden * context * width + hidden + width * hidden + width + n
    assert language_rows["tied"]["n_free"] == shared + body
    assert language_rows["untied"]["n_free"] == 2 * shared + body
    values = language_rows["tied"]["group"].valuesdict()
    np.testing.assert_array_equal(values["output.weight"], values["embedding.weight"])


def test_language_model_beats_character_frequencies(language_rows):
    alphabet, train, heldout = lm.load_text()
    counts = np.bincount(train.numpy(), minlength=len(alphabet)) + 1.0
    unigram = -np.mean(np.log2(counts / counts.sum())[heldout.numpy()])
    assert language_rows["unigram_bits"] == pytest.approx(unigram, rel=1e-12)
    for name in ("tied", "untied"):
        row = language_rows[name]
        assert row["heldout_bits"] < unigram - 0.5, name
        assert row["train_bits"] < row["heldout_bits"], name


def test_bundled_text_matches_its_provenance_note():
    path = ROOT / "datasets" / "shakespeare_sonnets.txt"
    data = path.read_bytes()
    assert len(data) == 4967
    digest = hashlib.sha256(data).hexdigest()
    note = (ROOT / "datasets" / "text.md").read_text()
    assert f"sha256 `{digest}`" in note
    verse = [line for line in data.decode().splitlines() if line and not line.isupper()]
    assert len(verse) == 8 * 14
