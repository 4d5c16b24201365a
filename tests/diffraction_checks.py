"""Shared checks of the diffraction tests."""
import numpy as np


def fd_check(pat, v, names, tol):
    """Every Jacobian column of ``pat`` at ``v`` against central differences (relative to
    the column's largest entry, within ``tol``); returns the names that were checked (those
    with no effect, e.g. a coordinate on a mirror plane, are skipped)."""
    y, J = pat.evaluate(v)
    checked = []
    for j, name in enumerate(names):
        h = 1e-9 if name.split(".")[-1].startswith("D") else 1e-6 * max(1.0, abs(v[j]))
        vp, vm = v.copy(), v.copy()
        vp[j] += h
        vm[j] -= h
        fd = (pat.evaluate(vp, grad=False)[0] - pat.evaluate(vm, grad=False)[0]) / (2 * h)
        scale = max(np.abs(fd).max(), np.abs(J[:, j]).max())
        if scale * max(1.0, abs(v[j])) <= 1e-9 * np.abs(y).max():
            continue
        assert np.abs(fd - J[:, j]).max() / scale < tol, name
        checked.append(name)
    return checked
