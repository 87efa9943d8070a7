"""The core: dtypes, ``Array``, primitives, traces and the IR (see ``docs/architecture.md``).

Private: the public names are re-exported by ``fungrad`` (``Array``, ``ShapedArray``,
``Jaxpr``, ``device_put``, ...) and the modules that build on them.
"""
