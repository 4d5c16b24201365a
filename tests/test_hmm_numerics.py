"""Forward-backward without underflow, and bad input."""
from __future__ import annotations

import numpy as np
import pytest
from hmmlearn import _hmmc, hmm
from scipy import special

from sciTie.hmm import (TiedCategoricalHMM, TiedGaussianHMM, TiedPoissonHMM,
                        forward_backward, viterbi)


def _two_state(cls=TiedGaussianHMM, **kw):
    m = cls(2, init_params="", **kw)
    m.startprob_ = np.array([0.5, 0.5])
    m.transmat_ = np.array([[0.95, 0.05], [0.1, 0.9]])
    m.means_ = np.array([[0.0], [3.0]])
    m.covars_ = np.array([[1.0], [1.0]])
    return m


def _log_space(startprob, transmat, lp):
    """Reference: hmmlearn's log-space forward/backward."""
    ll, fwd = _hmmc.forward_log(startprob, transmat, lp)
    bwd = _hmmc.backward_log(startprob, transmat, lp)
    g = fwd + bwd
    return ll, np.exp(g - special.logsumexp(g, axis=1, keepdims=True))


def test_fifty_sigma_outlier_matches_log_space():
    ref = _two_state(hmm.GaussianHMM, implementation="scaling")
    X, _ = ref.sample(500, random_state=1)
    X[250] = 50.0  # 50 sigma from the nearest mean
    with pytest.raises(ValueError, match="underflow"):  # the peer's scaled version
        ref.score(X)
    ours = _two_state()
    lp = ours._compute_log_likelihood(X)
    ll_ref, post_ref = _log_space(ours.startprob_, ours.transmat_, lp)
    assert ours.score(X) == pytest.approx(ll_ref, rel=1e-12)
    ll, post = ours.score_samples(X)
    assert ll == pytest.approx(ll_ref, rel=1e-12)
    np.testing.assert_allclose(post, post_ref, atol=1e-10)
    # and fitting through the outlier works
    fitted = TiedGaussianHMM(2, n_iter=5, random_state=0).fit(X)
    assert np.isfinite(fitted.score(X))


def test_guarded_step_when_the_emitting_state_is_almost_unreachable():
    # state 1 is reached with probability 1e-300 and is the only one that explains x=100
    start = np.array([1.0, 0.0])
    trans = np.array([[1 - 1e-300, 1e-300], [0.5, 0.5]])
    X = np.array([[0.0], [100.0], [0.0]])
    m = TiedGaussianHMM(2, init_params="")
    m.startprob_, m.transmat_ = start, trans
    m.means_, m.covars_ = np.array([[0.0], [100.0]]), np.array([[1.0], [1.0]])
    lp = m._compute_log_likelihood(X)
    ll_ref, post_ref = _log_space(start, trans, lp)
    ll, post = m.score_samples(X)
    assert ll == pytest.approx(ll_ref, rel=1e-12)
    np.testing.assert_allclose(post, post_ref, atol=1e-12)
    assert post[1, 1] == pytest.approx(1.0)


