"""The compiler behind ``jit``: optimisation passes, fusion, memory planning and
Python code generation, turning a ``ClosedJaxpr`` into one fast Python function
over backend buffers.

Pipeline (``pipeline.compile_jaxpr``): ``passes.optimize`` (inline nested calls,
simplify, fold constants, CSE, DCE) -> ``fusion.fuse`` (elementwise chains ->
kernels) -> ``parallel.split`` (an independent tail on two threads) ->
``codegen.compile_function`` (one line per equation from the lowerings the
primitives declare, ``fungrad._core.lowering``; ``memory.plan_memory`` frees
early, reuses dead buffers, updates in place). Importing the package also makes
control-flow bodies run compiled (``control_flow``) and ``scan`` a generated loop (``scan``).
"""
from fungrad._core.lowering import def_compiler_traits, def_lowering, def_ufunc
from fungrad.compiler import control_flow  # noqa: F401 - installs the body runner, cond lowering
from fungrad.compiler import cuda_fuse  # noqa: F401 - registers the CuPy fuser (no CuPy import)
from fungrad.compiler import scan  # noqa: F401 - declares scan's lowering (a generated loop)
from fungrad.compiler.passes import optimize
from fungrad.compiler.pipeline import Executable, compile_jaxpr

__all__ = ["Executable", "compile_jaxpr", "def_compiler_traits", "def_lowering", "def_ufunc",
           "optimize"]
