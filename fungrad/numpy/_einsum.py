"""``einsum``: Einstein summation lowered to diagonals, sums, ``dot_general`` and one
final transpose.

Subscripts are parsed (``...`` broadcasting and the implicit output included), each
operand is reduced on its own (repeated labels become diagonals, labels used nowhere
else are summed out, size-1 broadcast dimensions are dropped), then operands are
contracted pairwise, greedily picking the pair with the smallest result.
"""
from __future__ import annotations

import string
from typing import Any, Sequence

import numpy as np

from fungrad import lax
from fungrad._core import dtypes
from fungrad._core.util import prod as _prod
from fungrad.lax._placement import with_out_sharding
from fungrad.numpy._shape import diagonal
from fungrad.numpy._util import aval, ensure_arraylike, preferred_dtype

_LETTERS = string.ascii_letters
_ELLIPSIS_POOL = [chr(c) for c in range(0x3b1, 0x3b1 + 40)]  # labels for '...' dims


def _interleaved_to_subscripts(args: Sequence[Any]) -> tuple[str, list]:
    """``einsum(x, [0, 1], y, [1, 2], [0, 2])`` -> ``('ab,bc->ac', [x, y])``."""
    args = list(args)
    out_sub = args.pop() if len(args) % 2 else None
    ops, subs = args[0::2], args[1::2]

    def conv(sub: Sequence[Any]) -> str:
        return "".join("..." if s is Ellipsis else _LETTERS[int(s)] for s in sub)
    spec = ",".join(conv(s) for s in subs)
    if out_sub is not None:
        spec += "->" + conv(out_sub)
    return spec, ops


def _parse(subscripts: str, shapes: list[tuple[int, ...]]) -> tuple[list[list[str]], list[str]]:
    """Label lists per operand and for the output, with '...' expanded to pool labels."""
    spec = subscripts.replace(" ", "")
    if "->" in spec:
        ins, out = spec.split("->")
        explicit = True
    else:
        ins, out, explicit = spec, "", False
    terms = ins.split(",")
    if len(terms) != len(shapes):
        raise ValueError(f"einsum: {len(terms)} operand subscripts given for {len(shapes)} "
                         "operands")
    for t in terms + [out]:
        bad = set(t.replace("...", "")) - set(_LETTERS)
        if bad or t.replace("...", "").count(".") or t.count("...") > 1:
            raise ValueError(f"einsum: invalid subscript {t!r} in {subscripts!r}")
    ell_ndim = 0
    labels: list[list[str]] = []
    for t, shape in zip(terms, shapes):
        named = len(t.replace("...", ""))
        if "..." in t:
            k = len(shape) - named
            if k < 0:
                raise ValueError(f"einsum: operand of shape {shape} has fewer dimensions than "
                                 f"subscript {t!r}")
            ell_ndim = max(ell_ndim, k)
        elif named != len(shape):
            raise ValueError(f"einsum: subscript {t!r} has {named} labels for an operand of "
                             f"shape {shape}")
    pool = _ELLIPSIS_POOL[:ell_ndim]
    for t, shape in zip(terms, shapes):
        if "..." in t:
            pre, post = t.split("...")
            k = len(shape) - len(pre) - len(post)
            labels.append(list(pre) + pool[ell_ndim - k:] + list(post))
        else:
            labels.append(list(t))
    if explicit:
        if "..." in out:
            pre, post = out.split("...")
            out_labels = list(pre) + pool + list(post)
        else:
            out_labels = list(out)
        used = {lab for ls in labels for lab in ls}
        for lab in out_labels:
            if lab not in used:
                raise ValueError(f"einsum: output subscript {lab!r} does not appear in the "
                                 f"inputs of {subscripts!r}")
        if len(set(out_labels)) != len(out_labels):
            raise ValueError(f"einsum: output subscript in {subscripts!r} has repeated labels")
    else:
        counts: dict[str, int] = {}
        for ls in labels:
            for lab in ls:
                if lab not in pool:
                    counts[lab] = counts.get(lab, 0) + 1
        out_labels = pool + sorted(lab for lab, c in counts.items() if c == 1)
    return labels, out_labels


def _take_diagonals(x: Any, labs: list[str]) -> tuple[Any, list[str]]:
    """Repeated labels within one operand select a diagonal (``'ii->i'``)."""
    while len(set(labs)) != len(labs):
        lab = next(lab for lab in labs if labs.count(lab) > 1)
        i = labs.index(lab)
        j = labs.index(lab, i + 1)
        x = diagonal(x, 0, i, j)
        labs = [lb for k, lb in enumerate(labs) if k not in (i, j)] + [lab]
    return x, labs