def test_ten_million_observations():
    rng = np.random.default_rng(0)
    T = 10_000_000
    d = rng.geometric(0.05, size=T // 10)
    states = np.repeat(np.arange(d.size) % 2, d)[:T]
    X = (3.0 * states + rng.standard_normal(T))[:, None]
    m = _two_state()
    lp = m._compute_log_likelihood(X)
    ll_ref = _hmmc.forward_log(m.startprob_, m.transmat_, lp)[0]
    assert m.score(X) == pytest.approx(ll_ref, rel=1e-12)
    ll, post, xi = forward_backward(m.startprob_, m.transmat_, lp, [T])
    del lp
    assert ll == pytest.approx(ll_ref, rel=1e-12)
    assert np.all(np.isfinite(post)) and abs(post.sum() - T) < 1e-6 * T
    assert xi.sum() == pytest.approx(T - 1, rel=1e-9)
    # the decoded states agree with the truth where the signal is clear
    assert np.mean(post.argmax(axis=1) == states) > 0.9


def test_compiled_viterbi_matches_hmmlearn():
    rng = np.random.default_rng(3)
    K, T = 4, 400
    sp = rng.dirichlet(np.ones(K))
    A = rng.dirichlet(np.ones(K), size=K)
    lp = rng.normal(size=(T, K)) * 4
    lp[100] -= 2000.0
    ll, path = viterbi(sp, A, lp, [150, 250])
    r1, r2 = _hmmc.viterbi(sp, A, lp[:150]), _hmmc.viterbi(sp, A, lp[150:])
    assert ll == pytest.approx(r1[0] + r2[0], rel=1e-13)
    np.testing.assert_array_equal(path, np.concatenate([r1[1], r2[1]]))


def test_multi_sequence_posteriors_match_log_space():
    rng = np.random.default_rng(4)
    K = 3
    sp = rng.dirichlet(np.ones(K))
    A = rng.dirichlet(np.ones(K), size=K)
    lp = rng.normal(size=(300, K)) * 3 - 700.0  # all tiny: underflows without the shift
    ll, post, xi = forward_backward(sp, A, lp, [1, 99, 200])
    ref_ll, ref_post, ref_xi = 0.0, [], 0.0
    for a, b in [(0, 1), (1, 100), (100, 300)]:
        l_, p_ = _log_space(sp, A, lp[a:b])
        ref_ll += l_
        ref_post.append(p_)
        if b - a > 1:
            f = _hmmc.forward_log(sp, A, lp[a:b])[1]
            bw = _hmmc.backward_log(sp, A, lp[a:b])
            ref_xi = ref_xi + np.exp(_hmmc.compute_log_xi_sum(f, A, bw, lp[a:b]))
    assert ll == pytest.approx(ref_ll, rel=1e-12)
    np.testing.assert_allclose(post, np.concatenate(ref_post), atol=1e-10)
    np.testing.assert_allclose(xi, ref_xi, rtol=1e-8)


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("groups, match", [
    ([[0, 1], [1, 2]], r"states \[1\] appear in more than one group"),
    ([[0, 1]], r"states \[2\] are in no group"),
    ([[0, 1], [2, 5]], r"states \[5\] out of range"),
    ([[0, 1], []], r"tied_states\[1\] is empty"),
])
def test_tied_states_not_a_partition(groups, match):
    X = np.random.default_rng(0).normal(size=(30, 1))
    with pytest.raises(ValueError, match=match):
        TiedGaussianHMM(3, tied_states=groups).fit(X)


def test_tied_states_wrong_type():
    with pytest.raises(TypeError, match="tied_states"):
        TiedGaussianHMM(3, tied_states=[[0, 1.5], [2]]).fit(np.zeros((10, 1)))


@pytest.mark.parametrize("bad", [np.inf, -np.inf])
def test_inf_in_X(bad):
    # NaN marks a missing value (tests/test_hmm_missing.py); an infinity is refused
    X = np.random.default_rng(0).normal(size=(30, 1))
    X[7] = bad
    with pytest.raises(ValueError, match=r"X contains inf in rows 7"):
        TiedGaussianHMM(2).fit(X)
    m = _two_state()
    with pytest.raises(ValueError, match="inf"):
        m.score(X)


def test_lengths_must_sum_to_len_X():
    X = np.zeros((30, 1))
    with pytest.raises(ValueError, match=r"lengths sum to 25 but X has 30 rows"):
        TiedGaussianHMM(2).fit(X, lengths=[10, 15])
    with pytest.raises(ValueError, match="lengths must be positive"):
        _two_state().score(X, lengths=[30, 0])
    with pytest.raises(TypeError, match="lengths must hold integers"):
        _two_state().score(X, lengths=[10.5, 19.5])


def test_poisson_counts_must_be_non_negative_integers():
    with pytest.raises(ValueError, match=r"negative counts in rows 2"):
        TiedPoissonHMM(2).fit(np.array([[1], [2], [-1], [4]]))
    with pytest.raises(ValueError, match=r"non-integer values in rows 1"):
        TiedPoissonHMM(2).fit(np.array([[1.0], [2.5], [3.0], [4.0]]))


def test_categorical_symbols_out_of_range():
    m = TiedCategoricalHMM(2, n_features=3, init_params="")
    m.startprob_ = np.array([0.5, 0.5])
    m.transmat_ = np.array([[0.9, 0.1], [0.1, 0.9]])
    m.emissionprob_ = np.array([[0.5, 0.3, 0.2], [0.2, 0.3, 0.5]])
    with pytest.raises(ValueError, match=r"symbols out of range in rows 1 .*0..2"):
        m.score(np.array([[0], [3], [1]]))
    with pytest.raises(ValueError, match="negative symbols in rows 0"):
        m.score(np.array([[-1], [0], [1]]))
    with pytest.raises(ValueError, match="integer symbols"):
        m.score(np.array([[0.5], [1.0]]))


def test_X_shape_and_type():
    with pytest.raises(ValueError, match="2-D"):
        TiedGaussianHMM(2).fit(np.zeros(10))
    with pytest.raises(TypeError, match="numeric"):
        TiedGaussianHMM(2).fit(np.array([["a"], ["b"]]))


def test_tied_emissions_must_agree_when_user_given():
    m = TiedGaussianHMM(2, tied_states=[[0, 1]], init_params="st")
    m.means_ = np.array([[0.0], [1.0]])
    m.covars_ = np.array([[1.0], [1.0]])
    with pytest.raises(ValueError, match=r"means_ was given with means\[1,0\] = 1, but the ties "
                                         r"make it 0 \(== 'means\[0,0\]'\)"):
        m.fit(np.zeros((10, 1)))


def test_impossible_observation_is_reported():
    m = TiedCategoricalHMM(2, n_features=3, init_params="")
    m.startprob_ = np.array([0.5, 0.5])
    m.transmat_ = np.array([[0.9, 0.1], [0.1, 0.9]])
    m.emissionprob_ = np.array([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]])
    with pytest.raises(ValueError, match="row 2 has probability zero under every state"):
        m.score(np.array([[0], [1], [2]]))


