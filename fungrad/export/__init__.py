"""``fungrad.export`` (``jax.export``): save a jitted function and run it later.

``export(jit(f))(*specs)`` traces ``f`` for the argument specs (``ShapeDtypeStruct`` s or
arrays) into an ``Exported``: its name, argument and result pytrees and types, and the
program (a closed jaxpr). ``Exported.call`` runs it, also inside ``jit`` and under
``grad``/``vmap`` (it binds fungrad's ``jit`` primitive on the program, whose rules recurse
into it). ``serialize()`` writes fungrad's own versioned format (``FORMAT_VERSION``; a JSON
header plus the constants' raw bytes: see ``fungrad/export/_format.py``), and
``deserialize`` reads it back, giving results equal bit for bit to the original's.

The format is safe to load from an untrusted source: nothing is unpickled and nothing is
imported by a name found in the data. Primitives are looked up by name among fungrad's
registered ones, parameter classes and pytree nodes through an allow-list, and every
equation is type-checked on load; anything else raises ``ExportDeserializationError``.

Differences from JAX: the program is a jaxpr, not StableHLO (``mlir_module()`` prints it);
derivatives of a called export come from the program itself, to any order, so
``serialize(vjp_order=...)`` is accepted and not needed, and ``vmap`` works too; a program
holding Python callables (``custom_jvp``/``custom_vjp`` rules, callbacks) can be called but
not serialized (``ExportSerializationError`` names the primitive and parameter); key arrays
are pytrees of their ``uint32`` data here, so ``in_avals`` show ``u32[..., 2]``; there are no
symbolic shapes (``symbolic_shape`` and ``symbolic_args_specs`` raise
``NotImplementedError``); platforms are ``'cpu'`` and ``'cuda'``, and the calling
convention version is the format version.

Examples:
    >>> import numpy as np
    >>> import fungrad, fungrad.numpy as jnp
    >>> from fungrad import export
    >>> exp = export.export(fungrad.jit(jnp.sin))(fungrad.ShapeDtypeStruct((4,), jnp.float32))
    >>> exp.fun_name, exp.in_avals
    ('sin', (ShapedArray(f32[4]),))
    >>> blob = exp.serialize()
    >>> x = np.array([0.1, 0.2, 0.3, 0.4], np.float32)
    >>> bool((export.deserialize(blob).call(x) == jnp.sin(x)).all())
    True
"""
from fungrad._core.namespace import public_dir
from fungrad.export._exported import (DisabledSafetyCheck, Exported, SymbolicScope,
                                      default_export_platform, deserialize, export,
                                      is_symbolic_dim,
                                      maximum_supported_calling_convention_version,
                                      minimum_supported_calling_convention_version,
                                      register_namedtuple_serialization,
                                      register_pytree_node_serialization,
                                      symbolic_args_specs, symbolic_shape)
from fungrad.export._format import (FORMAT_VERSION, ExportDeserializationError,
                                    ExportSerializationError)

__all__ = ["DisabledSafetyCheck", "Exported", "export", "deserialize",
           "register_pytree_node_serialization", "register_namedtuple_serialization",
           "maximum_supported_calling_convention_version",
           "minimum_supported_calling_convention_version", "default_export_platform",
           "SymbolicScope", "is_symbolic_dim", "symbolic_shape", "symbolic_args_specs",
           "FORMAT_VERSION", "ExportSerializationError", "ExportDeserializationError"]
__dir__ = public_dir(__all__)
