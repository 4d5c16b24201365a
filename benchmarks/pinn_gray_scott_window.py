"""Gray-Scott's first time window with one change to the recipe: how far off, at what cost.

Fits :class:`sciTie.pinn.PeriodicPINN` on ``gray_scott(t_final=...)`` with one window and
the recipe's other settings, changed by ``--set key=value`` (a Python literal), one torch
thread, seed 0; prints one JSON line: relative L2 of ``u``, ``v`` and both on a 64^2 x 21
grid over the interval, ``v``'s error at its start and end, the error of each field at
every grid time, the last loss record, and the fit's CPU seconds (this process: the honest
measure on a shared machine). Run one setting per process (docs/pinn.rst, Gray-Scott).

Examples
--------
    PYTHONPATH=$PWD python benchmarks/pinn_gray_scott_window.py --t-final 0.2 --set n_modes=8
    PYTHONPATH=$PWD python benchmarks/pinn_gray_scott_window.py --set 'hidden=(32, 32, 32)'
"""
from __future__ import annotations

import argparse
import ast
import json
import os

import numpy as np
import torch

from sciTie.pinn import PeriodicPINN, gray_scott


def _relative(error: np.ndarray, ref: np.ndarray) -> float:
    return float(np.linalg.norm(error) / np.linalg.norm(ref))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--t-final", type=float, default=0.2,
                        help="end of the window (default 0.2, the recipe's first window)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a PeriodicPINN setting, the value a Python literal; repeatable")
    args = parser.parse_args()
    changes = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set expects KEY=VALUE; got {item!r}")
        changes[key] = ast.literal_eval(value)
    changes.setdefault("n_windows", 1)
    torch.set_num_threads(1)
    model = PeriodicPINN(gray_scott(t_final=args.t_final), n_threads=1, random_state=0,
                         progress=False, **changes).fit()
    ds = model.evaluate(64, 64, 21)
    out = {"t_final": args.t_final, "changes": {k: repr(v) for k, v in changes.items()},
           "rel_l2": ds.attrs["rel_l2"], "cpu_s": model.fit_cpu_seconds_,
           "wall_s": model.fit_seconds_, "load": os.getloadavg()[0]}
    for o in ("u", "v"):
        e, r = ds[f"{o}_error"].values, ds[f"{o}_ref"].values  # dims (t, x, y)
        out[f"rel_l2_{o}"] = ds.attrs[f"rel_l2_{o}"]
        out[f"{o}_by_t"] = [round(_relative(e[i], r[i]), 4) for i in range(e.shape[0])]
    last = model.history_[-1] if model.history_ else {}
    out["last"] = {k: float(v) for k, v in last.items() if isinstance(v, (int, float))}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
