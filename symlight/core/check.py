"""Measure how far a model is from permutation equivariance, and find the layer that breaks it.

A model ``f`` is equivariant to S_n when ``f(P·batch) = P·f(batch)`` for every permutation ``P`` of
the set, with ``P`` acting on each tensor by its order (see :mod:`symlight.core.symmetry`). The check
applies sampled group elements to the inputs, runs the model, brings the outputs back with the
inverse permutation and compares them with the outputs of the unpermuted batch.

The group elements always include the two generators of S_n (the transposition of the first two
real elements and the cycle over all real elements), followed by ``num_samples`` uniformly random
permutations. A map that commutes with both generators commutes with the whole group, so a
violation cannot hide from the check behind an unlucky sample. When the symmetry names another
group (``SetSymmetry(group=dihedral(16))``, see :mod:`symlight.core.groups`), its generators and
uniformly random elements of it are used instead. Over several independent sets (a symmetry with
orders per set, ``SetSymmetry({"x": (1, 1)}, out_order=(1, 1))``) the group is the product of one
group per set: each generator of each set's group is applied with the identity on the other sets
(``transposition of set 1``), then ``num_samples`` elements draw a random permutation for every
set at once.

Two layers, as in e3nn: :func:`equivariance_error` *measures* and returns numbers (an
:class:`EquivarianceResult`); :func:`assert_equivariant` *asserts*, with a tolerance that defaults
by dtype, and raises :class:`EquivarianceViolation` with a table and the first submodule whose
output stops being equivariant (:func:`locate_violation`, forward hooks on the same permuted batch).

>>> from symlight.models import DeepSets
>>> net = DeepSets(1, 1, out_order=1, hidden=8).double()
>>> batch = {"x": torch.randn(4, 6, 1, dtype=torch.float64), "mask": torch.ones(4, 6, dtype=bool)}
>>> result = equivariance_error(net, batch, SetSymmetry({"x": 1}, out_order=1))
>>> [row.element for row in result.rows]
['transposition', 'cycle', 'random 1', 'random 2']
>>> result.max_abs_error < 1e-12
True
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from symlight.core.groups import PermutationGroup
from symlight.core.rep import Rep, entry_mask, set_masks
from symlight.core.symmetry import (
    SetSymmetry,
    check_orders,
    generators,
    identity,
    inverse,
    permute,
    permute_batch,
    permute_sets,
    random_permutation,
)

__all__ = [
    "TOLERANCES",
    "ElementError",
    "EquivarianceResult",
    "EquivarianceViolation",
    "Forward",
    "SubmoduleError",
    "assert_equivariant",
    "equivariance_error",
    "find_violation",
    "locate_violation",
    "tolerances",
]

Forward = Callable[[nn.Module, Mapping[str, Tensor]], "Tensor | Mapping[str, Tensor]"]
"""How to run a model on a batch dict. The default calls a :class:`~symlight.models.SetModule` as
``model(batch["x"], mask=batch["mask"])`` and any other module (a LightningModule) as
``model(batch)``."""

TOLERANCES: dict[torch.dtype, float] = {
    torch.float64: 1e-9,
    torch.float32: 1e-4,
    torch.bfloat16: 5e-2,
    torch.float16: 5e-2,
}
"""Default tolerance per output dtype, used both as absolute and as relative tolerance."""


def tolerances(
    dtype: torch.dtype,
    atol: float | None = None,
    rtol: float | None = None,
    compute_dtype: torch.dtype | None = None,
) -> tuple[float, float]:
    """``(atol, rtol)`` for outputs of ``dtype``: the one place tolerances are resolved.

    Each defaults to :data:`TOLERANCES` of ``dtype``, or of ``compute_dtype`` (e.g. the autocast
    dtype under mixed precision) when that one is less precise: an output promoted to float32
    after bfloat16 matmuls carries bfloat16 rounding errors. A dtype without a default
    (integers) takes float32's.

    >>> tolerances(torch.float64), tolerances(torch.float32, atol=0.0)
    ((1e-09, 1e-09), (0.0, 0.0001))
    >>> tolerances(torch.float32, compute_dtype=torch.bfloat16)
    (0.05, 0.05)
    """
    dtype = _coarsest(dtype, compute_dtype)
    tol = TOLERANCES.get(dtype, TOLERANCES[torch.float32])
    return (tol if atol is None else atol, tol if rtol is None else rtol)


def _coarsest(dtype: torch.dtype, other: torch.dtype | None) -> torch.dtype:
    """The less precise of two floating dtypes."""
    if other is None or not other.is_floating_point or not dtype.is_floating_point:
        return dtype
    return other if torch.finfo(other).eps > torch.finfo(dtype).eps else dtype


@dataclass(frozen=True)
class ElementError:
    """The error of one group element on one output of the model.

    ``max_abs_error`` is ``max |f(P·x) - P·f(x)|`` over the real (unpadded) entries,
    ``max_rel_error`` the same divided by ``scale = max |f(x)|``; ``worst_set`` is the set of the
    batch where the absolute error is largest, ``perm`` the ``(B, n)`` permutation applied and
    ``seed`` the seed of the random number generator during both forward passes (dropout).
    Over several sets ``perm`` is a tuple of one permutation per set.
    """

    element: str
    output: str
    max_abs_error: float
    max_rel_error: float
    scale: float
    worst_set: int
    perm: Tensor | tuple[Tensor, ...]
    seed: int

    def violates(self, atol: float, rtol: float) -> bool:
        """True when the error exceeds both the absolute and the relative tolerance."""
        return self.max_abs_error > atol and self.max_rel_error > rtol

    def describe_element(self, limit: int = 12) -> str:
        """The group element on the worst set, e.g. ``transposition [1, 0, 2, 3] (set 0)``;
        over several sets one permutation per set, ``[1, 0, 2] x [0, 1]``.
        """
        perms = self.perm if isinstance(self.perm, tuple) else (self.perm,)
        shown = []
        for perm in perms:
            images = perm[self.worst_set].tolist()
            text = ", ".join(map(str, images[:limit])) + (", ..." if len(images) > limit else "")
            shown.append(f"[{text}]")
        return f"{self.element} {' x '.join(shown)} (set {self.worst_set})"


@dataclass(frozen=True)
class EquivarianceResult:
    """What :func:`equivariance_error` measured: one :class:`ElementError` per (element, output)."""

    rows: tuple[ElementError, ...]
    dtype: torch.dtype
    training: bool

    @property
    def max_abs_error(self) -> float:
        """Largest absolute error over every group element and output."""
        return max((r.max_abs_error for r in self.rows), default=0.0)

    @property
    def max_rel_error(self) -> float:
        """Largest relative error over every group element and output."""
        return max((r.max_rel_error for r in self.rows), default=0.0)

    @property
    def per_output(self) -> dict[str, tuple[float, float]]:
        """``{output: (max_abs_error, max_rel_error)}`` over the group elements."""
        out: dict[str, tuple[float, float]] = {}
        for r in self.rows:
            a, b = out.get(r.output, (0.0, 0.0))
            out[r.output] = (max(a, r.max_abs_error), max(b, r.max_rel_error))
        return out

    def tolerances(
        self, atol: float | None = None, rtol: float | None = None
    ) -> tuple[float, float]:
        """``(atol, rtol)``, each defaulting to the tolerance of the output dtype."""
        return tolerances(self.dtype, atol, rtol)

    def violations(
        self, atol: float | None = None, rtol: float | None = None
    ) -> list[ElementError]:
        """The rows whose error exceeds both tolerances, worst (relative error) first."""
        atol, rtol = self.tolerances(atol, rtol)
        bad = [r for r in self.rows if r.violates(atol, rtol)]
        return sorted(bad, key=lambda r: -r.max_rel_error)

    def ok(self, atol: float | None = None, rtol: float | None = None) -> bool:
        """True when no group element violates the tolerances."""
        return not self.violations(atol, rtol)

    def table(self) -> str:
        """A plain-text table of the rows."""
        w = max([14] + [len(r.element) for r in self.rows])
        lines = [f"{'element':<{w}} {'output':<12} {'max abs error':>14} {'max rel error':>14}"]
        for r in self.rows:
            lines.append(
                f"{r.element:<{w}} {r.output:<12} {r.max_abs_error:>14.3e} {r.max_rel_error:>14.3e}"
            )
        return "\n".join(lines)


@dataclass(frozen=True)
class SubmoduleError:
    """The first submodule (in execution order) whose output is not equivariant."""

    name: str
    type_name: str
    order: int | tuple[int, ...]
    max_abs_error: float
    max_rel_error: float

    def __str__(self) -> str:
        where = f"{self.type_name} {self.name!r}" if self.name else f"{self.type_name} (the model)"
        order = self.order
        if isinstance(order, tuple):
            order = f"({','.join(map(str, order))})"
        return (
            f"{where}, order-{order} output, error {self.max_abs_error:.3e} "
            f"(relative {self.max_rel_error:.3e})"
        )


class EquivarianceViolation(AssertionError):
    """Raised when a model's outputs do not commute with permutations of its inputs."""


