"""The four primitives emitted below the modules that define them, declared here.

The interpreters move and broadcast batch dimensions and build zeros with ``transpose``,
``broadcast_in_dim`` and ``reshape``; transposing a broadcast sums with ``reduce_sum``, in
the transpose rules of ``broadcast_in_dim`` and of every broadcasting elementwise primitive
(``fungrad.lax._prim.unbroadcast``). Each of the four is defined in its family module,
``fungrad/lax/shapes.py`` or ``fungrad/lax/reductions.py``: implementation, shape rule, JVP,
transpose and batching rule in one block. Those modules sit above the interpreters (they
register rules with them), so the primitive objects themselves are created here, below
both, and bound directly by the code underneath (as Autodidax declares its primitives before
the interpreters that emit them). Until ``fungrad.lax`` is imported they have no rules.
"""
from __future__ import annotations

from fungrad._core.core import Primitive

broadcast_in_dim_p = Primitive("broadcast_in_dim")
reshape_p = Primitive("reshape")
transpose_p = Primitive("transpose")
reduce_sum_p = Primitive("reduce_sum")
