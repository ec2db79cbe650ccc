"""Finite permutation groups from generators, and exact bases of the linear maps that commute with them.

S_n is one symmetry among many: the positions of a ring have the cyclic group C_n (rotations) or the
dihedral group D_n (rotations and reflections); the cells of a users x items matrix have S_n x S_m
(permute the rows, permute the columns). A :class:`PermutationGroup` is a group of permutations of
``N`` points given by generators. A permutation is a length-``N`` array ``p``; it sends point ``i``
to ``p[i]`` and acts on a tensor over the points the way :func:`symlight.core.symmetry.permute` does,
``(g·x)[i] = x[p[i]]`` (on every set axis of a higher order tensor).

A Schreier-Sims chain (a base and a transversal per base point, built lazily from the generators)
gives the exact ``order()``, membership (``perm in group``) and uniformly random elements: the
product of one uniformly drawn transversal element per level.

>>> G = dihedral(5)
>>> G.order(), [int(g.sum()) for g in G.generators]
(10, [10, 10])
>>> torch.tensor([4, 3, 2, 1, 0]) in G, torch.tensor([1, 0, 2, 3, 4]) in G
(True, False)

:func:`equivariant_basis` returns the linear maps from tensors over ``N^in_order`` index tuples to
tensors over ``N^out_order`` that commute with the group: one 0/1 pattern per orbit of the group on
the ``(out tuple, in tuple)`` index pairs, found exactly by union-find over the tuples with the
generators' moves as edges, never by a numerical null-space.

>>> equivariant_basis(symmetric(4), 1, 1)[1]
tensor([[0, 1, 1, 1],
        [1, 0, 1, 1],
        [1, 1, 0, 1],
        [1, 1, 1, 0]])
>>> [orbit_count(G, 1, 1) for G in (symmetric(6), cyclic(6), dihedral(6))]
[2, 6, 4]
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "PermutationGroup",
    "alternating",
    "cyclic",
    "dihedral",
    "equivariant_basis",
    "orbit_count",
    "orbit_labels",
    "parse_group",
    "product",
    "symmetric",
    "trivial",
]

PermutationLike = Sequence[int] | Tensor | np.ndarray


@dataclass
class _Level:
    """One level of a stabiliser chain: a base point, the generators of the stabiliser of the
    earlier base points, and for each point of the base point's orbit an element mapping the base
    point there (with its inverse).
    """

    base: int
    gens: list[np.ndarray]
    transversal: dict[int, tuple[np.ndarray, np.ndarray]]

    def update_orbit(self, degree: int) -> None:
        identity = np.arange(degree)
        self.transversal = {self.base: (identity, identity)}
        queue = [self.base]
        while queue:
            point = queue.pop()
            u = self.transversal[point][0]
            for s in self.gens:
                image = int(s[point])
                if image not in self.transversal:
                    v = s[u]  # u then s: sends the base point to s[point]
                    self.transversal[image] = (v, np.argsort(v))
                    queue.append(image)


def _is_identity(p: np.ndarray) -> bool:
    return bool((p == np.arange(len(p))).all())


def _as_perm(perm: PermutationLike, degree: int | None = None) -> np.ndarray:
    p = perm.detach().cpu().numpy() if isinstance(perm, Tensor) else np.asarray(perm)
    if p.ndim != 1 or (degree is not None and len(p) != degree):
        want = f"length {degree}" if degree is not None else "a 1-d array"
        raise ValueError(f"a permutation must be {want}, got shape {tuple(p.shape)}")
    p = p.astype(np.int64)
    if not np.array_equal(np.sort(p), np.arange(len(p))):
        raise ValueError(
            f"not a permutation of 0..{len(p) - 1}: {p.tolist()[:12]} (every point exactly once)"
        )
    return p


class PermutationGroup:
    """A group of permutations of ``degree`` points, given by generators.

    Args:
        generators: permutations of ``0..degree-1`` (lists, arrays or tensors), each sending
            point ``i`` to ``p[i]``; they generate the group.
        degree: number of points; required only when there are no generators (the trivial group).
        name: how the group prints, e.g. ``D_8``.

    The group acts on tensors over the points as :func:`symlight.core.symmetry.permute` does. A map is
    equivariant to the group when it commutes with every generator: the check
    (:mod:`symlight.core.check`) always tries the generators, then random elements.

    """

    def __init__(
        self,
        generators: Sequence[PermutationLike] | Tensor,
        degree: int | None = None,
        name: str | None = None,
    ) -> None:
        gens = [_as_perm(g) for g in generators]
        if not gens and degree is None:
            raise ValueError("a group without generators needs its degree (number of points)")
        degree = len(gens[0]) if degree is None else degree
        if degree < 1 or any(len(g) != degree for g in gens):
            lengths = sorted({len(g) for g in gens})
            raise ValueError(f"all generators must permute {degree} points; lengths: {lengths}")
        self.degree = degree
        self._gens = np.stack(gens) if gens else np.zeros((0, degree), dtype=np.int64)
        self.name = name
        self._chain: list[_Level] | None = None

    # -- description ------------------------------------------------------------------------
    @property
    def generators(self) -> Tensor:
        """The generators as a ``(num_generators, degree)`` long tensor."""
        return torch.from_numpy(self._gens.copy())

    def __eq__(self, other: object) -> bool:
        """Two groups are equal when they permute the same points and hold the same elements."""
        if not isinstance(other, PermutationGroup):
            return NotImplemented
        if self is other:
            return True
        if self.degree != other.degree or self.order() != other.order():
            return False
        return all(g in other for g in self.generators)

    def __hash__(self) -> int:
        return hash((self.degree, self.order()))

    def __repr__(self) -> str:
        if self.name is not None:
            return self.name
        return f"PermutationGroup(degree={self.degree}, {len(self._gens)} generators)"

    # -- the stabiliser chain -----------------------------------------------------------------
    @property
    def chain(self) -> list[_Level]:
        if self._chain is None:
            self._chain = _schreier_sims(list(self._gens), self.degree)
        return self._chain

    def order(self) -> int:
        """The number of elements (exact: the product of the chain's orbit lengths)."""
        return math.prod(len(level.transversal) for level in self.chain)

    def __contains__(self, perm: PermutationLike) -> bool:
        try:
            p = _as_perm(perm, self.degree)
        except ValueError:
            return False
        rest, depth = _strip(self.chain, p)
        return depth == len(self.chain) and _is_identity(rest)

    def random_element(self, generator: torch.Generator | None = None) -> Tensor:
        """A uniformly random element, as a ``(degree,)`` long tensor.

        One transversal element per level of the chain, each drawn uniformly from ``generator``
        (the global RNG when None); every group element is exactly one such product.
        """
        g = np.arange(self.degree)
        for level in reversed(self.chain):
            points = list(level.transversal)
            pick = int(torch.randint(len(points), (1,), generator=generator))
            g = level.transversal[points[pick]][0][g]  # g then u
        return torch.from_numpy(g)

    def random_elements(self, count: int, generator: torch.Generator | None = None) -> Tensor:
        """``count`` independent uniformly random elements, ``(count, degree)``."""
        if count == 0:
            return torch.zeros(0, self.degree, dtype=torch.long)
        return torch.stack([self.random_element(generator) for _ in range(count)])

    def elements(self, limit: int = 100_000) -> Iterator[Tensor]:
        """Every element once (for small groups; raises beyond ``limit`` elements)."""
        if self.order() > limit:
            raise ValueError(f"{self} has {self.order()} elements, more than limit={limit}")

        def walk(depth: int, g: np.ndarray) -> Iterator[np.ndarray]:
            if depth < 0:
                yield g
                return
            for u, _ in self.chain[depth].transversal.values():
                yield from walk(depth - 1, u[g])

        for g in walk(len(self.chain) - 1, np.arange(self.degree)):
            yield torch.from_numpy(g)


def _strip(chain: list[_Level], g: np.ndarray, start: int = 0) -> tuple[np.ndarray, int]:
    """Sift ``g`` down the chain: the residue and the level where it left the chain."""
    for depth in range(start, len(chain)):
        level = chain[depth]
        found = level.transversal.get(int(g[level.base]))
        if found is None:
            return g, depth
        g = found[1][g]  # g then u^-1: fixes the base point
    return g, len(chain)


def _schreier_sims(gens: list[np.ndarray], degree: int) -> list[_Level]:
    """A base and strong generating set (deterministic Schreier-Sims, Holt et al. 2005, 4.4.2)."""
    gens = [g for g in gens if not _is_identity(g)]
    chain: list[_Level] = []
    for g in gens:  # a base that no generator fixes pointwise
        if all(g[level.base] == level.base for level in chain):
            chain.append(_Level(int(np.flatnonzero(g != np.arange(degree))[0]), [], {}))
    for depth, level in enumerate(chain):
        fixed = [lv.base for lv in chain[:depth]]
        level.gens = [g for g in gens if all(g[b] == b for b in fixed)]
        level.update_orbit(degree)
    depth = len(chain) - 1
    while depth >= 0:
        depth = _check_level(chain, depth, degree)
    return chain


def _check_level(chain: list[_Level], depth: int, degree: int) -> int:
    """Sift every Schreier generator of level ``depth``; on the first that does not sift, extend
    the chain and return the deepest level changed, else return ``depth - 1``.
    """
    level = chain[depth]
    for u, _ in list(level.transversal.values()):
        for s in level.gens:
            y = level.transversal[int(s[u[level.base]])][1][s[u]]  # u, s, then back
            if _is_identity(y):
                continue
            rest, reached = _strip(chain, y, depth + 1)
            if reached == len(chain) and _is_identity(rest):
                continue
            if reached == len(chain):
                moved = int(np.flatnonzero(rest != np.arange(degree))[0])
                chain.append(_Level(moved, [], {}))
            for lower in chain[depth + 1 : reached + 1]:
                lower.gens.append(rest)
                lower.update_orbit(degree)
            return reached
    return depth - 1


def _known_chain(group: PermutationGroup, levels: list[tuple[int, dict[int, np.ndarray]]]) -> None:
    """Install a stabiliser chain known in closed form (for S_n and A_n at large n)."""
    chain = []
    for base, transversal in levels:
        entries = {p: (u, np.argsort(u)) for p, u in transversal.items()}
        chain.append(_Level(base, [], entries))
    group._chain = chain


# -- constructors ---------------------------------------------------------------------------------


def _cycle(n: int) -> np.ndarray:
    return np.roll(np.arange(n), -1)


def _swap(n: int, i: int, j: int) -> np.ndarray:
    p = np.arange(n)
    p[i], p[j] = j, i
    return p


def trivial(n: int) -> PermutationGroup:
    """The group with one element, acting on ``n`` points."""
    return PermutationGroup([], degree=n, name=f"1_{n}")


def symmetric(n: int) -> PermutationGroup:
    """S_n, every permutation of ``n`` points; generated by the swap of 0 and 1 and the n-cycle."""
    _check_degree("symmetric", n, 1)
    gens = [_swap(n, 0, 1), _cycle(n)] if n > 1 else []
    group = PermutationGroup(gens, degree=n, name=f"S_{n}")
    identity = np.arange(n)
    levels = []
    for i in range(n - 1):  # level i: the transpositions (i j), j >= i
        levels.append((i, {j: (identity if j == i else _swap(n, i, j)) for j in range(i, n)}))
    _known_chain(group, levels)
    return group


def alternating(n: int) -> PermutationGroup:
    """A_n, the even permutations of ``n`` points; generated by 3-cycles."""
    _check_degree("alternating", n, 1)
    gens = [_three_cycle(n, 0, 1, i) for i in range(2, n)]
    group = PermutationGroup(gens, degree=n, name=f"A_{n}")
    identity = np.arange(n)
    levels = []
    for i in range(n - 2):  # level i: 3-cycles i -> j -> k -> i inside i..n-1
        transversal = {i: identity}
        for j in range(i + 1, n):
            k = i + 1 if j != i + 1 else i + 2
            transversal[j] = _three_cycle(n, i, j, k)
        levels.append((i, transversal))
    _known_chain(group, levels)
    return group


def _three_cycle(n: int, a: int, b: int, c: int) -> np.ndarray:
    p = np.arange(n)
    p[a], p[b], p[c] = b, c, a
    return p


def cyclic(n: int) -> PermutationGroup:
    """C_n, the rotations of a ring of ``n`` positions: ``i -> i + 1 mod n`` generates it."""
    _check_degree("cyclic", n, 1)
    return PermutationGroup([_cycle(n)] if n > 1 else [], degree=n, name=f"C_{n}")


def dihedral(n: int) -> PermutationGroup:
    """D_n, the rotations and reflections of a ring of ``n`` positions (order ``2n`` for n >= 3).

    Generated by the rotation ``i -> i + 1`` and the reflection ``i -> -i mod n``.
    """
    _check_degree("dihedral", n, 1)
    reflection = (-np.arange(n)) % n
    gens = [g for g in (_cycle(n), reflection) if not _is_identity(g)]
    return PermutationGroup(gens, degree=n, name=f"D_{n}")


def product(first: PermutationGroup, second: PermutationGroup) -> PermutationGroup:
    """The direct product ``G x H`` acting on the ``N·M`` cells of an ``N x M`` matrix.

    Cell ``(i, j)`` is point ``i·M + j`` (row-major, as ``x.flatten``); ``G`` permutes the rows and
    ``H`` the columns. ``product(symmetric(n), symmetric(m))`` is the symmetry of a users x items
    matrix whose users and items are both exchangeable.
    """
    n, m = first.degree, second.degree
    rows, cols = np.arange(n)[:, None], np.arange(m)[None, :]
    gens = [(g[rows] * m + cols).reshape(-1) for g in first._gens]
    gens += [(rows * m + h[cols]).reshape(-1) for h in second._gens]
    return PermutationGroup(gens, degree=n * m, name=f"{first} x {second}")


def _check_degree(name: str, n: int, least: int) -> None:
    if not isinstance(n, int) or n < least:
        raise ValueError(f"{name}(n) needs an integer n >= {least}, got {n!r}")


CONSTRUCTORS = {
    "symmetric": symmetric,
    "alternating": alternating,
    "cyclic": cyclic,
    "dihedral": dihedral,
    "trivial": trivial,
    "product": product,
}
"""Group constructors by name, as :func:`parse_group` reads them."""


SHORT_NAMES = {"S": "symmetric", "A": "alternating", "C": "cyclic", "D": "dihedral", "1": "trivial"}
"""The printed names of groups (``D_8``, ``S_3 x S_4``), as :func:`parse_group` also reads them."""


def parse_group(text: str | PermutationGroup) -> PermutationGroup:
    """A group from a short expression, as written in a YAML config, or from its printed name.

    >>> parse_group("dihedral(8)")
    D_8
    >>> parse_group("product(symmetric(3), symmetric(4))").order()
    144
    >>> parse_group("S_3 x S_4") == parse_group("product(symmetric(3), symmetric(4))")
    True
    """
    if isinstance(text, PermutationGroup):
        return text
    try:
        tree = ast.parse(_expand_names(text.strip()), mode="eval").body
        return _evaluate(tree)
    except (SyntaxError, ValueError, TypeError) as error:
        raise ValueError(
            f"cannot read the group {text!r} ({error}); write e.g. 'dihedral(16)', 'cyclic(8)' or "
            f"'product(symmetric(5), symmetric(4))'; constructors: {', '.join(CONSTRUCTORS)}"
        ) from None


def _expand_names(text: str) -> str:
    """``"D_8"`` -> ``"dihedral(8)"``, ``"S_3 x S_4"`` -> ``"product(symmetric(3), symmetric(4))"``."""
    expanded = re.sub(
        r"(?<![A-Za-z_])([SACD1])_(\d+)", lambda m: f"{SHORT_NAMES[m[1]]}({m[2]})", text
    )
    factors = [f.strip() for f in re.split(r"\s+x\s+", expanded)]
    product_of = factors[0]
    for factor in factors[1:]:
        product_of = f"product({product_of}, {factor})"
    return product_of


def _evaluate(node: ast.AST):
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        if node.func.id not in CONSTRUCTORS:
            raise ValueError(f"unknown constructor {node.func.id!r}")
        return CONSTRUCTORS[node.func.id](*[_evaluate(a) for a in node.args])
    raise ValueError(f"unexpected {ast.unparse(node)!r}")


# -- orbits on index tuples -------------------------------------------------------------------------


def _tuple_moves(perm: np.ndarray, arity: int) -> np.ndarray:
    """Where ``perm`` sends each of the ``N^arity`` index tuples (flat, row-major)."""
    moves = np.zeros(1, dtype=np.int64)
    for _ in range(arity):
        moves = (moves[:, None] * len(perm) + perm[None, :]).reshape(-1)
    return moves


def _components(moves: list[np.ndarray], size: int) -> np.ndarray:
    """Connected components of the graph ``t -- move(t)``: vectorised union-find.

    Every pointer goes to a smaller index of the same component; each round hooks the root of
    one end of every edge under the smaller root of the other, then compresses the pointers to
    roots, until every edge joins two nodes with the same root. Returns the root of each node
    (the smallest index of its component).
    """
    parent = np.arange(size)
    while True:
        for move in moves:
            a, b = parent, parent[move]
            low, high = np.minimum(a, b), np.maximum(a, b)
            np.minimum.at(parent, high, low)
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped
        if all(np.array_equal(parent[move], parent) for move in moves):
            return parent


def orbit_labels(group: PermutationGroup, in_order: int, out_order: int) -> Tensor:
    """The orbit of every entry of a map from order ``in_order`` to ``out_order``.

    Returns a ``(N**out_order, N**in_order)`` long tensor: entry ``[o, i]`` (flat row-major index
    tuples) holds the number of its orbit under ``g: (o, i) -> (g(o), g(i))``, numbered by first
    appearance. A linear map commutes with the group exactly when it is constant on each orbit.
    """
    if in_order < 0 or out_order < 0:
        raise ValueError(f"orders must be >= 0, got in_order={in_order}, out_order={out_order}")
    arity = in_order + out_order
    size = group.degree**arity
    moves = [_tuple_moves(g, arity) for g in group._gens]
    roots = _components(moves, size) if moves else np.arange(size)
    _, labels = np.unique(roots, return_inverse=True)
    shape = (group.degree**out_order, group.degree**in_order)
    return torch.from_numpy(labels.reshape(shape).astype(np.int64))


def orbit_count(group: PermutationGroup, in_order: int, out_order: int) -> int:
    """The dimension of the space of equivariant maps: the number of orbits."""
    return int(orbit_labels(group, in_order, out_order).max()) + 1


def equivariant_basis(
    group: PermutationGroup,
    in_order: int,
    out_order: int,
    *,
    sparse: bool = False,
    dtype: torch.dtype = torch.int64,
) -> Tensor:
    """A basis of the linear maps from order ``in_order`` to ``out_order`` that commute with
    ``group``: one 0/1 pattern per orbit, ``(num_basis, N**out_order, N**in_order)``.

    Exact: the orbits come from union-find over the index tuples (:func:`orbit_labels`). With
    ``sparse=True`` the same tensor is a sparse COO tensor (there are ``N^(in+out)`` ones in all,
    however many orbits: C_n on pairs -> pairs has ``n^3`` of them).
    """
    labels = orbit_labels(group, in_order, out_order)
    count = int(labels.max()) + 1
    rows, cols = labels.shape
    if sparse:
        out_idx = torch.arange(rows).repeat_interleave(cols)
        in_idx = torch.arange(cols).repeat(rows)
        indices = torch.stack([labels.reshape(-1), out_idx, in_idx])
        values = torch.ones(rows * cols, dtype=dtype)
        shape = (count, rows, cols)
        return torch.sparse_coo_tensor(indices, values, shape, check_invariants=True).coalesce()
    basis = torch.zeros(count, rows * cols, dtype=dtype)
    basis.scatter_(0, labels.reshape(1, -1), 1)
    return basis.reshape(count, rows, cols)
