"""A tied autoencoder on scikit-learn's digits: the decoder weight is the encoder weight transposed.

The tie is one line of the core's vocabulary, ``tie("decoder.weight", to="encoder.weight",
transpose=True)``, and :class:`~sciTie.core.torch.TiedParameters` trains it: the optimiser
sees one free vector, the network reads both weights from it. The untied twin is the same
group without that line, started from the same weights. Included in ``docs/extending.rst``
and run by ``tests/test_torch_examples.py``.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sciTie import ParameterGroup
from sciTie.core.torch import TiedParameters


def load_digits_split(*, test_fraction: float = 0.25, seed: int = 0):
    """The 1797 8x8 digits of scikit-learn (bundled, no download), scaled to [0, 1].

    Returns float64 tensors ``(x_train, x_test)`` from a seeded random split.
    """
    from sklearn.datasets import load_digits

    x = load_digits().data / 16.0
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(test_fraction * len(x)))
    x = torch.as_tensor(x[order], dtype=torch.float64)
    return x[n_test:], x[:n_test]


def autoencoder_group(n_in: int = 64, n_hidden: int = 16, *, tied: bool = True,
                      seed: int = 0) -> ParameterGroup:
    """Weights of a one-hidden-layer autoencoder; ``tied``: decoder weight = encoder weightᵀ.

    The decoder weight starts as the encoder weight transposed in both variants, so the tied
    and the untied network start from the same function.
    """
    rng = np.random.default_rng(seed)
    bound = 1.0 / np.sqrt(n_in)
    w = rng.uniform(-bound, bound, (n_hidden, n_in))
    group = ParameterGroup("autoencoder")
    encoder = group.add_group(ParameterGroup("encoder"))
    decoder = group.add_group(ParameterGroup("decoder"))
    encoder.add("weight", w)
    encoder.add("bias", np.zeros(n_hidden))
    decoder.add("weight", w.T)
    decoder.add("bias", np.zeros(n_in))
    if tied:
        group.tie("decoder.weight", to="encoder.weight", transpose=True)
    return group


class Autoencoder(nn.Module):
    """``x -> W_d tanh(W_e x + b_e) + b_d`` with its weights in one tied group."""

    def __init__(self, group: ParameterGroup) -> None:
        super().__init__()
        self.weights = TiedParameters(group)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weights.values()     # one evaluation of the tie map per forward pass
        hidden = torch.tanh(F.linear(x, w["encoder.weight"], w["encoder.bias"]))
        return F.linear(hidden, w["decoder.weight"], w["decoder.bias"])


def train(model: nn.Module, x: torch.Tensor, *, epochs: int = 60, batch_size: int = 64,
          lr: float = 1e-2, seed: int = 0) -> nn.Module:
    """Adam on the mean squared reconstruction error, minibatches in a seeded order."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        for batch in np.array_split(rng.permutation(len(x)), max(1, len(x) // batch_size)):
            optimizer.zero_grad()
            F.mse_loss(model(x[batch]), x[batch]).backward()
            optimizer.step()
    return model


def pca_heldout_mse(x_train: torch.Tensor, x_test: torch.Tensor, n_components: int) -> float:
    """Reference: held-out error of the best rank-``n_components`` linear reconstruction (PCA)."""
    mean = x_train.mean(0)
    basis = torch.linalg.svd(x_train - mean, full_matrices=False).Vh[:n_components].T
    return F.mse_loss((x_test - mean) @ basis @ basis.T + mean, x_test).item()


def compare(*, n_hidden: int = 16, epochs: int = 60, seed: int = 0) -> dict[str, Any]:
    """Train the tied autoencoder and its untied twin; parameter counts and losses of each.

    Returns ``{"tied": row, "untied": row, "pca_heldout_mse": float}``; each row holds
    ``n_free`` (trained numbers), ``n_slots`` (numbers the network reads), ``train_mse``,
    ``heldout_mse`` (per pixel, on the 25 % of the digits not trained on) and the trained
    ``group``.
    """
    torch.manual_seed(seed)
    x_train, x_test = load_digits_split(seed=seed)
    rows: dict[str, Any] = {}
    for tied in (True, False):
        model = train(Autoencoder(autoencoder_group(64, n_hidden, tied=tied, seed=seed)),
                      x_train, epochs=epochs, seed=seed)
        with torch.no_grad():
            rows["tied" if tied else "untied"] = {
                "n_free": model.weights.n_free, "n_slots": model.weights.n_slots,
                "train_mse": F.mse_loss(model(x_train), x_train).item(),
                "heldout_mse": F.mse_loss(model(x_test), x_test).item(),
                "group": model.weights.to_group()}
    rows["pca_heldout_mse"] = pca_heldout_mse(x_train, x_test, n_hidden)
    return rows