# -- running the model ---------------------------------------------------------------------------


def default_forward(model: nn.Module, batch: Mapping[str, Tensor]) -> Tensor | Mapping:
    """Call a network (a module that declares its input representation, ``rep_in``) as
    ``model(x, mask=mask)`` and anything else (a LightningModule) as ``model(batch)``.
    """
    if hasattr(model, "rep_in"):
        return model(batch["x"], mask=batch.get("mask"))
    return model(batch)


@contextlib.contextmanager
def _seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Run with the RNG of the CPU and of ``device`` seeded, and restore both afterwards."""
    cuda = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.default_generator.manual_seed(seed)
        if cuda:
            with torch.cuda.device(device):
                torch.cuda.manual_seed(seed)
        yield


@contextlib.contextmanager
def _mode(model: nn.Module, train: bool | None) -> Iterator[None]:
    """Set train/eval mode (``None`` keeps it), restore every submodule's mode and, when any is
    in training mode, the buffers that training-mode forwards update (batch-norm statistics).
    """
    modes = [(m, m.training) for m in model.modules()]
    if train is not None:
        model.train(train)
    training = any(m.training for m in model.modules())
    saved = [(b, b.detach().clone()) for b in model.buffers()] if training else []
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in saved:
                buffer.copy_(value)
        for module, mode in modes:
            module.training = mode


Orders = int | tuple[int, ...]
"""An order over one set, or one order per set."""


def _outputs(
    out: Tensor | Mapping[str, Tensor] | Sequence[Tensor],
    out_order: Orders | Mapping[str, Orders],
) -> dict[str, tuple[Tensor, Orders]]:
    if isinstance(out, Tensor):
        named = {"output": out}
    elif isinstance(out, Mapping):
        named = dict(out)
    else:
        named = {f"output[{i}]": t for i, t in enumerate(out)}
    if isinstance(out_order, Mapping):
        return {k: (t, check_orders(out_order[k])) for k, t in named.items()}
    return {k: (t, check_orders(out_order)) for k, t in named.items()}


def _set_errors(
    reference: Tensor,
    permuted: Tensor,
    perm: Tensor | tuple[Tensor, ...],
    order: Orders,
    mask,
) -> tuple[Tensor, Tensor]:
    """Per-set max absolute error ``(B,)`` and the scale ``max |reference|`` (a scalar)."""
    if isinstance(order, tuple):  # several sets: one permutation and one mask per set
        back = permute_sets(permuted, [inverse(p) for p in perm], order)
        axes = sum(order)
    else:
        back = permute(permuted, inverse(perm), order)
        axes = order
    compute = torch.promote_types(reference.dtype, torch.float32)
    ref = reference.detach().to(compute)
    err = (back.detach().to(compute) - ref).abs()
    err = torch.nan_to_num(err, nan=float("inf"))
    keep = entry_mask(mask, order, trailing=err.dim() - 1 - axes)
    if keep is not None:
        err = err.masked_fill(~keep, 0.0)
        ref = ref.masked_fill(~keep, 0.0)
    per_set = err.flatten(1).amax(1) if err.dim() > 1 else err
    return per_set, ref.abs().amax()


def _set_sizes(batch: Mapping[str, Tensor], symmetry: SetSymmetry) -> tuple[int, list[int]]:
    """The batch size and the size of each set, from the masks or from the inputs' shapes."""
    masks = set_masks(batch.get("mask"), symmetry.num_sets)
    sizes: list[int | None] = [None if m is None else m.shape[1] for m in masks]
    size = next((m.shape[0] for m in masks if m is not None), None)
    for key, orders in symmetry.inputs.items():
        x = batch[key]
        size = x.shape[0] if size is None else size
        orders = orders if isinstance(orders, tuple) else (orders,)
        start = 1
        for s, k in enumerate(orders):
            if k and sizes[s] is None:
                sizes[s] = x.shape[start]
            start += k
    missing = [s for s, n in enumerate(sizes) if n is None]
    if missing:
        raise ValueError(
            f"the size of set {missing[0]} is unknown: no input has an axis over it; give the "
            "batch a mask per set"
        )
    return size, sizes


