import pytest
import torch

from symlight.symmetry import (
    SetSymmetry,
    generators,
    identity,
    inverse,
    permute,
    permute_batch,
    random_permutation,
)


def test_permute_orders_match_explicit_indexing():
    gen = torch.Generator().manual_seed(0)
    perm = torch.stack([torch.randperm(5, generator=gen) for _ in range(3)])
    x1 = torch.randn(3, 5, 2, generator=gen)
    x2 = torch.randn(3, 5, 5, 2, generator=gen)
    p1, p2 = permute(x1, perm, 1), permute(x2, perm, 2)
    for b in range(3):
        for i in range(5):
            assert torch.equal(p1[b, i], x1[b, perm[b, i]])
            for j in range(5):
                assert torch.equal(p2[b, i, j], x2[b, perm[b, i], perm[b, j]])
    x0 = torch.randn(3, 4)
    assert permute(x0, perm, 0) is x0


def test_inverse_undoes_permutation():
    perm = random_permutation(4, 7, generator=torch.Generator().manual_seed(1))
    x = torch.randn(4, 7, 7, 3)
    assert torch.equal(permute(permute(x, perm, 2), inverse(perm), 2), x)
    assert torch.equal(permute(perm[..., None], inverse(perm), 1)[..., 0], identity(4, 7))


def test_random_permutation_fixes_padding_and_is_seeded():
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 0, 1, 1, 0]], dtype=torch.bool)
    a = random_permutation(2, 5, mask, generator=torch.Generator().manual_seed(3))
    b = random_permutation(2, 5, mask, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert torch.equal(permute(mask, a, 1), mask)
    for row in range(2):
        assert sorted(a[row].tolist()) == list(range(5))
        assert torch.equal(a[row][~mask[row]], torch.arange(5)[~mask[row]])


@pytest.mark.parametrize("n", [1, 2, 3, 6])
def test_generators_are_a_transposition_and_a_cycle(n):
    swap, cycle = generators(1, n)
    assert sorted(swap[0].tolist()) == list(range(n))
    moved = (swap[0] != torch.arange(n)).sum().item()
    assert moved == (2 if n >= 2 else 0)
    # the cycle has a single orbit: applying it n times, and no fewer, gives the identity
    p = torch.arange(n)
    for step in range(1, n + 1):
        p = p[cycle[0]]
        assert torch.equal(p, torch.arange(n)) == (step == n)


def test_generators_move_only_real_elements():
    mask = torch.tensor([[0, 1, 0, 1, 1]], dtype=torch.bool)
    swap, cycle = generators(1, 5, mask)
    assert swap[0].tolist() == [0, 3, 2, 1, 4]
    assert cycle[0].tolist() == [0, 3, 2, 4, 1]


def test_permute_batch_moves_declared_inputs_and_mask():
    batch = {
        "x": torch.randn(2, 4, 1),
        "mask": torch.ones(2, 4, dtype=torch.bool),
        "t": torch.ones(2),
    }
    perm = random_permutation(2, 4, generator=torch.Generator().manual_seed(0))
    out = permute_batch(batch, perm, SetSymmetry({"x": 1}, 1))
    assert torch.equal(out["x"], permute(batch["x"], perm, 1))
    assert out["t"] is batch["t"]


def test_bad_orders_are_rejected():
    with pytest.raises(ValueError, match="order must be"):
        SetSymmetry({"x": 3}, 1)
    with pytest.raises(ValueError, match="cannot permute"):
        permute(torch.randn(2, 3, 1), torch.zeros(2, 4, dtype=torch.long), 1)
