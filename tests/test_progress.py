"""Progress bars: drawn when the ``progress`` setting is on, never in pipes or tests."""
import warnings

import numpy as np
import sciTie
from sciTie.hmm import TiedGaussianHMM


def _fit(**kw):
    X = np.random.default_rng(0).normal(size=(300, 1))
    X[150:] += 4
    return TiedGaussianHMM(2, n_iter=5, random_state=0, **kw).fit(X)


def test_off_by_default_where_stderr_is_not_a_terminal(capsys):
    assert sciTie.get_config()["progress"] is False  # pytest captures stderr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _fit()
    assert "EM" not in capsys.readouterr().err


def test_an_hmm_fit_draws_one_bar_over_its_starts_and_iterations(capsys):
    with sciTie.config_context(progress=True), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # whether 5 iterations converge is not the point
        m = _fit(ties=["covars[1] = covars[0]"], n_init=3)
    err = capsys.readouterr().err
    assert "TiedGaussianHMM EM" in err and "/15" in err  # 3 starts x n_iter=5
    assert len(m.starts_) == 3 and not hasattr(m, "_progress")


def test_the_environment_variable_turns_bars_on(monkeypatch):
    monkeypatch.setenv("SCITIE_PROGRESS", "1")
    assert sciTie.get_config()["progress"] is True
