"""Merging identical customer rows: every packing path agrees with np.unique."""

from __future__ import annotations

import numpy as np
import pytest

from patron.analytics.models.base import group_rows, merge_rows


def reference(*columns):
    stacked = np.stack(columns, axis=1)
    unique, inverse = np.unique(stacked, axis=0, return_inverse=True)
    return unique, inverse.reshape(-1)


@pytest.mark.parametrize(
    "make",
    [
        # whole numbers, few possible keys: lookup table
        lambda rng, n: (rng.integers(0, 5, n).astype(float), rng.integers(0, 30, n).astype(float)),
        # whole numbers, many possible keys: one sort of packed keys
        lambda rng, n: tuple(rng.integers(0, 10**5, n).astype(float) for _ in range(3)),
        # weeks (not whole): lexicographic sort
        lambda rng, n: (rng.integers(0, 5, n).astype(float), rng.integers(0, 300, n) / 7.0),
        # negative and huge values
        lambda rng, n: (rng.integers(-3, 3, n).astype(float), rng.integers(0, 2, n) * 1e300),
    ],
)
def test_group_rows_agrees_with_numpy_unique(make):
    rng = np.random.default_rng(4)
    columns = make(rng, 5000)
    unique, inverse = group_rows(*columns)
    expected_unique, _ = reference(*columns)
    assert len(unique[0]) == expected_unique.shape[0]
    # Each row maps to a distinct row holding exactly its values.
    for column, values in zip(columns, unique, strict=True):
        np.testing.assert_array_equal(values[inverse], column)
    assert len({tuple(row) for row in np.stack(unique, axis=1)}) == len(unique[0])


def test_merge_rows_sums_weights_and_drops_zero_weights():
    x = np.array([1.0, 1.0, 2.0, 1.0, 3.0])
    t = np.array([5.0, 5.0, 6.0, 5.0, 7.0])
    (ux, ut), w = merge_rows(np.array([1.0, 2.0, 1.0, 0.5, 0.0]), x, t)
    merged = dict(zip(zip(ux.tolist(), ut.tolist(), strict=True), w.tolist(), strict=True))
    assert merged == {(1.0, 5.0): 3.5, (2.0, 6.0): 1.0}
