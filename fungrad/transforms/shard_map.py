"""``shard_map``: ``jax.shard_map``, a function applied to the blocks of its inputs over a mesh.

Each input is cut into blocks by its ``PartitionSpec``: a dimension mapped to mesh axes
``('x', 'y')`` becomes ``(size_x, size_y, block)``. The function then runs on every block
under one ``vmap`` per manual mesh axis, nested in mesh order and named after the axis, so
the collectives of ``fungrad.lax`` over mesh axes (``psum``, ``all_gather``, ``ppermute``,
``axis_index``, ``psum_scatter``, ``all_to_all``, ...) work inside it, and ``jit``, ``grad``
and ``vmap`` compose with it as with any vmap. The outputs' blocks are put back together
along the dimensions their ``out_specs`` name, and an output whose spec leaves out a mesh
axis must not vary over it (``check_vma``), as in JAX.

The blocks are computed by one program on one device, not one per device; the results are
whole arrays committed to the mesh's first device (JAX's are sharded over the mesh).
"""
from __future__ import annotations

import functools
import math
from typing import Any, Callable, Sequence

from fungrad import tree as tree_util
from fungrad._core import core
from fungrad._core.array import device_put
from fungrad.interpreters import batching
from fungrad.lax.parallel import pbroadcast
from fungrad.lax.shapes import reshape, transpose
from fungrad.sharding import (AbstractMesh, Mesh, PartitionSpec, _axes_per_dim,
                              _check_unique_axes, get_mesh)
from fungrad.transforms.api import _fun_name, path_str, vmap


class _Infer:
    """The default ``in_specs``: infer the specs from the arguments' shardings (which
    fungrad arrays do not have: ``shard_map`` asks for ``in_specs``)."""

    def __repr__(self) -> str:
        return "Infer"


Infer = _Infer()


# --------------------------------------------------------------------------- checks

def _resolve_mesh(mesh: Mesh | AbstractMesh | None, axis_names: Any) -> tuple[Any, tuple]:
    """The mesh (the one ``set_mesh`` set, when ``mesh`` is None) and its manual axes, in
    mesh order."""
    if mesh is None:
        mesh = get_mesh()
        if mesh.empty:
            raise ValueError("The context mesh cannot be empty. Use "
                             "`fungrad.sharding.set_mesh(mesh)` to enter into a mesh context")
    if not isinstance(mesh, (Mesh, AbstractMesh)):
        raise TypeError("shard_map requires a `fungrad.sharding.Mesh` or a "
                        "`fungrad.sharding.AbstractMesh` instance for its second argument, but "
                        f"got {mesh} of type {type(mesh)}.")
    if mesh.empty:
        raise ValueError(f"shard_map requires a non-empty mesh. Got {mesh}")
    if not isinstance(axis_names, (set, frozenset)):
        raise TypeError("`axis_names` argument of shard_map should be of type `frozenset` or "
                        f"`set`. Got type: {type(axis_names)}")
    if not set(axis_names) <= set(mesh.axis_names):
        raise ValueError(f"shard_map requires axis_names={frozenset(axis_names)} to be a subset "
                         f"of mesh.axis_names={frozenset(mesh.axis_names)}")
    manual = tuple(n for n in mesh.axis_names if not axis_names or n in axis_names)
    return mesh, manual


def _check_specs(specs: Any, prefix: str, manual: tuple) -> None:
    """Every leaf of ``specs`` (None is no leaf) is a ``PartitionSpec`` naming manual mesh
    axes only, each once (JAX's ``TypeError``/``ValueError`` naming the entry)."""
    entries = tree_util.leaves_with_plain_path(specs)
    wrong = [f"  {prefix}_specs{path_str(p)} is {s} of type {type(s).__name__}, "
             for p, s in entries if not isinstance(s, PartitionSpec)]
    if wrong:
        raise TypeError(f"shard_map {prefix}_specs argument must be a pytree of "
                        "`fungrad.sharding.PartitionSpec` instances, but:\n\n"
                        + "\n\n".join(wrong) + f"\n\nCheck the {prefix}_specs values passed "
                        "to shard_map.")
    unknown = [f"  {prefix}_specs{path_str(p)} refers to {name!r}" for p, s in entries
               for names in _axes_per_dim(s, len(s)) for name in names if name not in manual]
    if unknown:
        raise ValueError(f"shard_map {prefix}_specs argument must refer to an axis marked as "
                         f"manual ({frozenset(manual)}), but:\n\n" + "\n\n".join(unknown)
                         + f"\n\nCheck the {prefix}_specs values passed to shard_map.")
    for _, spec in entries:
        if spec.unreduced or spec.reduced:
            raise NotImplementedError(f"shard_map: {prefix}_specs {spec} has unreduced or "
                                      "reduced axes; fungrad's arrays are whole, never partial "
                                      "sums over a mesh axis")
        _check_unique_axes(spec, f"shard_map {prefix}_specs")


