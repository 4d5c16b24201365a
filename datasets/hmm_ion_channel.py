"""Generate the synthetic ion-channel record (the ``ion-channel`` dataset).

The record is produced by :func:`sciTie.hmm.data.simulate_ion_channel` (fixed seed), the same
function the loader calls, so this script only writes a copy for inspection and prints the
true parameters and a few checks. It never overwrites an existing file.

Usage: ``python datasets/hmm_ion_channel.py [OUT.nc] [--n-samples N] [--seed S]``
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from sciTie.hmm.data import ion_channel_truth, simulate_ion_channel


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", nargs="?", help="netCDF file to write (optional)")
    p.add_argument("--n-samples", type=int, default=200_000)
    p.add_argument("--seed", type=int, default=20240607)
    a = p.parse_args(argv)
    ds = simulate_ion_channel(n_samples=a.n_samples, seed=a.seed)
    truth = ion_channel_truth()
    print(ds.attrs["scheme"])
    print("true per-sample transition matrix:")
    print(np.array2string(truth["transmat"], precision=4))
    print("rates (1/ms):", ds.attrs["true_rates_per_ms"])
    occ = np.bincount(ds["state"].values, minlength=5) / ds.sizes["time"]
    print("state occupancy (simulated / stationary):")
    print("  ", np.round(occ, 4), "/", np.round(truth["startprob"], 4))
    if a.out:
        out = Path(a.out)
        if out.exists():
            print(f"refusing to overwrite {out}", file=sys.stderr)
            return 1
        ds.to_netcdf(out)
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
