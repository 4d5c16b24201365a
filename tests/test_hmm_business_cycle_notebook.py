"""Execute notebooks/business_cycle_tvtp.ipynb (CI budget: < 60 s) and read its checks."""
import re

import pytest


def _number(pattern: str, text: str) -> float:
    found = re.search(pattern, text)
    assert found, pattern
    return float(found.group(1))


@pytest.mark.notebook
def test_business_cycle_notebook_executes(execute_notebook):
    text = execute_notebook("business_cycle_tvtp.ipynb")
    # EM and a direct BFGS maximisation of the same likelihood reach the same maximum
    assert abs(_number(r"difference (\S+)\n", text)) < 1e-4
    # the leading indicator matters (likelihood ratio on 2 df)
    assert _number(r"on 2 df: p = (\S+)\n", text) < 1e-6
    assert "-586.5718" in text  # the published model's log-likelihood, shown beside ours
    # the undated months of the 1990-91 recession are inferred as recession
    for month in ("1990-11", "1990-12", "1991-01", "1991-02"):
        assert _number(rf"{month}\s+(\S+)\s+recession", text) > 0.5
    for month in ("1990-01", "1990-06"):
        assert _number(rf"{month}\s+(\S+)\s*\n", text) < 0.5
