"""Tied-emission hidden Markov models on top of hmmlearn.

States are grouped (``tied_states``) so that a group shares one emission distribution: an
aggregated Markov model in which several hidden states give the same observable level.
Baum-Welch pools the sufficient statistics over each group (the maximum-likelihood estimate
of the tied model), and a compiled forward-backward never underflows.
"""
from ._forward_backward import forward_backward, forward_loglik, viterbi
from ._fitting import fit_linear_scheme, fit_poisson_restarts
from ._models import TiedCategoricalHMM, TiedGaussianHMM, TiedGMMHMM, TiedPoissonHMM
from ._tying import (ChainStructure, erlang_chains, linear_scheme, state_tie_matrix,
                     validate_partition)

__all__ = ["TiedGaussianHMM", "TiedPoissonHMM", "TiedCategoricalHMM", "TiedGMMHMM",
           "erlang_chains",
           "linear_scheme", "ChainStructure", "state_tie_matrix", "validate_partition",
           "forward_backward", "forward_loglik", "viterbi", "fit_linear_scheme",
           "fit_poisson_restarts"]
