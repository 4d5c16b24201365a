"""Rietveld refinement of powder patterns whose phases and parameters are tied.

Every phase's structure (cell, atoms) is one :class:`~sciTie.ParameterGroup`; every pattern
has its own group (scale, instrument, background, per-phase fraction, size, strain, cell
correction). A :class:`JointRefinement` adds each structure group once and each pattern group
to one joint group, so shared parameters are one free parameter whose Jacobian column is the
sum of its slots' columns (the tie matrix). Series of patterns (a temperature scan) are
refined pattern by pattern (:class:`SequentialRefinement`) or in one fit with parameters
following laws in the series variable (:class:`ParametricRefinement`).
"""
from . import conventions
from ._crystal import ATOM_PARAMS, B_PER_U, CELL_NAMES, Atom, Phase, biso_from_uiso, uiso_from_biso
from ._io import make_pattern, read_gsas_prm, read_gsas_std, read_xye, write_gsas_std, write_xye
from ._pattern import BACKGROUND_PEAK_PARAMS, INSTRUMENT_PARAMS, PHASE_PARAMS, PowderPattern
from ._profile_estimate import estimate_profile
from ._profile import fcj_nodes, pseudo_voigt, tch
from ._parametric import Law, ParametricRefinement, parametric_pattern_blocks
from ._refine import STAGES, JointRefinement, pattern_statistics, weight_fractions
from ._series import (PatternSpec, SequentialRefinement, SeriesRecipe, SeriesTie, refine_one,
                      series_dataset, specs_from_dataset, tie_transition)
from ._series_plot import plot_series_image, plot_series_parameters, plot_tie_test
from ._tails import lost_fraction, window_fwhm

__all__ = ["Atom", "Phase", "PowderPattern", "JointRefinement", "STAGES", "pattern_statistics",
           "weight_fractions", "CELL_NAMES", "ATOM_PARAMS", "INSTRUMENT_PARAMS", "PHASE_PARAMS",
           "BACKGROUND_PEAK_PARAMS", "make_pattern", "read_gsas_prm", "read_gsas_std",
           "read_xye", "write_gsas_std", "write_xye", "fcj_nodes", "pseudo_voigt", "tch",
           "lost_fraction", "window_fwhm", "PatternSpec", "SeriesRecipe", "SeriesTie",
           "SequentialRefinement", "ParametricRefinement", "Law", "refine_one",
           "specs_from_dataset", "series_dataset", "tie_transition",
           "parametric_pattern_blocks", "plot_series_parameters", "plot_series_image",
           "plot_tie_test", "B_PER_U", "biso_from_uiso", "uiso_from_biso", "estimate_profile",
           "conventions"]
