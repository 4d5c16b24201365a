"""Regenerate (and optionally write) the synthetic X-ray + neutron pair of sciTie.diffraction.

The data are generated on load by package code (``sciTie.diffraction.data.make_synthetic``),
deterministically from a seed; this script prints a summary and, with ``--out``, writes the
two patterns as xye files (never overwriting existing files) so that other programs (GSAS-II,
FullProf) can refine the same data.

Usage: ``python datasets/diffraction_synthetic.py [--seed 0] [--out FOLDER]``
"""
from __future__ import annotations

import argparse
from pathlib import Path

from sciTie.diffraction import write_xye
from sciTie.diffraction.data import SYNTHETIC_TRUTH, make_synthetic


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="folder for xray.xye and neutron.xye")
    a = ap.parse_args()
    data = make_synthetic(a.seed)
    print("truth:", SYNTHETIC_TRUTH)
    for key, ds in data.items():
        tth = ds["two_theta"].values
        print(f"{key:8s} {tth.size} points {tth[0]:.2f}-{tth[-1]:.2f} deg, "
              f"lambda {ds.attrs['lam1']} A, max counts {ds['intensity'].values.max():.0f}")
        if a.out:
            out = Path(a.out)
            out.mkdir(parents=True, exist_ok=True)
            print("wrote", write_xye(ds["intensity"], out / f"{key}.xye"))


if __name__ == "__main__":
    main()
