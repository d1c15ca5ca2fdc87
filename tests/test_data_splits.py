"""quantize.data.splits: deterministic, disjoint, covering, stratified splits."""

import numpy as np
import pytest

from edge.errors import EdgekitError
from quantize.data.splits import split_indices


def test_disjoint_covering_and_stratified():
    rng = np.random.default_rng(5)
    strata = rng.integers(0, 16, size=300)
    strata[:3] = 99  # a stratum of exactly three samples
    train, val, test = split_indices(strata, seed=1)
    joined = np.concatenate([train, val, test])
    assert sorted(joined.tolist()) == list(range(300))  # disjoint and covering
    for key in np.unique(strata):
        counts = [int(np.sum(strata[part] == key)) for part in (train, val, test)]
        assert min(counts) >= 1, (key, counts)
        total = sum(counts)
        if total >= 15:
            assert abs(counts[0] / total - 0.7) < 0.1


def test_deterministic_and_seed_dependent():
    strata = np.repeat(np.arange(8), 10)
    first = split_indices(strata, seed=3)
    again = split_indices(strata, seed=3)
    other = split_indices(strata, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))


def test_tiny_strata_go_to_training_and_bad_input_errors():
    train, val, test = split_indices([0, 0, 1], seed=0)
    assert train.tolist() == [0, 1, 2] and val.size == 0 and test.size == 0
    with pytest.raises(EdgekitError):
        split_indices([])
    with pytest.raises(EdgekitError):
        split_indices([0, 1], fractions=(0.5, 0.5))
