"""Joint Rietveld refinement of powder patterns sharing one crystal structure.

The structure (cell, atoms) is one :class:`~sciTie.ParameterGroup`; every pattern has its own
group (scale, instrument, background, cell correction). A :class:`JointRefinement` adds the
structure group once and each pattern group to one joint group, so the structure's free
parameters are shared and the Jacobian columns of a shared parameter are summed by the tie
matrix.
"""
from ._crystal import ATOM_PARAMS, CELL_NAMES, Atom, Phase
from ._io import make_pattern, read_gsas_prm, read_gsas_std, read_xye, write_gsas_std, write_xye
from ._pattern import PATTERN_PARAMS, PowderPattern
from ._refine import STAGES, JointRefinement, pattern_statistics
from ._profile import fcj_nodes, pseudo_voigt, tch

__all__ = ["Atom", "Phase", "PowderPattern", "JointRefinement", "STAGES", "pattern_statistics", "CELL_NAMES", "ATOM_PARAMS", "PATTERN_PARAMS",
           "make_pattern", "read_gsas_prm", "read_gsas_std", "read_xye", "write_gsas_std",
           "write_xye", "fcj_nodes", "pseudo_voigt", "tch"]