def _elements(
    batch: Mapping[str, Tensor],
    symmetry: SetSymmetry,
    num_samples: int,
    generator: torch.Generator,
    device: torch.device,
) -> list[tuple[str, Tensor | tuple[Tensor, ...]]]:
    size, sizes = _set_sizes(batch, symmetry)
    masks = set_masks(batch.get("mask"), symmetry.num_sets)
    per_set = [
        _set_elements(group, size, n, mask, num_samples, generator, device)
        for group, n, mask in zip(symmetry.groups, sizes, masks)
    ]
    if symmetry.num_sets == 1:
        gens, randoms = per_set[0]
        return gens + [(f"random {i + 1}", p) for i, p in enumerate(randoms)]
    ids = [identity(size, n, device) for n in sizes]
    elements: list[tuple[str, Tensor | tuple[Tensor, ...]]] = []
    for s, (gens, _) in enumerate(per_set):
        for name, perm in gens:
            elements.append((f"{name} of set {s}", (*ids[:s], perm, *ids[s + 1 :])))
    for i in range(num_samples):
        elements.append((f"random {i + 1}", tuple(randoms[i] for _, randoms in per_set)))
    return elements


def _set_elements(
    group: PermutationGroup | None,
    size: int,
    n: int,
    mask: Tensor | None,
    num_samples: int,
    generator: torch.Generator,
    device: torch.device,
) -> tuple[list[tuple[str, Tensor]], list[Tensor]]:
    """The named generators of one set's group and ``num_samples`` random elements of it."""
    if group is not None:
        elements = _group_elements(group, size, n, mask, num_samples, generator, device)
        gens = elements[: len(elements) - num_samples]
        return gens, [perm for _, perm in elements[len(gens) :]]
    swap, cycle = generators(size, n, mask=mask, device=device)
    randoms = [
        random_permutation(size, n, mask=mask, generator=generator, device=device)
        for _ in range(num_samples)
    ]
    return [("transposition", swap), ("cycle", cycle)], randoms


