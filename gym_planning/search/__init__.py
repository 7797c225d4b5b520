"""Batched MuZero / Gumbel MuZero tree search in Numba.

The tree is a struct of arrays (:class:`Tree`); the model is a batched Python callback, so it can be a
torch network on any device or the environment itself. Nothing here imports torch.
"""

from gym_planning.search.base import RecurrentFn, RecurrentOutput, RootOutput, SearchOutput
from gym_planning.search.checks import to_numpy
from gym_planning.search.compiled_model import JitRecurrentFn
from gym_planning.search.config import SearchConfig, run_policy
from gym_planning.search.embeddings import EmbeddingStore
from gym_planning.search.policies import gumbel_muzero_policy, most_visited_action, muzero_policy, root_completed_qvalues
from gym_planning.search.qtransforms import MASKED_LOGIT, softmax_rows
from gym_planning.search.sampled import (
    SampledRecurrentFn,
    SampledRecurrentOutput,
    SampledRootOutput,
    SampledSearchOutput,
    gaussian_candidates,
    sampled_prior_logits,
    sampled_search,
)
from gym_planning.search.seq_halving import considered_visits_sequence
from gym_planning.search.simulation import GUMBEL, MUZERO, gumbel_completed_q
from gym_planning.search.tree import NO_PARENT, ROOT_INDEX, UNVISITED, SearchSummary, Tree, TreeArrays

__all__ = [
    "EmbeddingStore",
    "GUMBEL",
    "JitRecurrentFn",
    "MASKED_LOGIT",
    "MUZERO",
    "NO_PARENT",
    "ROOT_INDEX",
    "RecurrentFn",
    "RecurrentOutput",
    "RootOutput",
    "SampledRecurrentFn",
    "SampledRecurrentOutput",
    "SampledRootOutput",
    "SampledSearchOutput",
    "SearchConfig",
    "SearchOutput",
    "SearchSummary",
    "Tree",
    "TreeArrays",
    "UNVISITED",
    "considered_visits_sequence",
    "gaussian_candidates",
    "gumbel_completed_q",
    "gumbel_muzero_policy",
    "most_visited_action",
    "muzero_policy",
    "root_completed_qvalues",
    "run_policy",
    "sampled_prior_logits",
    "sampled_search",
    "softmax_rows",
    "to_numpy",
]
