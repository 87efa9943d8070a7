"""``out_sharding``: where a function puts its result (``sharding`` for ``lax.full`` and
``lax.full_like``), as the ``jax.numpy``, ``jax.random`` and ``jax.lax`` functions take it.

JAX lays a result out over a mesh of devices. fungrad puts each array whole on one device,
so here ``out_sharding`` is what ``device_put`` accepts: a ``Device``, a platform name
(``"cpu"``, ``"gpu:0"``) or a ``Sharding`` (a ``SingleDeviceSharding``, or a
``NamedSharding``, whose mesh's first device takes the whole array once its layout is
checked). An eager result is committed there with ``device_put``, as the ``device=`` keyword
of the creation functions does; under ``jit`` the value is checked and the traced result
stays in the program, which runs on one device. ``None`` (the default) changes nothing.
Anything else (a bare ``PartitionSpec``, a mesh axis name) is an error naming the function,
rather than a layout silently ignored.

Functions apply it in one of two ways: a family of functions none of which is on a hot
path (the ``random`` samplers) is decorated with ``takes_out_sharding``; the others
(``lax.reshape``, ``jnp.matmul``, ...) end with
``out if out_sharding is None else with_out_sharding(out, ...)``, which costs an eager call
one comparison rather than a wrapper's frame.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

from fungrad import backends
from fungrad._core.array import device_put


def check_out_sharding(out_sharding: Any, fname: str, arg: str = "out_sharding") -> Any:
    """``out_sharding`` (not None), once checked to name a device that is here; ``fname``
    and ``arg`` name the function and its keyword in the errors."""
    if backends.names_device(out_sharding):
        backends.as_device(out_sharding, f"{fname}: {arg}")
        return out_sharding
    error = ValueError if isinstance(out_sharding, str) else TypeError
    raise error(f"{fname}: {arg} must be None, a Device, a Sharding (SingleDeviceSharding, "
                f"NamedSharding) or a platform name such as 'cpu' or 'gpu:0'; got "
                f"{out_sharding!r} of type {type(out_sharding).__name__}. fungrad puts each "
                "array whole on one device, which a PartitionSpec or a mesh axis name alone "
                "does not name (pass NamedSharding(mesh, spec) for a spec)")


def with_out_sharding(out: Any, out_sharding: Any, fname: str,
                      arg: str = "out_sharding") -> Any:
    """``out`` (a pytree of arrays) committed to the device ``out_sharding`` (not None)
    names; traced values are returned as they are once ``out_sharding`` is checked."""
    return device_put(out, check_out_sharding(out_sharding, fname, arg))


def takes_out_sharding(prefix: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a function that declares ``out_sharding=None`` in its signature (for
    ``inspect`` and the docs): the wrapper consumes the keyword, checks it before the
    function runs and puts the result on its device. ``prefix`` (``"random"``) and the
    function's name make the name errors give."""
    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        fname = f"{prefix}.{fn.__name__}"

        @functools.wraps(fn)
        def placed(*args: Any, out_sharding: Any = None, **kwargs: Any) -> Any:
            if out_sharding is None:
                return fn(*args, **kwargs)
            spec = check_out_sharding(out_sharding, fname)
            return device_put(fn(*args, **kwargs), spec)
        return placed
    return decorate