def _rank_error(fname: str, prefix: str, what: str, spec: PartitionSpec, aval: Any) -> str:
    return (f"shard_map applied to the function '{fname}' was given an {prefix}_specs entry "
            f"which is too long to be compatible with the corresponding {prefix}put value from "
            f"the function:\n\n{prefix}_specs entry {spec} has length {len(spec)}, but {what} "
            f"has shape {aval.str_short()}, which has rank {aval.ndim} (and {aval.ndim} < "
            f"{len(spec)})\n\nEntries in {prefix}_specs must be of length no greater than the "
            f"number of axes in the corresponding {prefix}put value.")


def _check_args(fname: str, mesh: Any, args: tuple, specs: list) -> None:
    """Each argument is at least as long as its spec, and each dimension is divisible by the
    sizes of the mesh axes it is split over (JAX's messages, naming the argument)."""
    sizes = mesh.shape
    for (path, x), spec in zip(tree_util.leaves_with_plain_path(args), specs):
        if spec is None:
            continue
        aval, what = core.get_aval(x), f"the passed args{path_str(path)}"
        if aval.ndim < len(spec):
            raise ValueError(_rank_error(fname, "in", what, spec, aval))
        for dim, names in enumerate(_axes_per_dim(spec, aval.ndim)):
            parts = math.prod(sizes[n] for n in names)
            if aval.shape[dim] % parts:
                axis = f"axes {names}" if len(names) > 1 else f"axis {names[0]!r}"
                raise ValueError(
                    f"shard_map applied to the function '{fname}' was given argument arrays "
                    "with axis sizes that are not evenly divisible by the corresponding mesh "
                    f"axis sizes:\n\nThe mesh given has shape {mesh.axis_sizes} with "
                    f"corresponding axis names {mesh.axis_names}.\n\n{what} of shape "
                    f"{aval.str_short()} corresponds to in_specs of value {spec}, which maps "
                    f"array axis {dim} (of size {aval.shape[dim]}) to mesh {axis} (of "
                    f"{'total ' if len(names) > 1 else ''}size {parts}), but {parts} does not "
                    f"evenly divide {aval.shape[dim]}")


# --------------------------------------------------------------------------- blocks

