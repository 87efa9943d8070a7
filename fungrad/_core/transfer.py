"""Transfer guards (``jax.transfer_guard``): what a transfer of data between the host and a
device does while a guard is set.

A guard level is kept per direction in ``config`` (``transfer_guard_host_to_device``, ...):
``"allow"``, ``"log"`` or ``"disallow"`` implicit transfers, or ``"log_explicit"`` /
``"disallow_explicit"`` explicit ones (``device_put``, ``device_get``) as well. The places
that move data read the level of their direction from ``config`` (one attribute) and call
``guard`` when it is not ``"allow"``, only on the path that moves data, so a computation on
arrays already in place pays nothing:

* host to device: host values (NumPy arrays and scalars, Python scalars) passed to a jitted
  function (implicit), and ``device_put`` of a host value (explicit);
* device to host: reading an array whose buffer is on a GPU (``np.asarray(x)``, ``x.item()``,
  printing; implicit), and ``device_get`` (explicit). A CPU array's buffer is host memory:
  reading it moves nothing, as in JAX on a CPU;
* device to device: ``device_put`` of an array to another device (explicit).
"""
from __future__ import annotations

import logging

from fungrad.errors import JaxRuntimeError

logger = logging.getLogger("fungrad.transfer")


def guard(level: str, direction: str, explicit: bool, what: str) -> None:
    """Apply guard ``level`` (not ``"allow"``) to one transfer in ``direction``
    (``"host-to-device"``, ``"device-to-host"``, ``"device-to-device"``) of ``what`` (its
    aval, ``f32[3]``).

    Raises:
        JaxRuntimeError: the level disallows this transfer (JAX's error for it).
    """
    if explicit and not level.endswith("_explicit"):
        return
    message = f"{'explicit' if explicit else 'implicit'} {direction} transfer: aval={what}"
    if level.startswith("log"):
        logger.warning(message)
        return
    raise JaxRuntimeError(f"INVALID_ARGUMENT: Disallowed {message}. The transfer guard is "
                          f"{level!r} (fungrad.transfer_guard); move the data explicitly with "
                          "fungrad.device_put / fungrad.device_get where it is intended.")