def _sum_out(x: Any, labs: list[str], keep: set[str]) -> tuple[Any, list[str]]:
    axes = tuple(i for i, lab in enumerate(labs) if lab not in keep)
    if not axes:
        return x, labs
    return lax.reduce_sum(x, axes), [lab for lab in labs if lab in keep]


def _contract(a: Any, la: list[str], b: Any, lb: list[str], keep: set[str], precision: Any,
              pref: Any) -> tuple[Any, list[str]]:
    common = [lab for lab in la if lab in lb]
    batch = [lab for lab in common if lab in keep]
    contract = [lab for lab in common if lab not in keep]
    dims = ((tuple(la.index(c) for c in contract), tuple(lb.index(c) for c in contract)),
            (tuple(la.index(c) for c in batch), tuple(lb.index(c) for c in batch)))
    out = lax.dot_general(a, b, dims, precision=precision, preferred_element_type=pref)
    labels = batch + [lab for lab in la if lab not in common] + [lab for lab in lb
                                                                  if lab not in common]
    return out, labels


def einsum(subscripts: Any, *operands: Any, out: None = None, optimize: Any = "auto",
           precision: Any = None, preferred_element_type: Any = None,
           out_sharding: Any = None) -> Any:
    """Einstein summation, e.g. ``einsum('bij,bjk->bik', x, y)``, ``einsum('...i,i', x, v)``;
    ``out_sharding`` puts the result on a device (see ``fungrad.lax._placement``; None
    leaves it where the operation runs)."""
    if not isinstance(subscripts, str):
        subscripts, operands = _interleaved_to_subscripts((subscripts,) + operands)
    ops = [ensure_arraylike("einsum", o) for o in operands]
    if not ops:
        raise ValueError("einsum: at least one operand is required")
    dt, weak = dtypes.result_type(*ops, return_weak_type_flag=True)
    pref = preferred_dtype(preferred_element_type, dt, "einsum")
    ops = [lax.convert_element_type(o, dt) for o in ops]
    labels, out_labels = _parse(subscripts, [aval(o).shape for o in ops])

    ops_labs = [_take_diagonals(o, list(ls)) for o, ls in zip(ops, labels)]
    sizes: dict[str, int] = {}
    for o, ls in ops_labs:
        for lab, n in zip(ls, aval(o).shape):
            if n != 1:
                if sizes.setdefault(lab, n) != n:
                    raise ValueError(f"einsum: size of label {lab!r} differs between operands "
                                     f"({sizes[lab]} vs {n}) in {subscripts!r}")
    # size-1 dims of a label that is larger elsewhere broadcast: drop them
    reduced = []
    for o, ls in ops_labs:
        drop = tuple(i for i, (lab, n) in enumerate(zip(ls, aval(o).shape))
                     if n == 1 and sizes.get(lab, 1) != 1)
        if drop:
            o = lax.squeeze(o, drop)
            ls = [lab for i, lab in enumerate(ls) if i not in drop]
        reduced.append((o, ls))

    def needed(exclude: Sequence[int]) -> set[str]:
        keep = set(out_labels)
        for k, (_, ls) in enumerate(reduced):
            if k not in exclude:
                keep.update(ls)
        return keep

    reduced = [_sum_out(o, ls, needed([k])) for k, (o, ls) in enumerate(reduced)]
    order = _path_steps(optimize, len(reduced)) or \
        _greedy_order([ls for _, ls in reduced], sizes, out_labels)
    for step in order:
        for i, j in _pairwise(step, len(reduced)):
            keep = needed([i, j])
            (a, la), (b, lb) = reduced[i], reduced[j]
            a, la = _sum_out(a, la, keep | set(lb))
            b, lb = _sum_out(b, lb, keep | set(la))
            merged = _contract(a, la, b, lb, keep, precision, pref)
            reduced = [r for k, r in enumerate(reduced) if k not in (i, j)] + [merged]
    result, labs = _sum_out(*reduced[0], set(out_labels))
    missing = [lab for lab in out_labels if lab not in labs]
    if missing:  # an output label whose every occurrence was a broadcast size-1 dim
        result = lax.reshape(result, aval(result).shape + (1,) * len(missing))
        labs = labs + missing
    result = lax.transpose(result, tuple(labs.index(lab) for lab in out_labels))
    result = lax.convert_element_type(result, pref or dt, weak if pref is None else False)
    if out_sharding is None:
        return result
    return with_out_sharding(result, out_sharding, "jnp.einsum")


