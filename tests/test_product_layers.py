"""Tensors over several sets: masks per set, complete product bases, layers across axes, and the
equivariance check under a product of symmetric groups."""

from __future__ import annotations

import pytest
import torch

from symlight.core.rep import Rep, entry_mask, set_masks


def test_entry_mask_over_two_sets_is_the_and_of_each_sets_mask():
    rows = torch.tensor([[True, True, False], [True, False, False]])
    cols = torch.tensor([[True, False], [True, True]])
    keep = entry_mask((rows, cols), (1, 1), trailing=0)
    assert keep.shape == (2, 3, 2)
    for b in range(2):
        for i in range(3):
            for j in range(2):
                assert keep[b, i, j] == (rows[b, i] and cols[b, j])
    pairs_then_cols = entry_mask((rows, cols), (2, 1))
    assert pairs_then_cols.shape == (2, 3, 3, 2, 1)
    expected = rows[:, :, None, None] & rows[:, None, :, None] & cols[:, None, None, :]
    assert torch.equal(pairs_then_cols[..., 0], expected)
    assert entry_mask((rows, cols), (0, 1), trailing=0).tolist() == cols.tolist()
    assert entry_mask((rows, cols), (0, 0)) is None
    assert entry_mask((None, cols), (1, 1), trailing=0).shape == (2, 1, 2)  # rows all real


def test_each_set_has_its_own_size_and_mask():
    rep = Rep(4, (1, 2))
    assert (rep.dims(0), rep.dims(1)) == ((1,), (2, 3))
    rep.check(torch.zeros(2, 5, 3, 3, 4))
    with pytest.raises(ValueError, match="square over its set axes of set 1"):
        rep.check(torch.zeros(2, 5, 3, 4, 4))
    rows, cols = torch.ones(2, 5, dtype=torch.bool), torch.tensor([[True, True, False]] * 2)
    y = rep.zero_padding(torch.ones(2, 5, 3, 3, 4), (rows, cols))
    assert y.sum() == 2 * 5 * 4 * 4  # 5 rows x 2 x 2 real column pairs x 4 channels, per batch
    with pytest.raises(ValueError, match="one \\(B, n\\) mask per set"):
        set_masks(rows, 2)
    with pytest.raises(ValueError, match="one mask per set, got 1"):
        rep.mask((rows,))
