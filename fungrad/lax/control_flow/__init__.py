"""Structured control flow: ``cond``, ``switch``, ``scan``, ``map``, ``while_loop``,
``fori_loop``, ``associative_scan``, ``custom_root`` and ``custom_linear_solve`` (the
``jax.lax`` control-flow API).

Each loop or branch body is traced once into a sub-jaxpr carried by a primitive
(``cond_p``, ``scan_p``, ``while_p``) whose rules for evaluation, shapes,
JVP, partial evaluation, transposition and batching live next to it.
"""
from fungrad.lax.control_flow.associative import *  # noqa: F401,F403
from fungrad.lax.control_flow.conditionals import *  # noqa: F401,F403
from fungrad.lax.control_flow.loops import *  # noqa: F401,F403
from fungrad.lax.control_flow.solves import *  # noqa: F401,F403
from fungrad.lax.control_flow.while_loops import *  # noqa: F401,F403
from fungrad.lax.control_flow import associative, conditionals, loops, solves, while_loops

__all__ = (associative.__all__ + conditionals.__all__ + loops.__all__ + solves.__all__
           + while_loops.__all__)