def _greedy_order(labels: list[list[str]], sizes: dict[str, int],
                  out_labels: Sequence[str]) -> list[tuple[int, int]]:
    """The pairs ``einsum`` contracts, in order: each time the pair whose result (the labels
    still needed afterwards) is smallest; the result goes to the end of the list, as in
    NumPy's paths."""
    labels = [set(ls) for ls in labels]
    order = []
    while len(labels) > 1:
        best = None
        for i in range(len(labels)):
            for j in range(i + 1, len(labels)):
                keep = set(out_labels).union(*(ls for k, ls in enumerate(labels)
                                               if k not in (i, j)))
                result = (labels[i] | labels[j]) & keep
                cost = _prod(sizes.get(lab, 1) for lab in result)
                if best is None or cost < best[0]:
                    best = (cost, i, j, result)
        _, i, j, result = best
        order.append((i, j))
        labels = [ls for k, ls in enumerate(labels) if k not in (i, j)] + [result]
    return order


def _path_steps(optimize: Any, n: int) -> list[tuple[int, ...]] | None:
    """A contraction path given as ``optimize`` (as ``einsum_path`` returns it, with or
    without NumPy's leading ``"einsum_path"``), or None to choose one."""
    if not isinstance(optimize, (list, tuple)):
        if optimize is False:
            return [(0, 1)] * (n - 1)
        return None
    steps = [tuple(s) for s in optimize if s != "einsum_path"]
    left = n
    for step in steps:
        if len(step) < 1 or len(set(step)) != len(step) or \
                not all(isinstance(k, int) and 0 <= k < left for k in step):
            raise ValueError(f"einsum: invalid contraction path {optimize!r} for {n} operands")
        left -= len(step) - 1
    if left != 1:
        raise ValueError(f"einsum: the contraction path {optimize!r} leaves {left} operands")
    return steps


def _pairwise(step: tuple[int, ...], n: int) -> list[tuple[int, int]]:
    """A path step joining several operands as pairs: the first two, then their result (at
    the end of the list) with the next, and so on."""
    if len(step) == 1:
        return []
    pairs = [tuple(sorted(step[:2]))]
    rest = [k for k in range(n) if k not in step[:2]]
    for k in step[2:]:
        pairs.append((rest.index(k), n - 2))
        rest.remove(k)
        n -= 1
    return pairs


def einsum_path(subscripts: Any, /, *operands: Any,
                optimize: Any = "auto") -> tuple[list[tuple[int, ...]], str]:
    """The order in which ``einsum(subscripts, *operands)`` contracts its operands, without
    computing it: ``(path, report)``. The path is a list of operand-index pairs in NumPy's
    convention (each result goes to the end of the list), which ``einsum(...,
    optimize=path)`` follows; the report says the same in words.

    ``optimize``: ``"auto"``, ``"greedy"`` or ``True`` for ``einsum``'s own greedy order
    (smallest intermediate first), ``"optimal"`` for NumPy's exhaustive search, ``False``
    for left to right. JAX answers with opt_einsum's choice and report object, which may
    pick another order of the same kind.
    """
    if not isinstance(subscripts, str):
        subscripts, operands = _interleaved_to_subscripts((subscripts,) + operands)
    ops = [ensure_arraylike("einsum_path", o) for o in operands]
    if optimize == "optimal":
        placeholders = [np.broadcast_to(np.zeros((), np.float32), aval(o).shape) for o in ops]
        steps, _ = np.einsum_path(subscripts, *placeholders, optimize="optimal")
        path = [tuple(step) for step in steps[1:]]
    elif optimize in ("auto", "greedy", True, False):
        labels, out_labels = _parse(subscripts, [aval(o).shape for o in ops])
        sizes: dict[str, int] = {}
        for o, ls in zip(ops, labels):
            for lab, n in zip(ls, aval(o).shape):
                if n != 1:
                    sizes.setdefault(lab, n)
        path = _path_steps(False, len(ops)) if optimize is False else \
            _greedy_order([list(ls) for ls in labels], sizes, out_labels)
    else:
        raise ValueError(f"einsum_path: optimize must be 'auto', 'greedy', 'optimal', True or "
                         f"False, got {optimize!r}")
    report = "\n".join(f"contract operands {step}" for step in path) or "nothing to contract"
    return path, f"einsum_path for {subscripts!r}:\n{report}"


__all__ = ["einsum", "einsum_path"]
