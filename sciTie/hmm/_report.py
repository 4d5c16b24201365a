"""Reports and xarray output of the tied HMMs (filled in below)."""
from __future__ import annotations


class ReportMixin:
    """Placeholder, replaced by the xarray/report implementation."""