def _group_elements(
    group: PermutationGroup,
    size: int,
    n: int,
    mask: Tensor | None,
    num_samples: int,
    generator: torch.Generator,
    device: torch.device,
) -> list[tuple[str, Tensor]]:
    """The generators of a declared group, then ``num_samples`` random elements (one per set)."""
    padded = mask is not None and not bool(mask.all())
    if n != group.degree or padded:
        raise ValueError(
            f"the task's group {group} permutes exactly {group.degree} positions, but the batch "
            f"has sets of {n}{' with padding' if padded else ''}: every set must have exactly "
            f"{group.degree} real elements"
        )
    elements = [
        (f"generator {i + 1}", g.to(device).expand(size, n).clone())
        for i, g in enumerate(group.generators)
    ]
    for i in range(num_samples):
        perm = group.random_elements(size, generator).to(device)
        elements.append((f"random {i + 1}", perm))
    return elements


def _device(batch: Mapping[str, Tensor]) -> torch.device:
    for value in batch.values():
        if isinstance(value, Tensor):
            return value.device
    raise ValueError("the batch holds no tensors")


# -- measure -------------------------------------------------------------------------------------


def equivariance_error(
    model: nn.Module,
    batch: Mapping[str, Tensor],
    symmetry: SetSymmetry,
    num_samples: int = 2,
    generator: torch.Generator | None = None,
    *,
    train: bool | None = None,
    forward: Forward | None = None,
    out_order: Orders | Mapping[str, Orders] | None = None,
) -> EquivarianceResult:
    """Measure ``max |f(P·batch) - P·f(batch)|`` over sampled group elements ``P``.

    Args:
        model: a network (called as ``model(x, mask=mask)``) or a module that takes the batch
            dict (a :class:`~symlight.training.module.SymmetricModule`), or anything ``forward`` can run.
        batch: dict of tensors; the keys of ``symmetry.inputs`` and ``mask`` are permuted, all
            with the same permutation (several inputs sharing one set axis stay aligned). Padded
            elements (``mask`` False) stay in place, so the batch stays padded the same way.
        symmetry: which inputs permute, and the order of the output.
        num_samples: random permutations on top of the generators of the group (S_n unless
            ``symmetry.group`` names another; they are always included): ``3 + num_samples``
            forward passes in all for S_n, ``1 + 2·k + num_samples`` for a product of ``k``
            symmetric groups.
        generator: draws the random permutations and the dropout seed; a fresh one seeded with 0
            when omitted. The global RNG state is never touched.
        train: run in training mode (True), eval mode (False), or the model's mode (None). The
            modes and batch-norm buffers are restored afterwards. In training mode every forward
            pass starts from the same seed, so dropout shared across the set draws the same mask.
        forward: how to run the model on a batch (see :data:`Forward`).
        out_order: order of the output(s) when it differs from ``symmetry.out_order``;
            a dict ``{name: order}`` for models that return a dict of outputs.

    Returns:
        An :class:`EquivarianceResult`: one row per group element and output, with maximum
        absolute and relative errors over the real entries, in the dtype the model computes in.

    """
    if num_samples < 0:
        raise ValueError(f"num_samples must be >= 0, got {num_samples}")
    forward = forward or default_forward
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    order = symmetry.out_order if out_order is None else out_order
    device = _device(batch)
    mask = batch.get("mask")
    seed = int(torch.randint(2**62, (1,), generator=generator))
    elements = _elements(batch, symmetry, num_samples, generator, device)

    per_set, scales, names = [], [], []
    with torch.no_grad(), _mode(model, train):
        training = model.training
        with _seeded(seed, device):
            reference = _outputs(forward(model, batch), order)
        for element, perm in elements:
            with _seeded(seed, device):
                permuted = _outputs(forward(model, permute_batch(batch, perm, symmetry)), order)
            for name, (ref, k) in reference.items():
                errors, scale = _set_errors(ref, permuted[name][0], perm, k, mask)
                per_set.append(errors)
                scales.append(scale)
                names.append((element, name, perm))
    dtype = next(iter(reference.values()))[0].dtype
    if not per_set:
        return EquivarianceResult((), dtype, training)
    per_set_t = torch.stack(per_set)
    abs_err, worst = per_set_t.max(1)
    scale = torch.stack(scales)
    rel = abs_err / scale.clamp(min=torch.finfo(scale.dtype).tiny)
    table = torch.stack([abs_err, rel, scale, worst.to(abs_err.dtype)], 1).cpu().tolist()
    rows = tuple(
        ElementError(element, name, a, r, s, int(w), perm, seed)
        for (element, name, perm), (a, r, s, w) in zip(names, table)
    )
    return EquivarianceResult(rows, dtype, training)


