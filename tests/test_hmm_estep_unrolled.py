"""The E-step's recursions written out per number of states against the generic lane
recursions (bitwise, statistics to rounding) and against a direct log-space forward-backward in numpy."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp

from sciTie.hmm import _estep_kernels as ek

# lengths of 1 to 9 sequences: ones, twos, odd and long ones, in lanes of unequal rows
LENGTHS = [[1], [2], [333], [1, 1], [2, 97], [1, 2, 3], [301, 2, 1, 77], [5, 1, 250, 3, 1],
           [64, 33, 1, 2, 129, 7], [1, 2, 3, 4, 5, 6, 7], [200, 1, 3, 150, 2, 99, 31, 64],
           [17, 1, 2, 300, 45, 9, 1, 2, 88]]


def _model(K, D, rng):
    A = rng.dirichlet(np.full(K, 2.0), size=K) + 4 * np.eye(K)
    A /= A.sum(axis=1, keepdims=True)
    return (rng.dirichlet(np.ones(K)), A, rng.normal(scale=2.0, size=(K, D)),
            rng.uniform(0.5, 2.0, size=(K, D)))


def _gaussian_table(X, means, var):
    """log N(x_t | means[k], diag(var[k])), directly."""
    diff = X[:, None, :] - means[None]
    return -0.5 * (np.log(2 * np.pi * var)[None] + diff ** 2 / var[None]).sum(axis=2)


def _log_space(startprob, A, lp, lengths, X):
    """Log-likelihood, posteriors and the E-step statistics by a log-space forward-backward."""
    K = A.shape[0]
    with np.errstate(divide="ignore"):
        la, ls = np.log(A), np.log(startprob)
    ll, post, xi, start = 0.0, [], np.zeros((K, K)), np.zeros(K)
    for t0, T in zip(np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths):
        e = lp[t0:t0 + T]
        fwd, bwd = np.empty((T, K)), np.zeros((T, K))
        fwd[0] = ls + e[0]
        for t in range(1, T):
            fwd[t] = logsumexp(fwd[t - 1][:, None] + la, axis=0) + e[t]
        for t in range(T - 2, -1, -1):
            bwd[t] = logsumexp(la + (e[t + 1] + bwd[t + 1])[None], axis=1)
        lls = logsumexp(fwd[-1])
        ll += lls
        g = np.exp(fwd + bwd - lls)
        post.append(g)
        start += g[0]
        if T > 1:
            xi += np.exp(fwd[:-1, :, None] + la[None] + (e[1:] + bwd[1:])[:, None, :]
                         - lls).sum(axis=0)
    post = np.concatenate(post)
    return ll, post, (xi, post.sum(axis=0), start, post.T @ X, post.T @ X ** 2)


def _ours(sp, A, lengths, lp, X, gauss, unrolled):
    post = np.empty((int(np.sum(lengths)), A.shape[0]))
    kw = {"gaussian": gauss} if gauss is not None else {"table": lp}
    ll, bad, (xi_acc, xi_full, p, start, obs, obs2) = ek.estep(
        sp, A, np.asarray(lengths, np.int64), X=X, n_moments=2, posteriors=post,
        unrolled=unrolled, **kw)
    assert bad == -1
    return ll, post, (xi_acc * A + xi_full, p, start, obs.T, obs2.T)


def _check(K, lengths, rng, *, gaussian, lp=None, A=None, sp=None, X=None):
    D = 2
    sp0, A0, means, var = _model(K, D, rng)
    sp, A = (sp0 if sp is None else sp), (A0 if A is None else A)
    T = int(np.sum(lengths))
    X = rng.normal(scale=2.0, size=(T, D)) if X is None else X
    gauss = None
    if gaussian:
        gauss = (means, 0.5 / var, -0.5 * (D * np.log(2 * np.pi) + np.log(var).sum(axis=1)))
        lp = _gaussian_table(X, means, var)
    elif lp is None:
        lp = _gaussian_table(X, means, var)
    generic = _ours(sp, A, lengths, lp, X, gauss, False)
    unrolled = _ours(sp, A, lengths, lp, X, gauss, True)
    # the written-out steps do the generic steps' arithmetic: the log-likelihood and the
    # posteriors equal to the last bit. The statistics' sums may differ in the last bits:
    # the generic accumulation has the reassociation licence, and how LLVM vectorises it
    # depends on the compiled specialisation (one element was 1 ulp off, 326.85874190876416
    # against ...6420, in one full-suite run; bitwise equal when this file runs alone).
    assert unrolled[0] == generic[0]
    np.testing.assert_array_equal(unrolled[1], generic[1])
    for a, b in zip(unrolled[2], generic[2]):
        np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-14 * max(1.0, np.abs(b).max()))
    ll_ref, post_ref, stats_ref = _log_space(sp, A, lp, lengths, X)
    assert unrolled[0] == pytest.approx(ll_ref, rel=1e-12, abs=1e-9)
    np.testing.assert_allclose(unrolled[1], post_ref, rtol=0, atol=1e-10)
    for a, b in zip(unrolled[2], stats_ref):
        np.testing.assert_allclose(a, np.reshape(b, a.shape), rtol=1e-9, atol=1e-9 * T)


@pytest.mark.parametrize("K", [2, 3])
@pytest.mark.parametrize("lengths", LENGTHS)
def test_unrolled_equals_generic_and_log_space(K, lengths):
    _check(K, lengths, np.random.default_rng(K * 100 + len(lengths)),
           gaussian=len(lengths) % 2 == 0)


@pytest.mark.slow
@pytest.mark.parametrize("K", [8, 12])
@pytest.mark.parametrize("lengths", LENGTHS)
def test_unrolled_equals_generic_and_log_space_many_states(K, lengths):
    _check(K, lengths, np.random.default_rng(K * 100 + len(lengths)),
           gaussian=len(lengths) % 2 == 0)


@pytest.mark.parametrize("K", [2, 3])
def test_unrolled_guards(K):
    """Forward normalisers below the guard and backward predictions too small to divide by,
    in several lanes and at chunk edges: state 1 is entered with probability 1e-300 and is
    the only one that explains the marked rows."""
    rng = np.random.default_rng(7)
    lengths = [70, 3, 45, 66, 2, 40]
    T = sum(lengths)
    A = np.full((K, K), 1.0 / K)
    A[:, 1] = 1e-300
    A[1, 1] = 1.0 / K
    A /= A.sum(axis=1, keepdims=True)
    sp = np.zeros(K)
    sp[0] = 1.0
    lp = rng.normal(scale=0.1, size=(T, K)) - 1.0
    lp[:, 1] = -700.0
    offsets = np.cumsum([0] + lengths[:-1])
    for row in [offsets[0] + 31, offsets[0] + 32, offsets[2] + 5, offsets[3] + 63,
                offsets[5] + 39]:
        lp[row] = -700.0
        lp[row, 1] = 0.0
    _check(K, lengths, rng, gaussian=False, lp=lp, A=A, sp=sp)


def test_generic_steps_beyond_the_unrolled_limit():
    rng = np.random.default_rng(3)
    sp, A, means, var = _model(13, 1, rng)
    assert 13 > ek.UNROLL_MAX_STATES  # the default is the generic steps here
    lengths = np.array([50, 60], np.int64)
    X = rng.normal(size=(110, 1))
    lp = _gaussian_table(X, means, var)
    ll, _, _ = ek.estep(sp, A, lengths, table=lp, X=X)
    assert ll == pytest.approx(_log_space(sp, A, lp, lengths, X)[0], rel=1e-12)


def test_lane_major_x_holds_each_lanes_rows_and_zeros_past_its_end():
    """The layout the group passes read: chunk ``c`` of group ``g`` at ``base[g] + c * D *
    STEPS * LANES``, viewed ``(D, STEPS, LANES)``; a group with a lone block is skipped."""
    from sciTie.hmm._estep_lanes import LANES, STEPS

    rng = np.random.default_rng(11)
    lengths = np.array([70, 3, 45, 66, 2, 40, 33], np.int64)  # groups of 4 and 3 lanes
    X = rng.normal(size=(int(lengths.sum()), 3))
    values, base = ek.x_lanes(X, lengths)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    size = 3 * STEPS * LANES
    for b, (lo, n) in enumerate(zip(offsets[:-1], lengths)):
        g, lane = divmod(b, LANES)
        S = lengths[g * LANES:(g + 1) * LANES].max()
        for s in range(-(-S // STEPS) * STEPS):
            c, i = divmod(s, STEPS)
            got = values[base[g] + c * size:base[g] + (c + 1) * size].reshape(3, STEPS, LANES)
            want = X[lo + s] if s < n else np.zeros(3)
            np.testing.assert_array_equal(got[:, i, lane], want)


def test_a_workspace_reused_for_other_data_gives_that_datas_estep():
    """The lane-major copy of X is kept in the workspace between E-steps (as a Dask worker
    thread keeps one across tasks): new data, or the same data in other sequences, must
    not be read through the old copy."""
    from sciTie.hmm import _forward_backward as fb

    rng = np.random.default_rng(5)
    sp, A, means, var = _model(3, 2, rng)
    em = fb.DiagonalGaussian(means, var)
    lengths = [40, 25, 31, 18, 9]
    X1, X2 = rng.normal(size=(123, 2)), rng.normal(size=(123, 2))
    work = {}

    def stats(X, lens, workspace):
        e = fb.forward_backward_stats(sp, A, em, lens, X, workspace=workspace)
        return (e.log_prob, np.array(e.posteriors), e.xi_sum, *e.sums[1:])

    fresh = [stats(X, lens, None) for X, lens in
             ((X1, lengths), (X2, lengths), (X2, lengths[::-1]))]
    for (X, lens), want in zip(((X1, lengths), (X2, lengths), (X2, lengths[::-1]),
                                (X2, lengths[::-1])), fresh + fresh[-1:]):
        for a, b in zip(stats(X, lens, work), want):
            np.testing.assert_array_equal(a, b)
    assert fresh[0][0] != fresh[1][0] != fresh[2][0]
