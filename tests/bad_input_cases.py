"""Helpers of the bad-input suites (test_bad_inputs*.py): tables of expected failures, the
small files a user's folder holds, and snapshots that show nothing of the user's changed."""
import hashlib
import os
from pathlib import Path

import pytest


def cases(table):
    """Parametrise a table of ``(..., fragment)`` rows with readable ids."""
    out = []
    for i, row in enumerate(table):
        label = "".join(c if c.isalnum() else "_" for c in str(row[-1]))[:40].strip("_")
        out.append(pytest.param(*row, id=f"{i:03d}-{label}"))
    return out


def check(call, exc, fragment):
    """``call()`` raises ``exc`` whose message contains ``fragment``."""
    with pytest.raises(exc) as info:
        call()
    assert fragment in str(info.value), f"{fragment!r} not in message: {info.value}"
    return info.value


# a user's small files, shared by the suites
HMM_RECIPE = """kind = "hmm"
name = "tiny"
[data]
file = "data.csv"
columns = ["x"]
[model]
family = "gaussian"
n_components = 2
[fit]
n_iter = 5
"""

PINN_RECIPE = """kind = "pinn"
name = "tinypinn"
[problem]
file = "res.py"
domain_x = [0.0, 6.283185307179586]
[model]
hidden = [6]
adam_steps = 2
n_collocation = 32
n_initial = 16
n_boundary = 8
eval_grid = [9, 5]
"""

RESIDUAL = """import numpy as np

def residual(f):
    return f.u_t + f.u_x

def initial(x):
    return np.sin(x)
"""

PRM = ("            123456789012345678901234567890123456789012345678901234567890\n"
       "INS   BANK      1\n"
       "INS   HTYPE   PXCR\n"
       "INS  1 IRAD     3\n"
       "INS  1 ICONS  1.540500  1.544300       0.0         0       0.7    0       0.5\n"
       "INS  1PRCF1     3    8      0.01\n"
       "INS  1PRCF11   2.000000E+00  -2.000000E+00   5.000000E+00   0.100000E+00\n"
       "INS  1PRCF12   0.000000E+00   0.000000E+00   0.015000E+00   0.015000E+00\n")


def snapshot(folder: Path) -> dict[str, str]:
    """Every entry under ``folder`` (links not followed): relative path -> the SHA-256 of a
    file's bytes, ``"-> target"`` for a symbolic link, ``"folder"`` for a folder. Equal
    snapshots before and after a run: nothing was created, removed or changed."""
    out: dict[str, str] = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root) / name
            rel = str(path.relative_to(folder))
            if path.is_symlink():
                out[rel] = f"-> {os.readlink(path)}"
            elif path.is_dir():
                out[rel] = "folder"
            else:
                out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def small_pattern() -> dict:
    """A tiny TiO2 pattern (20-60 degrees, calculated at the truth with Poisson noise), its
    instrument and profile values."""
    import numpy as np

    from sciTie.diffraction import ConstantWavelength, PowderPattern, make_pattern
    from sciTie.diffraction.data import _SYN_INSTRUMENT, synthetic_phase

    ph = synthetic_phase()
    tth = np.arange(20.0, 60.0, 0.04)
    inst = {k: _SYN_INSTRUMENT["xray"][k] for k in ("lam1", "lam2", "ratio", "polarization")}
    prof = {k: _SYN_INSTRUMENT["xray"][k] for k in ("U", "V", "W", "X", "Y")}
    flat = make_pattern(tth, np.ones_like(tth), np.ones_like(tth))
    pat = PowderPattern(flat, ph, ConstantWavelength(radiation="xray", **inst, **prof),
                        n_background=2)
    pat.group["scale"].value = 2e3
    y = pat.calc()[0] + 50.0
    obs = np.random.default_rng(0).poisson(y).astype(float)
    return {"data": make_pattern(tth, obs, np.maximum(obs, 1.0)), "inst": inst, "prof": prof}


def rietveld_recipe() -> str:
    """A ``rietveld`` recipe of the TiO2 pattern ``x.xye`` and its CIF ``rutile.cif``."""
    from sciTie.diffraction.data import _SYN_INSTRUMENT

    return f"""kind = "rietveld"
name = "r"

[[phases]]
cif = "rutile.cif"

[[patterns]]
name = "xray"
file = "x.xye"
radiation = "xray"
lam1 = {_SYN_INSTRUMENT["xray"]["lam1"]}
n_background = 3

[[stages]]
pattern = ["scale", "bkg"]
"""
