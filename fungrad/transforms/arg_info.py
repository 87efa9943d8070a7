"""``ArgInfo`` (``jax.stages.ArgInfo``): what a lowered or compiled function knows of one
argument, its type and whether it is donated. ``Lowered.args_info`` and
``Compiled.args_info`` are the pytree ``(args, kwargs)`` of them (static arguments left
out), built with ``make_args_info``. This module sits below ``jit`` so that its stages
can build them."""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

from fungrad import tree as tree_util
from fungrad._core.core import ShapedArray

__all__ = ["ArgInfo", "make_args_info"]


@dataclasses.dataclass(frozen=True, slots=True)
class ArgInfo:
    """One dynamic argument of a lowered function: its abstract value ``_aval`` (a
    ``ShapedArray``: ``shape``, ``dtype``, ``weak_type``) and whether it is ``donated``.

    >>> import numpy as np
    >>> from fungrad._core.core import ShapedArray
    >>> info = ArgInfo(ShapedArray((2,), np.dtype(np.float32)), donated=False)
    >>> info.shape, info.dtype, info.donated
    ((2,), dtype('float32'), False)
    """
    _aval: Any
    donated: bool

    @property
    def shape(self) -> tuple[int, ...]:
        """The argument's shape."""
        if not hasattr(self._aval, "shape"):
            raise TypeError(f"No shape attribute with aval of type {type(self._aval)}")
        return self._aval.shape

    @property
    def dtype(self) -> Any:
        """The argument's dtype."""
        if not hasattr(self._aval, "dtype"):
            raise TypeError(f"No dtype attribute with aval of type {type(self._aval)}")
        return self._aval.dtype


def make_args_info(in_tree: tree_util.PyTreeDef, in_avals: Sequence[ShapedArray],
                   donated: Sequence[bool]) -> Any:
    """The pytree ``in_tree`` (of ``(args, kwargs)``) of ``ArgInfo``, one per flat dynamic
    argument with its aval and donation flag."""
    return tree_util.unflatten(in_tree, [ArgInfo(a, bool(d)) for a, d in zip(in_avals, donated)])
