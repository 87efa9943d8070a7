"""The compiler behind ``jit``: optimisation passes, fusion, memory planning and
Python code generation, turning a ``ClosedJaxpr`` into one fast Python function
over backend buffers.

Pipeline (``compile_jaxpr``): ``passes.optimize`` (inline nested calls,
simplify, fold constants, CSE, DCE) -> ``fusion.fuse`` (elementwise chains ->
kernels) -> ``memory.plan_memory`` (free early, reuse dead buffers, in-place
updates) -> ``codegen.generate`` (one line per equation via ``lowering``).
"""
from fungrad.compiler.codegen import Executable, compile_jaxpr
from fungrad.compiler.lowering import def_lowering
from fungrad.compiler.passes import optimize, register_inline

__all__ = ["Executable", "compile_jaxpr", "def_lowering", "optimize", "register_inline"]
