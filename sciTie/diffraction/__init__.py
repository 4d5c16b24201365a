"""Rietveld refinement of powder patterns whose phases and parameters are tied.

Every phase's structure (cell, atoms) is one :class:`~sciTie.ParameterGroup`; every pattern
has its own group (scale, instrument, background, per-phase fraction, size, strain, cell
correction, preferred orientation, absorption) and its instrument, a peak profile
(:mod:`.profiles`: constant wavelength or time of flight), so X-ray, constant-wavelength
neutron and time-of-flight patterns refine one structure together. Atoms may be
anisotropic, their U^ij tied by their site symmetry (:mod:`._adp`). A
:class:`JointRefinement` adds each structure group once and each pattern group to one joint
group, so shared parameters are one free parameter whose Jacobian column is the sum of its
slots' columns (the tie matrix). Series of patterns (a temperature
scan) are refined pattern by pattern (:class:`SequentialRefinement`) or in one fit with
parameters following laws in the series variable (:class:`ParametricRefinement`).
"""
from . import conventions
from ._absorption import cylinder_transmission, suortti_roughness
from ._adp import UIJ_NAMES, iso_uij, site_uij_relations, ueq
from ._background import BACKGROUND_PEAK_PARAMS
from ._crystal import ATOM_PARAMS, B_PER_U, CELL_NAMES, Atom, Phase, biso_from_uiso, uiso_from_biso
from ._io import (make_pattern, read_data, read_gsas_std, read_instrument, read_xye,
                  write_gsas_std, write_xye)
from ._pattern import PowderPattern
from ._pattern_layout import PHASE_PARAMS
from ._profile_estimate import estimate_profile
from ._pseudo_voigt import pseudo_voigt, tch
from .profiles import (PROFILES, ConstantWavelength, PeakProfile, TimeOfFlight, get_profile)
from .profiles._fcj import fcj_nodes
from .profiles.tof import tof_peak
from ._parametric import Law, ParametricRefinement
from ._refine import STAGES, JointRefinement, pattern_statistics, weight_fractions
from ._series import (PatternSpec, SequentialRefinement, SeriesRecipe, SeriesTie, refine_one,
                      specs_from_dataset, tie_transition)
from ._series_result import series_dataset
from ._series_plot import plot_series_image, plot_series_parameters, plot_tie_test
from ._tails import lost_fraction, window_fwhm
from ._texture import texture_index

__all__ = ["Atom", "Phase", "PowderPattern", "JointRefinement", "STAGES", "pattern_statistics",
           "weight_fractions", "CELL_NAMES", "ATOM_PARAMS", "PHASE_PARAMS",
           "BACKGROUND_PEAK_PARAMS", "make_pattern", "read_instrument", "read_data",
           "read_gsas_std", "read_xye", "write_gsas_std", "write_xye", "PeakProfile",
           "ConstantWavelength", "TimeOfFlight", "PROFILES", "get_profile", "fcj_nodes",
           "pseudo_voigt", "tch", "tof_peak",
           "lost_fraction", "window_fwhm", "PatternSpec", "SeriesRecipe", "SeriesTie",
           "SequentialRefinement", "ParametricRefinement", "Law", "refine_one",
           "specs_from_dataset", "series_dataset", "tie_transition",
           "plot_series_parameters", "plot_series_image",
           "plot_tie_test", "B_PER_U", "biso_from_uiso", "uiso_from_biso", "estimate_profile",
           "conventions", "UIJ_NAMES", "iso_uij", "ueq", "site_uij_relations",
           "cylinder_transmission", "suortti_roughness", "texture_index"]