@pytest.mark.parametrize("n_seq", [4, 150])  # one block per sequence; grouped blocks
def test_threaded_sequences_equal_serial_bitwise(monkeypatch, n_seq):
    from sciTie.hmm._forward_backward import forward_backward_stats

    rng = np.random.default_rng(8)
    K = 4
    sp, A = rng.dirichlet(np.ones(K)), rng.dirichlet(np.ones(K), size=K)
    lengths = rng.integers(1, 40, size=n_seq)
    lengths[:4] = [10, 30, 1, 49]
    T = int(lengths.sum())
    X = rng.normal(size=(T, 2))
    lp = rng.normal(size=(T, K)) * 3
    monkeypatch.setenv("SCITIE_HMM_THREADS", "1")
    serial = forward_backward_stats(sp, A, lp, lengths, X)
    monkeypatch.setenv("SCITIE_HMM_THREADS", "2")
    threaded = forward_backward_stats(sp, A, lp, lengths, X)
    assert threaded.log_prob == serial.log_prob
    for a, b in [(serial.posteriors, threaded.posteriors), (serial.xi_sum, threaded.xi_sum),
                 (serial.start_sum, threaded.start_sum), *zip(serial.sums, threaded.sums)]:
        np.testing.assert_array_equal(a, b)
    # and both are the log-space result
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    ref_ll = sum(_hmmc.forward_log(sp, A, lp[a:b])[0] for a, b in zip(offsets, offsets[1:]))
    assert serial.log_prob == pytest.approx(ref_ll, rel=1e-12)
    lp[450 % T] = -np.inf
    with pytest.raises(ValueError, match=f"row {450 % T}"):
        forward_backward_stats(sp, A, lp, lengths, X)


# ---------------------------------------------------------------- E-step statistics
def _random_gaussian_pair(ctype, rng, K=4, D=3):
    """The same random Gaussian HMM as ours and as hmmlearn's log-space reference."""
    ours = TiedGaussianHMM(K, covariance_type=ctype, init_params="", params="stmc")
    ref = hmm.GaussianHMM(K, covariance_type=ctype, init_params="", params="stmc",
                          implementation="log")
    covars = {"spherical": rng.uniform(0.5, 2.0, size=K),
              "diag": rng.uniform(0.5, 2.0, size=(K, D))}
    if ctype in ("full", "tied"):
        L = rng.normal(size=(K, D, D)) * 0.4 + np.eye(D)
        full = L @ L.transpose(0, 2, 1) + 0.2 * np.eye(D)
        covars["full"], covars["tied"] = full, full[0]
    params = dict(startprob_=rng.dirichlet(np.ones(K)),
                  transmat_=rng.dirichlet(np.ones(K), size=K),
                  means_=rng.normal(scale=2.0, size=(K, D)), covars_=covars[ctype])
    for m in (ours, ref):
        for name, value in params.items():
            setattr(m, name, value.copy())
        m.n_features = D  # set by fit; the E-step is called directly here
    return ours, ref


@pytest.mark.parametrize("ctype", ["diag", "spherical", "full", "tied"])
def test_estep_statistics_equal_hmmlearn(ctype):
    # the fused compiled E-step against hmmlearn's per-sequence log-space forward/backward
    # and _accumulate_sufficient_statistics, over sequences of length 1 and more, with an
    # observation far out in the tails (log-densities near -2000) in one of them
    rng = np.random.default_rng(11)
    ours, ref = _random_gaussian_pair(ctype, rng)
    lengths = np.array([1, 57, 300, 2, 143])
    X = rng.normal(scale=2.5, size=(lengths.sum(), 3))
    X[100] = [60.0, -55.0, 58.0]
    stats, log_prob = ours._do_estep(X, lengths)
    ref_stats = ref._initialize_sufficient_statistics()
    ref_log_prob = 0.0
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    for a, b in zip(offsets, offsets[1:]):
        lp = ref._compute_log_likelihood(X[a:b])
        ll, fwd = _hmmc.forward_log(ref.startprob_, ref.transmat_, lp)
        bwd = _hmmc.backward_log(ref.startprob_, ref.transmat_, lp)
        post = ref._compute_posteriors_log(fwd, bwd)
        ref._accumulate_sufficient_statistics(ref_stats, X[a:b], lp, post, fwd, bwd)
        ref_log_prob += ll
    assert log_prob == pytest.approx(ref_log_prob, rel=1e-12)
    assert set(ref_stats) <= set(stats)
    for key, value in ref_stats.items():
        np.testing.assert_allclose(stats[key], value, rtol=1e-10, atol=1e-10 * np.max(
            np.abs(value)), err_msg=f"{ctype}: {key}")
