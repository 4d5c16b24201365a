"""The tying core: parameters, groups and the tie matrix, least squares, fit results."""
from .expressions import Expression, ExpressionError
from .group import ParameterGroup
from .leastsq import ResidualTerm, fit_least_squares
from .parameter import Parameter
from .result import FitResult
from .summary import RunSummary
from .tiemap import ExpressionRelation, LinearRelation, SlotKind, SlotValues, TieMap

__all__ = ["Parameter", "ParameterGroup", "SlotValues", "Expression", "ExpressionError",
           "ResidualTerm", "fit_least_squares", "FitResult", "RunSummary", "TieMap", "SlotKind",
           "LinearRelation", "ExpressionRelation"]
