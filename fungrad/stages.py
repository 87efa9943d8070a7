"""``fungrad.stages`` (``jax.stages``): the stages of ahead-of-time compilation.

``jit(f)`` is a ``Wrapped``; ``jit(f).trace(*args)`` a ``Traced`` (the jaxpr and the output's
shapes); ``.lower()`` a ``Lowered`` (the optimised program, ``as_text()``); ``.compile()`` a
``Compiled`` executable, called with the dynamic arguments only. Arguments may be
``ShapeDtypeStruct`` s instead of arrays.

Differences from JAX: ``cost_analysis()`` returns None (JAX's answer where the backend has
no cost model: fungrad's compiler has none); ``Compiled.memory_analysis()`` gives the bytes
of the arguments, results, donated arguments and intermediate values and the size of the
generated Python source; ``compiler_ir`` and ``runtime_executable`` are not there
(``as_text()`` and ``Compiled.source`` show the program). ``ArgInfo`` describes one dynamic
argument (its type, whether it is donated).

Examples:
    >>> import fungrad, fungrad.numpy as jnp
    >>> from fungrad import stages
    >>> f = fungrad.jit(lambda x: jnp.sin(x) * 2)
    >>> compiled = f.lower(fungrad.ShapeDtypeStruct((3,), jnp.float32)).compile()
    >>> isinstance(f, stages.Wrapped), isinstance(compiled, stages.Compiled)
    (True, True)
    >>> compiled.memory_analysis().argument_size_in_bytes
    12
"""
from fungrad._core.namespace import public_dir
from fungrad.transforms.arg_info import ArgInfo
from fungrad.transforms.jit import (Compiled, CompiledMemoryStats, CompilerOptions, Lowered,
                                    Traced)
from fungrad.transforms.jit import JitWrapped as Wrapped

__all__ = ["ArgInfo", "Compiled", "CompiledMemoryStats", "CompilerOptions", "Lowered", "Traced",
           "Wrapped"]
__dir__ = public_dir(__all__)
