"""Progress bars for long fits, on when the ``progress`` setting says so.

The setting (:func:`sciTie.set_config`, ``SCITIE_PROGRESS``) defaults to whether standard
error is a terminal: bars show in an interactive session and stay out of logs, pipes and
test runs. An estimator's own ``progress`` argument, when not None, decides for that fit.
"""
from __future__ import annotations

from typing import Any

__all__ = ["progress_bar"]


def progress_bar(total: int, desc: str, *, progress: bool | None = None,
                 unit: str = "it") -> Any:
    """A tqdm bar of ``total`` steps, or None when progress is off.

    Parameters
    ----------
    total : int
        Steps the work takes at most.
    desc : str
        What is running (the bar's label).
    progress : bool, optional
        On or off for this bar; None reads the ``progress`` setting.
    unit : str
        What one step is.
    """
    if progress is None:
        from ._config import get_setting

        progress = get_setting("progress")
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, leave=False)
