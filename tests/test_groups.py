import itertools
import math
from functools import partial

import lightning as L
import pytest
import torch
from scipy.stats import chisquare

from symlight.callbacks import EquivarianceCheck
from symlight.check import EquivarianceViolation, assert_equivariant, equivariance_error
from symlight.cli import main
from symlight.groups import (
    PermutationGroup,
    alternating,
    cyclic,
    dihedral,
    equivariant_basis,
    orbit_count,
    orbit_labels,
    parse_group,
    product,
    symmetric,
    trivial,
)
from symlight.models import (
    EquivariantLinear,
    EquivariantNetwork,
    GroupLinear,
    basis_size,
)
from symlight.symmetry import SetSymmetry, inverse, permute
from symlight.tasks import RingDataModule
from symlight.tasks.ring import local_maxima
from symlight.training import SymmetricModule

from conftest import run_cli, scalars

ORDERS = list(itertools.product(range(3), repeat=2))

# -- orbit counts ---------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6])
def test_symmetric_orbit_counts(n):
    assert orbit_count(symmetric(n), 1, 1) == 2
    assert orbit_count(symmetric(n), 2, 2) == {2: 8, 3: 14}.get(n, 15)


def test_symmetric_counts_match_the_library_basis_for_every_order_pair():
    for k, m in ORDERS:
        assert orbit_count(symmetric(5), k, m) == basis_size(k, m), (k, m)


@pytest.mark.parametrize("n", range(3, 10))
def test_cyclic_and_dihedral_orbit_counts(n):
    assert orbit_count(cyclic(n), 1, 1) == n  # circulant maps
    assert orbit_count(dihedral(n), 1, 1) == n // 2 + 1  # one weight per ring distance


@pytest.mark.parametrize("n, m", [(2, 3), (3, 4), (4, 5)])
def test_product_of_symmetric_groups_on_a_matrix_has_four_orbits(n, m):
    assert orbit_count(product(symmetric(n), symmetric(m)), 1, 1) == 4


def test_trivial_group_allows_every_map():
    assert orbit_count(trivial(4), 1, 1) == 16
    assert orbit_count(trivial(3), 2, 1) == 27


# -- the basis ------------------------------------------------------------------------------------


def permutation_matrix(perm: torch.Tensor, order: int) -> torch.Tensor:
    """The matrix of ``x -> x[perm]`` on order-``order`` tensors over the points, flattened."""
    n = len(perm)
    one = torch.zeros(n, n, dtype=torch.int64)
    one[torch.arange(n), perm] = 1
    out = torch.ones(1, 1, dtype=torch.int64)
    for _ in range(order):
        out = torch.kron(out, one)
    return out


GROUPS = [
    symmetric(4),
    alternating(4),
    cyclic(5),
    dihedral(5),
    dihedral(6),
    product(symmetric(2), symmetric(3)),
]


@pytest.mark.parametrize("group", GROUPS, ids=repr)
@pytest.mark.parametrize("k, m", ORDERS)
def test_every_basis_element_commutes_with_every_generator(group, k, m):
    basis = equivariant_basis(group, k, m)
    n = group.degree
    assert basis.shape == (orbit_count(group, k, m), n**m, n**k)
    assert basis.dtype == torch.int64
    assert torch.equal(basis.sum(0), torch.ones(n**m, n**k, dtype=torch.int64))  # a partition
    for g in group.generators:
        p_in, p_out = permutation_matrix(g, k), permutation_matrix(g, m)
        assert torch.equal(p_out @ basis, basis @ p_in)  # exact, in integers


def test_basis_spans_every_equivariant_map():
    # any map that commutes with the generators is constant on each orbit: average a random map
    # over the whole group, then read it back from one entry per orbit
    group = dihedral(5)
    n = group.degree
    w = torch.randn(n * n, n, dtype=torch.float64)
    avg = sum(
        permutation_matrix(g, 2).double().T @ w @ permutation_matrix(g, 1).double()
        for g in group.elements()
    )
    labels = orbit_labels(group, 1, 2)
    values = torch.zeros(int(labels.max()) + 1, dtype=torch.float64)
    values[labels.reshape(-1)] = avg.reshape(-1)
    assert torch.allclose(values[labels], avg, atol=1e-12)
    basis = equivariant_basis(group, 1, 2, dtype=torch.float64)
    assert torch.allclose(torch.einsum("k,koi->oi", values, basis), avg, atol=1e-12)


