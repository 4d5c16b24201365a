"""The tying core: parameters, groups and the tie matrix, least squares, fit results."""
from .expressions import Expression, ExpressionError
from .group import ParameterGroup, SlotValues
from .leastsq import ResidualTerm, fit_least_squares
from .parameter import Parameter
from .result import FitResult
from .summary import RunSummary

__all__ = ["Parameter", "ParameterGroup", "SlotValues", "Expression", "ExpressionError",
           "ResidualTerm", "fit_least_squares", "FitResult", "RunSummary"]
