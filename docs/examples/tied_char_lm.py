"""A character-level language model whose output layer is its input embedding (tied embeddings).

A context of ``context`` characters is embedded (``embedding.weight``, one row per character),
passed through a tanh layer and projected back to the embedding width; the logits of the next
character are the scores against every embedding row, ``logits = E h + b``. Tying the output
weight to the input embedding is one line, ``tie("output.weight", to="embedding.weight")``;
the untied twin has its own output matrix, started equal to the embedding. Trained on eight
public-domain Shakespeare sonnets bundled in ``datasets/shakespeare_sonnets.txt`` (see
``datasets/text.md``); the last 15 % of the text is held out. Run by
``tests/test_torch_examples.py``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sciTie import ParameterGroup
from sciTie.core.torch import TiedParameters

TEXT = Path(__file__).resolve().parents[2] / "datasets" / "shakespeare_sonnets.txt"


def load_text(path: Path = TEXT, *, heldout_fraction: float = 0.15):
    """Lower-cased text as character codes: ``(alphabet, train_codes, heldout_codes)``."""
    text = Path(path).read_text(encoding="utf-8").lower()
    alphabet = sorted(set(text))
    codes = torch.as_tensor([alphabet.index(ch) for ch in text], dtype=torch.long)
    cut = int(round(len(codes) * (1.0 - heldout_fraction)))
    return alphabet, codes[:cut], codes[cut:]


def windows(codes: torch.Tensor, context: int):
    """Every (context, next character) pair of a code sequence."""
    x = codes.unfold(0, context, 1)[:-1]
    return x, codes[context:]


def language_model_group(n_chars: int, *, context: int = 4, width: int = 16, hidden: int = 32,
                         tied: bool = True, seed: int = 0) -> ParameterGroup:
    """Weights of the model; ``tied``: output weight = input embedding (same shape)."""
    rng = np.random.default_rng(seed)
    group = ParameterGroup("char_lm")
    embedding = rng.normal(0.0, 0.3, (n_chars, width))
    parts = {"embedding": {"weight": embedding},
             "mix": {"weight": rng.uniform(-1, 1, (hidden, context * width)) / np.sqrt(
                 context * width), "bias": np.zeros(hidden)},
             "project": {"weight": rng.uniform(-1, 1, (width, hidden)) / np.sqrt(hidden),
                         "bias": np.zeros(width)},
             "output": {"weight": embedding.copy(), "bias": np.zeros(n_chars)}}
    for part, params in parts.items():
        child = group.add_group(ParameterGroup(part))
        for name, value in params.items():
            child.add(name, value)
    if tied:
        group.tie("output.weight", to="embedding.weight")
    return group


class CharLM(nn.Module):
    """Logits of the next character from the ``context`` characters before it."""

    def __init__(self, group: ParameterGroup) -> None:
        super().__init__()
        self.weights = TiedParameters(group)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weights.values()
        e = F.embedding(x, w["embedding.weight"]).flatten(1)
        h = torch.tanh(F.linear(e, w["mix.weight"], w["mix.bias"]))
        h = F.linear(h, w["project.weight"], w["project.bias"])
        return F.linear(h, w["output.weight"], w["output.bias"])


def bits_per_char(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean cross-entropy of the next character, in bits."""
    with torch.no_grad():
        return F.cross_entropy(model(x), y).item() / float(np.log(2.0))


def unigram_bits_per_char(train: torch.Tensor, heldout: torch.Tensor, n_chars: int) -> float:
    """Reference: held-out cross-entropy of the training character frequencies (add-one)."""
    counts = torch.bincount(train, minlength=n_chars).double() + 1.0
    return float(-(counts / counts.sum()).log2()[heldout].mean())


def compare(*, context: int = 4, width: int = 16, hidden: int = 32, epochs: int = 20,
            batch_size: int = 128, lr: float = 3e-3, seed: int = 0) -> dict[str, Any]:
    """Train the tied model and its untied twin from the same start; counts and losses.

    Returns ``{"tied": row, "untied": row, "unigram_bits": float}``; each row holds
    ``n_free``, ``train_bits``, ``heldout_bits`` (bits per character) and the trained
    ``group``. The defaults stop near the held-out optimum of both models: a few kilobytes
    of text are quickly over-fitted.
    """
    torch.manual_seed(seed)
    alphabet, train_codes, heldout_codes = load_text()
    x_train, y_train = windows(train_codes, context)
    x_held, y_held = windows(heldout_codes, context)
    rows: dict[str, Any] = {}
    for tied in (True, False):
        model = CharLM(language_model_group(len(alphabet), context=context, width=width,
                                            hidden=hidden, tied=tied, seed=seed))
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        rng = np.random.default_rng(seed)
        for _ in range(epochs):
            order = rng.permutation(len(x_train))
            for batch in np.array_split(order, max(1, len(order) // batch_size)):
                optimizer.zero_grad()
                F.cross_entropy(model(x_train[batch]), y_train[batch]).backward()
                optimizer.step()
        rows["tied" if tied else "untied"] = {
            "n_free": model.weights.n_free,
            "train_bits": bits_per_char(model, x_train, y_train),
            "heldout_bits": bits_per_char(model, x_held, y_held),
            "group": model.weights.to_group()}
    rows["unigram_bits"] = unigram_bits_per_char(train_codes, heldout_codes, len(alphabet))
    return rows