def locate_violation(
    model: nn.Module,
    batch: Mapping[str, Tensor],
    symmetry: SetSymmetry,
    perm: Tensor | tuple[Tensor, ...],
    *,
    seed: int = 0,
    atol: float | None = None,
    rtol: float | None = None,
    train: bool | None = None,
    forward: Forward | None = None,
) -> SubmoduleError | None:
    """The first submodule whose output is not equivariant under ``perm``, or None.

    Records, with forward hooks, the output of every submodule that declares its output
    representation ``rep_out`` over the symmetry's sets (every
    :class:`~symlight.models.SetModule`) on the batch and on the permuted batch, brings the
    latter back by the orders of its ``rep_out`` and compares. Modules are visited in the order
    their forward passes finish, so an inner layer comes before the network that contains it.
    Tolerances default by the dtype of each submodule's output.
    """
    forward = forward or default_forward
    typed = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(getattr(module, "rep_out", None), Rep)
        and module.rep_out.num_sets == symmetry.num_sets
    ]
    device = _device(batch)
    mask = batch.get("mask")

    def record(permuted_batch: Mapping[str, Tensor]) -> dict[str, list[Tensor]]:
        store: dict[str, list[Tensor]] = {}
        handles = []
        for name, module in typed:

            def hook(_module, _args, out, name=name):
                if isinstance(out, Tensor):
                    store.setdefault(name, []).append(out.detach())

            handles.append(module.register_forward_hook(hook))
        try:
            with _seeded(seed, device):
                forward(model, permuted_batch)
        finally:
            for handle in handles:
                handle.remove()
        return store

    with torch.no_grad(), _mode(model, train):
        original = record(batch)
        permuted = record(permute_batch(batch, perm, symmetry))
    orders = {
        name: module.rep_out.order if symmetry.num_sets == 1 else module.rep_out.orders
        for name, module in typed
    }
    types = {name: type(module).__name__ for name, module in typed}
    for name, outs in original.items():
        for ref, out in zip(outs, permuted.get(name, [])):
            axes = sum(orders[name]) if isinstance(orders[name], tuple) else orders[name]
            if ref.shape != out.shape or ref.dim() < 1 + axes:
                continue
            try:
                errors, scale = _set_errors(ref, out, perm, orders[name], mask)
            except ValueError:
                continue  # not a set-shaped output (e.g. a different set size)
            a = float(errors.max())
            r = a / max(float(scale), torch.finfo(torch.float32).tiny)
            module_atol, module_rtol = tolerances(ref.dtype, atol, rtol)
            if a > module_atol and r > module_rtol:
                return SubmoduleError(name, types[name], orders[name], a, r)
    return None


