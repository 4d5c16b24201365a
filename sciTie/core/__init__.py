from .summary import RunSummary
__all__ = ["RunSummary"]