def test_sparse_basis_is_the_same_tensor():
    for k, m in [(1, 1), (2, 2), (0, 2)]:
        dense = equivariant_basis(cyclic(4), k, m)
        assert torch.equal(equivariant_basis(cyclic(4), k, m, sparse=True).to_dense(), dense)


# -- groups ---------------------------------------------------------------------------------------


def compose(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return b[a]  # a, then b


@pytest.mark.parametrize(
    "group, order",
    [
        (symmetric(4), 24),
        (alternating(5), 60),
        (cyclic(6), 6),
        (dihedral(6), 12),
        (dihedral(3), 6),
        (product(symmetric(2), symmetric(3)), 12),
        (trivial(3), 1),
    ],
    ids=repr,
)
def test_group_axioms_and_orders(group, order):
    assert group.order() == order
    elements = {tuple(g.tolist()) for g in group.elements()}
    assert len(elements) == order
    assert tuple(range(group.degree)) in elements
    for a in elements:
        assert tuple(inverse(torch.tensor([a]))[0].tolist()) in elements
        for b in elements:
            assert tuple(compose(torch.tensor(a), torch.tensor(b)).tolist()) in elements
    for g in group.generators:
        assert g in group


@pytest.mark.parametrize("n", [3, 5, 7])
def test_schreier_sims_agrees_with_the_closed_form_chains(n):
    for build, order in ((symmetric, math.factorial(n)), (alternating, math.factorial(n) // 2)):
        known = build(n)
        generic = PermutationGroup(known.generators)  # chain built by Schreier-Sims
        assert known.order() == generic.order() == order


def test_larger_orders_and_membership():
    assert PermutationGroup(symmetric(12).generators).order() == math.factorial(12)
    assert product(symmetric(5), symmetric(6)).order() == math.factorial(5) * math.factorial(6)
    swap = torch.tensor([1, 0, 2, 3, 4])
    assert swap in symmetric(5) and swap not in alternating(5)
    assert swap not in cyclic(5) and torch.tensor([1, 2, 3, 4, 0]) in cyclic(5)
    assert torch.tensor([0, 4, 3, 2, 1]) in dihedral(5)
    assert torch.tensor([0, 1, 2]) not in cyclic(5)  # wrong degree


@pytest.mark.parametrize(
    "group",
    [dihedral(5), PermutationGroup(symmetric(4).generators), product(cyclic(2), cyclic(3))],
    ids=repr,
)
def test_random_element_is_uniform(group):
    order = group.order()
    draws = 200 * order
    gen = torch.Generator().manual_seed(0)
    index = {tuple(g.tolist()): i for i, g in enumerate(group.elements())}
    counts = torch.zeros(order)
    for g in group.random_elements(draws, gen):
        counts[index[tuple(g.tolist())]] += 1  # a KeyError would be a non-member
    assert (counts > 0).all()
    assert chisquare(counts.numpy()).pvalue > 0.01


def test_random_element_of_a_skewed_sampler_fails_the_same_test():
    # the test above can fail: always drawing the first transversal element of the top level
    group = dihedral(5)
    gen = torch.Generator().manual_seed(0)
    index = {tuple(g.tolist()): i for i, g in enumerate(group.elements())}
    counts = torch.zeros(group.order())
    for _ in range(200 * group.order()):
        g = group.random_element(gen)
        if g[0] != 0 and torch.rand(1, generator=gen) < 0.5:
            g = torch.arange(5)
        counts[index[tuple(g.tolist())]] += 1
    assert chisquare(counts.numpy()).pvalue < 1e-6


def test_bad_groups_fail_clearly():
    with pytest.raises(ValueError, match="not a permutation"):
        PermutationGroup([[0, 0, 1]])
    with pytest.raises(ValueError, match="permute 3 points"):
        PermutationGroup([[0, 1, 2], [1, 0]])
    with pytest.raises(ValueError, match="needs its degree"):
        PermutationGroup([])
    with pytest.raises(ValueError, match="dihedral"):
        parse_group("rotations(5)")
    with pytest.raises(ValueError, match="cannot read"):
        parse_group("__import__('os')")


def test_parse_group():
    assert parse_group("dihedral(8)").order() == 16
    assert parse_group(" product(cyclic(3), symmetric(2)) ").degree == 6
    assert repr(parse_group("cyclic(4)")) == "C_4"


# -- GroupLinear ----------------------------------------------------------------------------------


def act(x: torch.Tensor, g: torch.Tensor, order: int) -> torch.Tensor:
    return permute(x, g.expand(x.shape[0], -1), order)


@pytest.mark.parametrize("group", [cyclic(6), dihedral(6), alternating(4)], ids=repr)
@pytest.mark.parametrize("k, m", ORDERS)
def test_group_linear_is_equivariant(group, k, m):
    torch.manual_seed(0)
    layer = GroupLinear(group, k, m, 3, 2).double()
    with torch.no_grad():
        layer.bias.normal_()
    n = group.degree
    x = torch.randn(4, *([n] * k), 3, dtype=torch.float64)
    gen = torch.Generator().manual_seed(1)
    for g in [*group.generators, *group.random_elements(3, gen)]:
        gx = act(x, g, k)
        assert torch.allclose(layer(gx), act(layer(x), g, m), atol=1e-9, rtol=0)


def test_group_linear_is_not_equivariant_to_a_larger_group():
    torch.manual_seed(0)
    layer = GroupLinear(cyclic(6), 1, 1, 1, 1).double()
    x = torch.randn(2, 6, 1, dtype=torch.float64)
    reflection = torch.tensor([0, 5, 4, 3, 2, 1])
    assert not torch.allclose(layer(act(x, reflection, 1)), act(layer(x), reflection, 1))


def dense_map(layer, k, m, n, channels):
    """The map of a layer as a matrix, and its output at zero (the bias)."""
    mask = torch.ones(1, n, dtype=torch.bool)
    size = n**k * channels
    eye = torch.eye(size, dtype=torch.float64).reshape(size, *([n] * k), channels)
    zero = layer(torch.zeros(1, *([n] * k), channels, dtype=torch.float64), mask.expand(1, n))
    out = layer(eye, mask.expand(size, n)) - zero
    return out.reshape(size, -1).T, zero.reshape(-1)


@pytest.mark.parametrize("k, m", ORDERS)
def test_group_linear_for_symmetric_groups_equals_equivariant_linear(k, m):
    # copy the weights of a random EquivariantLinear (mean pooling) into GroupLinear(S_n)
    n, c_in, c_out = 5, 2, 3
    torch.manual_seed(0)
    reference = EquivariantLinear(k, m, c_in, c_out, pooling="mean").double()
    with torch.no_grad():
        reference.bias.normal_()
    layer = GroupLinear(symmetric(n), k, m, c_in, c_out).double()
    assert layer.num_basis == basis_size(k, m)
    matrix, bias = dense_map(reference, k, m, n, c_in)
    kernel = matrix.reshape(n**m, c_out, n**k, c_in).permute(0, 2, 1, 3)  # (out, in, co, ci)
    labels = layer.labels
    weight = torch.zeros_like(layer.weight)
    weight[labels.reshape(-1)] = kernel.reshape(-1, c_out, c_in)
    assert torch.allclose(weight[labels], kernel, atol=1e-12)  # constant on every orbit
    bias_out = bias.reshape(n**m, c_out)
    with torch.no_grad():
        layer.weight.copy_(weight / layer.scale.reshape(-1)[_first(labels)][:, None, None])
        layer.bias[layer.bias_labels] = bias_out
    x = torch.randn(4, *([n] * k), c_in, dtype=torch.float64)
    mask = torch.ones(4, n, dtype=torch.bool)
    assert torch.allclose(layer(x, mask), reference(x, mask), atol=1e-12, rtol=0)


def _first(labels):
    """The flat index of the first entry of each orbit."""
    flat = labels.reshape(-1)
    first = torch.full((int(flat.max()) + 1,), flat.numel())
    return first.scatter_reduce(0, flat, torch.arange(flat.numel()), "amin")


def test_group_linear_rejects_padding_and_other_sizes():
    layer = GroupLinear(cyclic(4), 1, 1, 1, 1)
    with pytest.raises(ValueError, match="exactly 4"):
        layer(torch.zeros(2, 5, 1))
    mask = torch.tensor([[True, True, True, False]] * 2)
    with pytest.raises(ValueError, match="exactly 4 real elements"):
        layer(torch.zeros(2, 4, 1), mask)


# -- networks and the check -------------------------------------------------------------------------

RING_LAYERS = [
    {"layer": "group_linear", "order": 2, "channels": 4},
    {"layer": "activation"},
    {"layer": "mlp", "channels": 4, "hidden": 8},
    {"layer": "group_linear", "order": 1, "channels": 4},
    {"layer": "layer_norm"},
    {"layer": "activation"},
]


def ring_batch(n=6, batch=3):
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(batch, n, 1, generator=gen, dtype=torch.float64)
    return {"x": x, "mask": torch.ones(batch, n, dtype=torch.bool)}


def test_group_network_is_equivariant_to_its_group_only():
    net = EquivariantNetwork(1, 1, 1, layers=RING_LAYERS, group="dihedral(6)").double()
    assert isinstance(net.layers[-1], GroupLinear)  # the head follows the group
    batch = ring_batch()
    for train in (True, False):
        result = assert_equivariant(
            net, batch, SetSymmetry(group=dihedral(6)), num_samples=3, train=train
        )
        assert [r.element for r in result.rows][:3] == ["generator 1", "generator 2", "random 1"]
    with pytest.raises(EquivarianceViolation, match="GroupLinear"):
        assert_equivariant(net, batch, SetSymmetry())  # S_n


def test_check_samples_the_declared_group():
    # C_6-equivariant, not D_6 or S_6: passes under C_6, flagged under the larger groups
    net = EquivariantNetwork(1, 1, 1, layers=RING_LAYERS, group=cyclic(6)).double()
    batch = ring_batch()
    assert equivariance_error(net, batch, SetSymmetry(group=cyclic(6))).max_abs_error < 1e-12
    for symmetry in (SetSymmetry(group="dihedral(6)"), SetSymmetry()):
        assert equivariance_error(net, batch, symmetry).max_abs_error > 1e-3
    with pytest.raises(ValueError, match="exactly 6 positions"):
        equivariance_error(net, ring_batch(n=7), SetSymmetry(group=cyclic(6)))


def validate(group, symmetry_group):
    torch.manual_seed(0)
    task = RingDataModule(n=6, batch_size=8, batches_per_epoch=1, val_sets=16)
    model = SymmetricModule(
        partial(EquivariantNetwork, layers=RING_LAYERS),  # built for the group of rep_out
        element_shape=task.element_shape,
        rep_out=task.rep_out.with_group(group),
    )
    task.rep_out = task.rep_out.with_group(symmetry_group)  # the symmetry the check samples
    trainer = L.Trainer(
        callbacks=[EquivarianceCheck(on_violation="raise")],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.validate(model, task, verbose=False)
    return trainer.callback_metrics["equivariance/max_abs_error"]


def test_callback_checks_the_declared_group():
    assert validate(cyclic(6), cyclic(6)) < 1e-4
    with pytest.raises(EquivarianceViolation, match="generator|random"):
        validate(cyclic(6), None)  # S_n


# -- the ring task --------------------------------------------------------------------------------


def test_local_maxima_against_a_loop():
    values = torch.rand(50, 7, generator=torch.Generator().manual_seed(0))
    want = torch.tensor(
        [
            [v[i] > v[(i - 1) % 7] and v[i] > v[(i + 1) % 7] for i in range(7)]
            for v in values.tolist()
        ]
    )
    assert torch.equal(local_maxima(values), want)


def test_ring_targets_have_the_dihedral_symmetry_and_not_more():
    task = RingDataModule(n=8, batch_size=64, batches_per_epoch=1, val_sets=64)
    batch = next(iter(task.val_dataloader()))
    x, y = batch["x"], batch["y"]
    assert x.shape == (64, 8, 1) and batch["mask"].all() and y.dtype == torch.bool
    assert torch.equal(y, local_maxima(x[..., 0]))
    gen = torch.Generator().manual_seed(0)
    for g in task.symmetry.group.random_elements(5, gen):
        gx = act(x, g, 1)
        assert torch.equal(local_maxima(gx[..., 0]), act(y[..., None], g, 1)[..., 0])
    swap = torch.tensor([4, 1, 2, 3, 0, 5, 6, 7])  # exchanges two positions that are not neighbours
    moved = local_maxima(act(x, swap, 1)[..., 0])
    assert not torch.equal(moved, act(y[..., None], swap, 1)[..., 0])
    # a perfect prediction solves every ring, its complement none
    logits = torch.where(y, 1.0, -1.0)[..., None]
    assert task.evaluate(logits, batch)["acc"].mean() == 1
    assert task.evaluate(-logits, batch)["element_acc"].max() == 0
    assert torch.isfinite(task.loss(logits, batch))


def test_ring_training_batches_are_reproducible():
    first = next(iter(RingDataModule(n=5, batches_per_epoch=2).train_dataloader()))
    again = next(iter(RingDataModule(n=5, batches_per_epoch=2).train_dataloader()))
    assert torch.equal(first["x"], again["x"])
    with pytest.raises(ValueError, match="n must be at least 3"):
        RingDataModule(n=2)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_ring_config_learns_and_a_set_network_cannot(tmp_path):
    accuracy = {}
    for name, extra in (("ring", []), ("set", ["--model.init_args.net", "models/pairwise.yaml"])):
        workdir = tmp_path / name
        workdir.mkdir()
        args = ["fit", "--config", "ring.yaml", "--trainer.enable_progress_bar=false", *extra]
        result = run_cli(args, cwd=workdir, timeout=1100)
        assert result.returncode == 0, result.stderr[-3000:]
        run = sorted((workdir / "lightning_logs").glob("*/version_*"))[-1]
        values = scalars(run)
        accuracy[name] = values["val/acc"][-1]
        assert max(values["equivariance/max_rel_error"]) < 1e-4
    assert accuracy["ring"] > 0.8 and accuracy["set"] < 0.1, accuracy


# -- the group flows from the data ----------------------------------------------------------------

RING_FIT = [
    "--trainer.max_epochs=1",
    "--trainer.enable_progress_bar=false",
    "--data.init_args.batches_per_epoch=3",
    "--data.init_args.val_sets=16",
]


@pytest.mark.timeout(240)
def test_ring_with_another_size_trains_a_network_for_its_group(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli = main(["fit", "--config", "ring", "--data.init_args.n", "20", *RING_FIT])
    net = cli.model.net
    assert net.group == dihedral(20) and net.rep_out.group == dihedral(20)
    assert cli.trainer.global_step == 3
    assert cli.trainer.callback_metrics["equivariance/max_abs_error"] < 1e-4
    saved = torch.load(next(tmp_path.rglob("last.ckpt")), map_location="cpu", weights_only=True)[
        "hyper_parameters"
    ]
    assert saved["rep_out"] == "1x1 @ D_20"


@pytest.mark.timeout(240)
def test_a_network_built_for_another_group_is_one_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = ["fit", "--config", "ring", "--data.init_args.n", "20", *RING_FIT]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--model.init_args.net.init_args.group", "dihedral(16)"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("symlight: error: EquivariantNetwork is built for the group D_16")
    assert "1x1 @ D_20" in error
    assert not (tmp_path / "lightning_logs").exists()
