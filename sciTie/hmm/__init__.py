"""Tied hidden Markov models on top of hmmlearn: any tie on any parameter, exact EM.

Every model keeps one :class:`sciTie.ParameterGroup` (``group_``) whose slots are its arrays
(``startprob``, ``transmat``, ``means``, ``covars``, ``lambdas``, ``emissionprob``,
``weights``; ``intercepts``, ``coefs`` for the Markov-switching autoregression). Ties are written as statements in the core's syntax (``ties=["means[1] =
means[0]"]``), as a ParameterGroup, or with the shorthands ``tied_states`` (whole states share
one emission distribution: an aggregated Markov model) and ``tied_transitions`` (shared
self-loops). Each M-step maximises the expected complete-data log-likelihood under the ties
through the tie map; a compiled forward-backward never underflows.
"""
from ._autoregressive import ARHMM, TiedARHMM
from ._forward_backward import forward_backward, forward_loglik, viterbi
from ._fitting import fit_linear_scheme, fit_poisson_restarts
from ._hsmm import TiedGaussianHSMM, TiedPoissonHSMM
from ._models import TiedCategoricalHMM, TiedGaussianHMM, TiedGMMHMM, TiedPoissonHMM
from ._plots import dwell_times, level_dwell_distribution
from ._tying import ChainStructure, erlang_chains, linear_scheme, validate_partition

__all__ = ["TiedGaussianHMM", "TiedPoissonHMM", "TiedCategoricalHMM", "TiedGMMHMM",
           "TiedARHMM", "ARHMM", "TiedGaussianHSMM", "TiedPoissonHSMM",
           "erlang_chains", "linear_scheme", "ChainStructure", "validate_partition",
           "forward_backward", "forward_loglik", "viterbi", "fit_linear_scheme",
           "fit_poisson_restarts", "dwell_times", "level_dwell_distribution"]