# -- assert --------------------------------------------------------------------------------------


def violation_message(
    result: EquivarianceResult,
    culprit: SubmoduleError | None,
    atol: float | None = None,
    rtol: float | None = None,
) -> str:
    """The message of a violation: the worst element, the culprit and the table of errors."""
    atol, rtol = result.tolerances(atol, rtol)
    worst = result.violations(atol, rtol)[0]
    mode = "train" if result.training else "eval"
    where = (
        f"first non-equivariant submodule: {culprit}"
        if culprit is not None
        else "no submodule with a rep_out shows it (the break is outside the typed layers)"
    )
    return (
        f"not equivariant ({mode} mode, {result.dtype}): output {worst.output!r} under the "
        f"{worst.describe_element()} has error {worst.max_abs_error:.3e} (relative "
        f"{worst.max_rel_error:.3e}; atol {atol:.1e}, rtol {rtol:.1e}); {where}\n{result.table()}"
    )


def find_violation(
    model: nn.Module,
    batch: Mapping[str, Tensor],
    symmetry: SetSymmetry,
    num_samples: int = 2,
    generator: torch.Generator | None = None,
    *,
    atol: float | None = None,
    rtol: float | None = None,
    compute_dtype: torch.dtype | None = None,
    locate: bool = True,
    train: bool | None = None,
    forward: Forward | None = None,
    out_order: Orders | Mapping[str, Orders] | None = None,
) -> tuple[EquivarianceResult, str | None]:
    """Measure, and on a violation locate the culprit and describe it: the path shared by
    :func:`assert_equivariant` and the :class:`~symlight.callbacks.EquivarianceCheck` callback.

    Returns the :class:`EquivarianceResult` and, when some group element exceeds the tolerances
    (:func:`tolerances` of the output dtype and ``compute_dtype``), the message of
    :func:`violation_message`, naming the first non-equivariant submodule unless ``locate`` is
    False; else None.
    """
    result = equivariance_error(
        model,
        batch,
        symmetry,
        num_samples,
        generator,
        train=train,
        forward=forward,
        out_order=out_order,
    )
    atol, rtol = tolerances(result.dtype, atol, rtol, compute_dtype)
    bad = result.violations(atol, rtol)
    if not bad:
        return result, None
    culprit = None
    if locate:
        culprit = locate_violation(
            model,
            batch,
            symmetry,
            bad[0].perm,
            seed=bad[0].seed,
            atol=atol,
            rtol=rtol,
            train=train,
            forward=forward,
        )
    return result, violation_message(result, culprit, atol, rtol)


def assert_equivariant(
    model: nn.Module,
    batch: Mapping[str, Tensor],
    symmetry: SetSymmetry,
    num_samples: int = 2,
    generator: torch.Generator | None = None,
    *,
    atol: float | None = None,
    rtol: float | None = None,
    train: bool | None = None,
    forward: Forward | None = None,
    out_order: Orders | Mapping[str, Orders] | None = None,
) -> EquivarianceResult:
    """Measure with :func:`equivariance_error` and raise :class:`EquivarianceViolation` if any
    group element's error exceeds both ``atol`` and ``rtol`` (defaults: by the output dtype).

    The message names the group element, the error, the first submodule whose output stops
    being equivariant, and a table of every measured element. Returns the result otherwise.
    """
    result, message = find_violation(
        model,
        batch,
        symmetry,
        num_samples,
        generator,
        atol=atol,
        rtol=rtol,
        train=train,
        forward=forward,
        out_order=out_order,
    )
    if message is not None:
        raise EquivarianceViolation(message)
    return result
