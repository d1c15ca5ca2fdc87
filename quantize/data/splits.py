"""Deterministic stratified train/validation/test splits.

Stratifying by (action, identity) keeps every swimmer doing every action in every split, which
matters with data sets of a few dozen clips: a random split can leave a class out of validation
and make early stopping or the reported accuracy meaningless.
"""

import numpy as np

from edge.errors import EdgekitError


def split_indices(strata, fractions=(0.7, 0.15, 0.15), seed=0):
    """Return (train_idx, val_idx, test_idx), sorted int64 arrays partitioning range(len(strata)).

    Each stratum is shuffled with ``seed`` and cut by ``fractions``; a stratum with >= 3 samples
    always gives at least one sample to each split (taken from the largest share), smaller strata
    fill train first, then validation.
    """
    strata = np.asarray(strata)
    if strata.ndim != 1 or strata.size == 0:
        raise EdgekitError("split_indices needs a non-empty 1-D array of stratum keys, got shape %s"
                           % (strata.shape,))
    fractions = np.asarray(fractions, dtype=np.float64)
    if fractions.shape != (3,) or np.any(fractions < 0) or fractions.sum() <= 0:
        raise EdgekitError("fractions must be three non-negative numbers (train, val, test), got %s"
                           % (list(fractions),))
    fractions = fractions / fractions.sum()
    rng = np.random.default_rng(seed)
    parts = ([], [], [])
    for key in np.unique(strata):
        members = np.flatnonzero(strata == key)
        members = members[rng.permutation(members.size)]
        counts = _allocate(members.size, fractions)
        start = 0
        for part, count in zip(parts, counts):
            part.extend(members[start:start + count].tolist())
            start += count
    return tuple(np.sort(np.asarray(p, dtype=np.int64)) for p in parts)


def _allocate(n, fractions):
    """Split n samples into three counts: largest remainders, then >= 1 per split when n >= 3."""
    raw = fractions * n
    counts = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - counts), kind="stable")[: n - counts.sum()]:
        counts[i] += 1
    if n >= 3:
        for i in range(3):
            if counts[i] == 0:
                counts[int(np.argmax(counts))] -= 1
                counts[i] = 1
    elif n > 0 and counts[0] == 0:  # tiny strata: training data first
        counts[:] = 0
        counts[0] = 1
        counts[1] = n - 1
    return counts.tolist()
