"""Helpers of the bad-input suites (test_bad_inputs*.py): tables of expected failures."""
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