def _to_blocks(x: Any, spec: PartitionSpec, sizes: dict, manual: tuple) -> Any:
    """``x`` with each split dimension cut into (one per mesh axis..., block), the mesh axes
    moved to the front in mesh order: ``(members..., *block_shape)``."""
    shape = core.get_aval(x).shape
    split, position, member_at, block_at = [], 0, {}, []
    for size, names in zip(shape, _axes_per_dim(spec, len(shape))):
        for name in names:
            member_at[name] = position
            split.append(sizes[name])
            position += 1
        block_at.append(position)
        split.append(size // math.prod(sizes[n] for n in names))
        position += 1
    x = reshape(x, tuple(split))
    order = [member_at[n] for n in manual if n in member_at] + block_at
    return transpose(x, order) if order != sorted(order) else x


def _from_blocks(x: Any, spec: PartitionSpec, sizes: dict, manual: tuple) -> Any:
    """The inverse of ``_to_blocks``: ``(members..., *block_shape)`` with the members of
    each dimension's mesh axes merged into it, major first."""
    members = [n for n in manual if n in {m for names in _axes_per_dim(spec, len(spec))
                                          for m in names}]
    block = core.get_aval(x).shape[len(members):]
    order, shape = [], []
    for dim, names in enumerate(_axes_per_dim(spec, len(block))):
        order += [members.index(n) for n in names] + [len(members) + dim]
        shape.append(block[dim] * math.prod(sizes[n] for n in names))
    x = transpose(x, order) if order != sorted(order) else x
    return reshape(x, tuple(shape))


def _varies(x: Any) -> bool:
    """Whether ``x`` differs between the members of the innermost ``vmap`` being traced."""
    trace = core.current_trace()
    return isinstance(trace, batching.BatchTrace) and trace.unpack(x)[1] is not None


def _replication_error(fname: str, mesh: Any, spec: PartitionSpec, name: Any) -> ValueError:
    return ValueError(
        f"shard_map applied to the function '{fname}' was given out_specs which require "
        "replication which can't be statically inferred given the mesh:\n\nThe mesh given has "
        f"shape {mesh.axis_sizes} with corresponding axis names {mesh.axis_names}.\n\n"
        f"out_specs is {spec} which implies that the corresponding output value is replicated "
        f"across mesh axis {name!r}, but it varies over that axis\n\nCheck if these output "
        "values are meant to be replicated over those mesh axes. If not, consider revising the "
        "corresponding out_specs entries. If so, consider disabling the check by passing the "
        "check_vma=False argument to `fungrad.shard_map`.")


def _replicated(out: Any, out_specs: Any, name: Any, check_vma: bool, fname: str,
                mesh: Any) -> Any:
    """``out`` where the mesh axis ``name`` is left out of its spec: checked not to vary
    over it (``check_vma``), else the value of its first member (as JAX reads it)."""
    specs = tree_util.broadcast_prefix(out_specs, out, "shard_map out_specs",
                                       of="the function's outputs")
    leaves, treedef = tree_util.flatten(out)
    kept = []
    for x, spec in zip(leaves, specs):
        if any(name in names for names in _axes_per_dim(spec, len(spec))) or not _varies(x):
            kept.append(x)
        elif check_vma:
            raise _replication_error(fname, mesh, spec, name)
        else:
            kept.append(pbroadcast(x, name, 0))
    return tree_util.unflatten(treedef, kept)


def _out_axes(out_specs: Any, name: Any) -> Any:
    """``vmap``'s ``out_axes`` over the mesh axis ``name``: 0 where the output's spec names
    it (the members are stacked in front), None where the output is replicated over it."""
    return tree_util.map(lambda s: 0 if any(name in n for n in _axes_per_dim(s, len(s)))
                         else None, out_specs)


# --------------------------------------------------------------------------- shard_map

def shard_map(f: Callable | None = None, /, *, out_specs: Any, in_specs: Any = Infer,
              mesh: Mesh | AbstractMesh | None = None, axis_names: Any = frozenset(),
              check_vma: bool = True) -> Callable:
    """Apply ``f`` to the blocks of its inputs over a mesh of devices (``jax.shard_map``).

    Each input is split into blocks by its ``PartitionSpec``: a dimension whose entry
    names mesh axes is cut into as many blocks as those axes have members, so ``f`` sees
    one block per mesh position, with the mesh axis names bound for the collectives of
    ``fungrad.lax``. The outputs' blocks are concatenated along the dimensions their
    ``out_specs`` map to mesh axes; a mesh axis an output spec leaves out means the output
    is the same for every member of that axis. The blocks are computed by one program (a
    ``vmap`` per mesh axis), and the results are whole arrays on the mesh's first device.

    Args:
      f: the function, of blocks (pytrees of arrays) returning blocks. Usable as a decorator
        ``@functools.partial(shard_map, mesh=..., in_specs=..., out_specs=...)``.
      out_specs: a ``PartitionSpec`` per output (a pytree prefix of ``f``'s output).
      in_specs: a ``PartitionSpec`` per argument (a pytree prefix of the argument tuple);
        a None entry (or ``in_specs=None``) passes its arguments to ``f`` unchanged (any
        Python values). JAX can infer them from the arguments' shardings; fungrad arrays
        carry none, so they must be given.
      mesh: a ``Mesh`` or an ``AbstractMesh`` (default: the one ``set_mesh`` set).
      axis_names: the mesh axes ``f`` is manual over (default: all); ``f`` sees the other
        axes' dimensions whole and the specs may not name them.
      check_vma: check that an output is the same for every member of each mesh axis its
        spec leaves out (a ``ValueError`` otherwise); without the check, such an output is
        the first member's value.

    Returns:
      The mapped function: same arguments (positional only) and outputs as ``f``, at full
      size.

    Raises:
      ValueError: a spec names a mesh axis that is not (manual) in the mesh, is longer than
        its value's rank, or splits a dimension its mesh axes' sizes do not divide; or an
        output varies over a mesh axis its spec leaves out (with ``check_vma``).
      TypeError: a spec is not a ``PartitionSpec``, or ``in_specs`` is missing.

    Examples:
      >>> import fungrad, fungrad.numpy as jnp
      >>> from fungrad import lax
      >>> from fungrad.sharding import PartitionSpec as P, make_mesh
      >>> mesh = make_mesh((fungrad.device_count(),), ("x",))
      >>> total = fungrad.shard_map(lambda b: lax.psum(jnp.sum(b), "x"), mesh=mesh,
      ...                           in_specs=P("x"), out_specs=P())
      >>> float(total(jnp.arange(8.0)))
      28.0
    """
    if f is None:
        return functools.partial(shard_map, out_specs=out_specs, in_specs=in_specs, mesh=mesh,
                                 axis_names=axis_names, check_vma=check_vma)
    if not callable(f):
        raise TypeError("shard_map requires a callable for its first argument, but got "
                        f"{f} of type {type(f)}.")
    fname = _fun_name(f)

    @functools.wraps(f)
    def wrapped(*args: Any) -> Any:
        mesh_, manual = _resolve_mesh(mesh, axis_names)
        if in_specs is Infer:
            raise TypeError("shard_map in_specs argument must be a pytree of "
                            "`fungrad.sharding.PartitionSpec` instances: fungrad arrays carry "
                            "no sharding to infer them from, so pass in_specs")
        _check_specs(in_specs, "in", manual)
        _check_specs(out_specs, "out", manual)
        flat_specs = tree_util.broadcast_prefix(in_specs, args, "shard_map in_specs")
        _check_args(fname, mesh_, args, flat_specs)
        leaves, treedef = tree_util.flatten(args)
        sizes = mesh_.shape
        mapped = [i for i, s in enumerate(flat_specs) if s is not None]
        blocks = [_to_blocks(leaves[i], flat_specs[i], sizes, manual) for i in mapped]

        def run(*values: Any) -> Any:
            full = list(leaves)
            for i, v in zip(mapped, values):
                full[i] = v
            out = f(*tree_util.unflatten(treedef, full))
            out_flat = tree_util.broadcast_prefix(out_specs, out, "shard_map out_specs",
                                                  of="the function's outputs")
            for (path, x), spec in zip(tree_util.leaves_with_plain_path(out), out_flat):
                if core.get_aval(x).ndim < len(spec):
                    raise ValueError(_rank_error(fname, "out", f"{fname}(*args){path_str(path)}",
                                                 spec, core.get_aval(x)))
            return out

        for name in reversed(manual):  # the innermost vmap maps the last mesh axis
            run = _map_over(run, name, sizes[name], [flat_specs[i] for i in mapped],
                            out_specs, check_vma, fname, mesh_)
        out = run(*blocks)
        out_flat = tree_util.broadcast_prefix(out_specs, out, "shard_map out_specs",
                                              of="the function's outputs")
        leaves_out, out_tree = tree_util.flatten(out)
        out = tree_util.unflatten(out_tree, [_from_blocks(x, s, sizes, manual)
                                             for x, s in zip(leaves_out, out_flat)])
        return device_put(out, mesh_.devices.flat[0]) if isinstance(mesh_, Mesh) else out
    return wrapped


def _map_over(inner: Callable, name: Any, size: int, specs: Sequence[PartitionSpec],
              out_specs: Any, check_vma: bool, fname: str, mesh: Any) -> Callable:
    """``inner`` mapped over the mesh axis ``name``: over the leading (member) axis of the
    blocks whose spec names it, with the outputs replicated over it where their spec does
    not name it."""
    in_axes = tuple(0 if any(name in n for n in _axes_per_dim(s, len(s))) else None
                    for s in specs)

    def member(*values: Any) -> Any:
        return _replicated(inner(*values), out_specs, name, check_vma, fname, mesh)
    return vmap(member, in_axes, _out_axes(out_specs, name), axis_name=name, axis_size=size)


# --------------------------------------------------------------------------- smap

def _axis_to_spec(axis_name: Any, axis: int | None) -> PartitionSpec:
    """The spec mapping dimension ``axis`` to the mesh axis ``axis_name`` (None: ``P()``),
    built as JAX's ``smap`` builds it (so a negative ``axis`` maps dimension 0, as there)."""
    if axis is None:
        return PartitionSpec()
    return PartitionSpec(*[None] * axis, axis_name)


def smap(f: Callable | None = None, /, *, in_axes: Any = Infer, out_axes: Any,
         axis_name: Any) -> Callable:
    """``shard_map`` over one mesh axis, with ``vmap``-style axes (``jax.smap``).

    ``f`` is manual over the context mesh's axis ``axis_name`` only (``set_mesh``): each
    argument is split along its ``in_axes`` dimension into one block per member of that
    axis, and each output's blocks are put back together along its ``out_axes``
    dimension; None replicates (an output with None must be the same for every member).
    The collectives of ``fungrad.lax`` over ``axis_name`` work inside ``f``.

    Args:
      f: the function (or None, to use ``smap`` as a decorator factory).
      in_axes: an int or None for every argument, or a tuple with one per positional
        argument (pytree prefixes, int or None leaves). JAX infers it from arguments
        sharded over ``Explicit`` axes; fungrad arrays carry no sharding, so it must be
        given.
      out_axes: an int or None, or a pytree prefix of the output with those leaves.
      axis_name: the mesh axis (a hashable, not a list or tuple).

    Returns:
      The mapped function, taking positional arguments.

    Raises:
      TypeError: ``axis_name`` is a list or tuple, ``in_axes``/``out_axes`` have leaves
        other than ints and None, or ``in_axes`` is not given.
      ValueError: no mesh is set, or the mesh has no axis ``axis_name``.

    Examples:
      >>> import fungrad, fungrad.numpy as jnp
      >>> from fungrad import lax
      >>> from fungrad.sharding import make_mesh, set_mesh
      >>> from fungrad.transforms.shard_map import smap
      >>> with set_mesh(make_mesh((fungrad.device_count(),), ("x",))):
      ...     total = smap(lambda b: lax.psum(b.sum(), "x"), in_axes=0,
      ...                  out_axes=None, axis_name="x")
      ...     print(total(jnp.arange(8.0)))
      28.0
    """
    if f is None:
        return functools.partial(smap, in_axes=in_axes, out_axes=out_axes,
                                 axis_name=axis_name)
    if isinstance(axis_name, (list, tuple)):
        raise TypeError(f"smap axis_name should be a `str` or a `Hashable`, but got {axis_name}")
    if in_axes is not None and in_axes is not Infer and not isinstance(in_axes, (int, tuple)):
        raise TypeError("smap in_axes must be an int, None, fungrad.sharding.Infer, or a tuple "
                        "of entries corresponding to the positional arguments passed to the "
                        f"function, but got {in_axes}.")
    if in_axes is not Infer and not all(isinstance(a, int) for a in tree_util.leaves(in_axes)):
        raise TypeError("smap in_axes must be an int, None, fungrad.sharding.Infer, or "
                        f"(nested) container with those types as leaves, but got {in_axes}.")
    if not all(isinstance(a, int) for a in tree_util.leaves(out_axes)):
        raise TypeError("smap out_axes must be an int, None, or (nested) container with those "
                        f"types as leaves, but got {out_axes}.")
    to_spec = functools.partial(_axis_to_spec, axis_name)
    out_specs = tree_util.map(to_spec, out_axes, is_leaf=lambda a: a is None)
    if in_axes is Infer:
        @functools.wraps(f)
        def refuse(*args: Any) -> Any:
            _resolve_mesh(None, {axis_name})  # a missing mesh or axis is reported first
            raise TypeError(f"in_axes was not specified when axis_name={{{axis_name!r}}}: "
                            "fungrad arrays carry no sharding to infer it from, so pass "
                            "in_axes to smap")
        return refuse
    in_specs = tree_util.map(to_spec, in_axes, is_leaf=lambda a: a is None)
    return shard_map(f, mesh=None, in_specs=in_specs, out_specs=out_specs,
                     axis_names={axis_name}, check_vma=True)
