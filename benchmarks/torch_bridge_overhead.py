"""Overhead of training through :class:`sciTie.core.torch.TiedParameters` versus plain torch.

One autoencoder (``n_in -> n_hidden -> n_in``, tanh; about 10^5 weights with the defaults) is
trained with Adam on the same random data, from the same initial weights, four ways (three
untimed warm-up steps each, then the best of ``--repeats`` timings, alternating the two):

* ``untied``: plain ``nn.Linear`` layers  vs  the bridge with every slot free;
* ``tied``:   plain torch tying by identity (``F.linear(h, encoder.weight.t())``)  vs  the
  bridge with ``tie("decoder.weight", to="encoder.weight", transpose=True)``.

It prints CPU seconds per step of each and the ratio bridge / plain torch (1.0 = no
overhead), the one-off cost of building the group and the module, and checks that both ways
end at the same weights (they compute the same function, so they must).

Examples
--------
    python benchmarks/torch_bridge_overhead.py                  # float64, 1 thread
    python benchmarks/torch_bridge_overhead.py --dtype float32 --steps 100
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from sciTie import ParameterGroup
from sciTie.core.torch import TiedParameters


def initial_weights(n_in: int, n_hidden: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    bound_e, bound_d = 1 / np.sqrt(n_in), 1 / np.sqrt(n_hidden)
    return {"encoder.weight": rng.uniform(-bound_e, bound_e, (n_hidden, n_in)),
            "encoder.bias": rng.uniform(-bound_e, bound_e, n_hidden),
            "decoder.weight": rng.uniform(-bound_d, bound_d, (n_in, n_hidden)),
            "decoder.bias": rng.uniform(-bound_d, bound_d, n_in)}


def build_group(w: dict[str, np.ndarray], tied: bool) -> ParameterGroup:
    root = ParameterGroup("autoencoder")
    for part in ("encoder", "decoder"):
        child = root.add_group(ParameterGroup(part))
        for leaf in ("weight", "bias"):
            child.add(leaf, w[f"{part}.{leaf}"])
    if tied:
        root.tie("decoder.weight", to="encoder.weight", transpose=True)
    return root


def plain_parameters(w, tied, dtype):
    names = [n for n in w if not (tied and n == "decoder.weight")]
    return {n: torch.nn.Parameter(torch.tensor(w[n], dtype=dtype)) for n in names}


def forward(p, x, tied):
    h = torch.tanh(F.linear(x, p["encoder.weight"], p["encoder.bias"]))
    w_dec = p["encoder.weight"].t() if tied else p["decoder.weight"]
    return F.linear(h, w_dec, p["decoder.bias"])


def train(params_of, parameters, x, steps, tied, warmup=3):
    """CPU seconds per Adam step (after ``warmup`` untimed steps) and the final loss.

    CPU time of this process, not wall time: the figure is then little affected by other
    programs sharing the machine (run with one thread, as by default).
    """
    opt = torch.optim.Adam(parameters, lr=1e-3)
    start = time.process_time()
    for step in range(warmup + steps):
        if step == warmup:
            start = time.process_time()
        opt.zero_grad(set_to_none=True)
        loss = F.mse_loss(forward(params_of(), x, tied), x)
        loss.backward()
        opt.step()
    return (time.process_time() - start) / steps, float(loss.detach())


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-in", type=int, default=400)
    p.add_argument("--n-hidden", type=int, default=128)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--repeats", type=int, default=5, help="best of this many timings")
    p.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    w = initial_weights(args.n_in, args.n_hidden, args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    x = torch.rand(args.batch, args.n_in, generator=gen, dtype=dtype)
    n_slots = sum(v.size for v in w.values())
    print(f"autoencoder {args.n_in}-{args.n_hidden}-{args.n_in}: {n_slots} slots, batch "
          f"{args.batch}, {args.steps} Adam steps, {args.dtype}, {args.threads} thread(s), "
          f"best of {args.repeats}")
    print(f"{'variant':<8} {'plain s/step':>13} {'bridge s/step':>14} {'ratio':>7} "
          f"{'n_free':>8} {'build s':>8} {'max |dw|':>9}")
    for tied in (False, True):
        best_plain = best_bridge = np.inf
        for _ in range(args.repeats):
            plain = plain_parameters(w, tied, dtype)
            t_plain, _ = train(lambda: plain, list(plain.values()), x, args.steps, tied)
            start = time.process_time()
            tp = TiedParameters(build_group(w, tied), dtype=dtype)
            build = time.process_time() - start
            t_bridge, _ = train(tp.values, tp.parameters(), x, args.steps, tied)
            best_plain, best_bridge = min(best_plain, t_plain), min(best_bridge, t_bridge)
        with torch.no_grad():
            got = tp.values()
            diff = max(float((got[n] - plain[n]).abs().max()) for n in plain)
        print(f"{'tied' if tied else 'untied':<8} {best_plain:>13.2e} {best_bridge:>14.2e} "
              f"{best_bridge / best_plain:>7.3f} {tp.n_free:>8d} {build:>8.2f} {diff:>9.1e}")


if __name__ == "__main__":
    main()
