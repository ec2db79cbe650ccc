from functools import partial

import pytest
import torch

from symlight.core.rep import Rep
from symlight.groups import dihedral
from symlight.models import DeepSets, EquivariantNetwork, MLPBaseline
from symlight.symmetry import inverse, permute, random_permutation
from symlight.training import SymmetricModule, check_batch


def padded(batch_size, n, extra, features=1, seed=0):
    """A batch of sets of size n padded with ``extra`` garbage-filled slots."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch_size, n + extra, features, generator=gen, dtype=torch.float64)
    mask = torch.zeros(batch_size, n + extra, dtype=torch.bool)
    mask[:, :n] = True
    return x, mask


@pytest.mark.parametrize("pooling", ["sum", "mean", "max"])
@pytest.mark.parametrize("out_order", [0, 1])
def test_padding_never_changes_real_outputs(pooling, out_order):
    torch.manual_seed(0)
    net = DeepSets(2, 3, out_order, hidden=8, pooling=pooling).double()
    x, mask = padded(4, 5, 3, features=2)
    full = net(x, mask)
    other = x.clone()
    other[~mask] = 1e6  # garbage in the padding
    assert torch.allclose(net(other, mask), full, atol=1e-12)
    assert torch.allclose(net(x[:, :5]), full[:, :5] if out_order else full, atol=1e-12)
    if out_order == 1:
        assert torch.all(full[~mask] == 0)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 16])
@pytest.mark.parametrize("pooling", ["sum", "mean", "max"])
@pytest.mark.parametrize("out_order", [0, 1])
@pytest.mark.parametrize("with_mask", [False, True])
def test_deepsets_is_permutation_equivariant_in_float64(n, pooling, out_order, with_mask):
    torch.manual_seed(n)
    net = DeepSets(2, 3, out_order, hidden=8, pooling=pooling).double()
    x, mask = padded(6, n, 2 if with_mask else 0, features=2, seed=n)
    mask[0] = False  # a fully padded set gives zeros, never NaN
    perm = random_permutation(6, x.shape[1], mask, generator=torch.Generator().manual_seed(n))
    y = net(x, mask)
    y_perm = net(permute(x, perm, 1), permute(mask, perm, 1))
    assert torch.isfinite(y).all()
    assert torch.allclose(permute(y_perm, inverse(perm), out_order), y, atol=1e-12, rtol=0)


def test_mlp_baseline_is_not_equivariant():
    torch.manual_seed(0)
    net = MLPBaseline(1, 1, 1, n=6).double()
    x, _ = padded(8, 6, 0)
    perm = random_permutation(8, 6, generator=torch.Generator().manual_seed(0))
    y = net(x)
    assert not torch.allclose(permute(net(permute(x, perm, 1)), inverse(perm), 1), y, atol=1e-3)
    with pytest.raises(ValueError, match="at most n=6"):
        net(torch.zeros(1, 7, 1, dtype=torch.float64))


def test_bad_batches_are_rejected_with_clear_errors():
    mask = torch.ones(2, 3, dtype=torch.bool)
    with pytest.raises(ValueError, match="NaN"):
        check_batch({"x": torch.tensor([[[1.0], [float("nan")], [0.0]]] * 2), "mask": mask})
    with pytest.raises(ValueError, match="empty sets"):
        check_batch({"x": torch.zeros(2, 0, 1)})
    with pytest.raises(ValueError, match="set on dim 1"):
        check_batch({"x": torch.zeros(2, 3)})
    masked_nan = torch.zeros(2, 3, 1)
    masked_nan[:, 2] = float("nan")
    mask[:, 2] = False
    check_batch({"x": masked_nan, "mask": mask})  # NaN in padding is ignored


def test_module_rejects_a_network_of_the_wrong_order():
    with pytest.raises(ValueError, match="returns 1x1 but the task needs 1x0"):
        SymmetricModule(net=lambda i, o, k: DeepSets(i, o, 1), rep_out="1x0")


def test_the_network_gets_the_task_group_and_rejects_another():
    layers = [{"layer": "group_linear", "order": 2, "channels": 4}, {"layer": "activation"}]
    net = partial(EquivariantNetwork, layers=layers)
    model = SymmetricModule(net, rep_out="1x1 @ dihedral(20)")
    assert model.net.rep_out == Rep(1, 1, dihedral(20))
    assert model.hparams.rep_out == "1x1 @ D_20"
    with pytest.raises(
        ValueError, match="built for the group D_16 but the task's data has 1x1 @ D_20"
    ):
        SymmetricModule(partial(net, group="dihedral(16)"), rep_out="1x1 @ D_20")
    # an S_n-equivariant network suits a task of any group
    assert SymmetricModule(DeepSets, rep_out="1x1 @ D_20").net.rep_out.group is None
