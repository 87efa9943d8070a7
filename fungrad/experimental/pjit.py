"""``fungrad.experimental.pjit``: ``jax.experimental.pjit.pjit``, the older name of ``jit``
(deprecated in JAX, where it still works: ``jit`` took over its ``in_shardings`` and
``out_shardings``).

Examples:
    >>> import warnings, fungrad.numpy as jnp
    >>> from fungrad.experimental.pjit import pjit
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", DeprecationWarning)
    ...     double = pjit(lambda x: x * 2)
    >>> double(jnp.arange(3.0))
    Array([0., 2., 4.], dtype=float32)
"""
from __future__ import annotations

import warnings
from typing import Any, Callable, Iterable, Sequence

from fungrad._core.namespace import public_dir
from fungrad.transforms.jit import jit

__all__ = ["pjit"]
__dir__ = public_dir(__all__)


def pjit(fun: Callable, in_shardings: Any = None, out_shardings: Any = None,
         static_argnums: int | Sequence[int] | None = None,
         static_argnames: str | Iterable[str] | None = None,
         donate_argnums: int | Sequence[int] | None = None,
         donate_argnames: str | Iterable[str] | None = None, keep_unused: bool = False,
         device: Any = None, backend: str | None = None, inline: bool = False,
         compiler_options: dict[str, Any] | None = None) -> Any:
    """``fungrad.jit`` with JAX's positional ``pjit`` signature, and its
    ``DeprecationWarning`` (use ``fungrad.jit``). The shardings are checked and applied as
    ``jit`` applies them: each array whole on one device (see ``docs/sharding.md``)."""
    warnings.warn("fungrad.experimental.pjit.pjit is deprecated, as in JAX. Use fungrad.jit "
                  "instead.", DeprecationWarning, stacklevel=2)
    return jit(fun, in_shardings=in_shardings, out_shardings=out_shardings,
               static_argnums=() if static_argnums is None else static_argnums,
               static_argnames=() if static_argnames is None else tuple(
                   [static_argnames] if isinstance(static_argnames, str) else static_argnames),
               donate_argnums=() if donate_argnums is None else donate_argnums,
               donate_argnames=() if donate_argnames is None else tuple(
                   [donate_argnames] if isinstance(donate_argnames, str) else donate_argnames),
               keep_unused=keep_unused, device=device, backend=backend, inline=inline,
               compiler_options=compiler_options)
