"""The public API is documented and tidy.

* Every public callable has a docstring: in every module whose dotted name has no
  ``_``-prefixed part, the names in ``__all__`` (or, without ``__all__``, the names
  without a leading underscore) that are functions or classes of fungrad, and the
  public methods and properties of those classes. The list of the undocumented ones must
  be empty; the test prints it.
* ``dir()`` of each public module (``PUBLIC_MODULES``, the modules the API reference
  documents) shows its API and nothing else: every name is in ``__all__`` or is a
  submodule, every ``__all__`` name exists, and every public function or class defined in
  the module is in ``__all__``. Modules that import helpers hide them with ``__all__`` and
  a module-level ``__dir__`` (PEP 562).
* The API reference (``docs/api/*.md``, one ``::: module`` directive per module for
  mkdocstrings) documents exactly ``PUBLIC_MODULES``.
"""
from __future__ import annotations

import importlib
import inspect
import pathlib
import re
import sys
import types

import jax
import pytest

import fungrad
from harness import package_modules

API_DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs" / "api"

STATS = ("bernoulli", "beta", "betabinom", "binom", "cauchy", "chi2", "dirichlet", "expon",
         "gamma", "gennorm", "geom", "gumbel_l", "gumbel_r", "laplace", "logistic", "multinomial",
         "multivariate_normal", "nbinom", "norm", "pareto", "poisson", "t", "truncnorm", "uniform",
         "vonmises", "wrapcauchy")
PUBLIC_MODULES = (
    "fungrad", "fungrad.numpy", "fungrad.numpy.linalg", "fungrad.numpy.fft",
    "fungrad.lax", "fungrad.lax.linalg", "fungrad.random",
    "fungrad.nn", "fungrad.nn.initializers", "fungrad.nn.moe", "fungrad.optim",
    "fungrad.scipy", "fungrad.scipy.special", "fungrad.scipy.linalg", "fungrad.scipy.optimize",
    "fungrad.scipy.ndimage", "fungrad.scipy.interpolate", "fungrad.image", "fungrad.ops",
    "fungrad.dtypes",
    "fungrad.scipy.fft", "fungrad.scipy.signal", "fungrad.scipy.integrate",
    "fungrad.scipy.spatial", "fungrad.scipy.spatial.transform", "fungrad.scipy.cluster",
    "fungrad.scipy.cluster.vq",
    "fungrad.scipy.stats", *(f"fungrad.scipy.stats.{name}" for name in STATS),
    "fungrad.tree", "fungrad.tree_util", "fungrad.flatten_util", "fungrad.custom_derivatives",
    "fungrad.ad_checkpoint",
    "fungrad.debug",
    "fungrad.errors", "fungrad.experimental", "fungrad.test_util",
    "fungrad.models", "fungrad.models.gpt2", "fungrad.models.llama", "fungrad.models.mixtral",
    "fungrad.models.mamba", "fungrad.models.resnet", "fungrad.models.hf",
    "fungrad.text", "fungrad.train", "fungrad.dashboard", "fungrad.safetensors",
    "fungrad.compiler", "fungrad.distributed", "fungrad.sharding", "fungrad.typing",
    "fungrad.stages", "fungrad.profiler", "fungrad.dlpack", "fungrad.experimental.shard_map",
    "fungrad.monitoring", "fungrad.experimental.checkify", "fungrad.experimental.ode",
    "fungrad.experimental.pjit", "fungrad.experimental.mesh_utils",
    "fungrad.experimental.multihost_utils", "fungrad.experimental.compilation_cache",
    "fungrad.experimental.compilation_cache.compilation_cache", "fungrad.scipy.sparse",
    "fungrad.scipy.sparse.linalg", "fungrad.example_libraries", "fungrad.experimental.jet",
    "fungrad.experimental.sparse", "fungrad.memory", "fungrad.ref", "fungrad.export",
    "fungrad.example_libraries.stax", "fungrad.example_libraries.optimizers",
)


def _modules_with_public_names() -> list[str]:
    return [n for n in package_modules() if not any(part.startswith("_") for part in n.split("."))]


def _own_doc(obj) -> str | None:
    """A class's own docstring (not a base class's, not NamedTuple's generated one)."""
    if inspect.isclass(obj):
        doc = obj.__dict__.get("__doc__")
        generated = f"{obj.__name__}({', '.join(getattr(obj, '_fields', ()))})"
        return None if doc == generated else doc
    return inspect.getdoc(obj)


def _public_names(module: types.ModuleType) -> list[str]:
    names = getattr(module, "__all__", None)
    return list(names) if names is not None else [n for n in vars(module) if n[0] != "_"]


def _methods(cls: type):
    """(name, function) of the public methods and properties ``cls`` defines itself."""
    for name, attr in vars(cls).items():
        if name.startswith("_"):
            continue
        fn = attr.fget if isinstance(attr, property) else getattr(attr, "__func__", attr)
        if inspect.isfunction(fn):
            yield name, getattr(cls, name) if not isinstance(attr, property) else attr


def undocumented() -> list[str]:
    """Where public functions, classes and methods without a docstring are defined."""
    missing, seen = [], set()
    for module_name in _modules_with_public_names():
        module = importlib.import_module(module_name)
        for name in _public_names(module):
            obj = getattr(module, name)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)) or id(obj) in seen or \
                    not getattr(obj, "__module__", "").startswith("fungrad"):
                continue
            seen.add(id(obj))
            where = f"{obj.__module__}.{obj.__qualname__}"
            if not _own_doc(obj):
                missing.append(where)
            if inspect.isclass(obj):
                missing += [f"{where}.{m}" for m, fn in _methods(obj) if not inspect.getdoc(fn)]
    return missing


def test_every_public_callable_has_a_docstring():
    assert len(_modules_with_public_names()) > 80
    missing = undocumented()
    assert missing == [], f"{len(missing)} public callables without a docstring:\n" + \
        "\n".join(missing)


def _submodule_names(module: types.ModuleType) -> set[str]:
    prefix = module.__name__ + "."
    return {name for name, value in vars(module).items()
            if isinstance(value, types.ModuleType) and value.__name__.startswith(prefix)}


# Public-named functions a module imports or shares with its siblings but does not offer as API.
NOT_API = {"fungrad.lax.linalg": {"slogdet", "solve", "symmetrize"},
           "fungrad.models.llama": {"hf_config", "hf_fields", "swiglu_entries"},
           "fungrad.safetensors": {"supported"},
           "fungrad.scipy.optimize": {"minimize_bfgs"},
           # JAX's key classes and the node helpers that fungrad.tree_util builds on
           "fungrad.tree": {"DictKey", "FlattenedIndexKey", "GetAttrKey", "SequenceKey",
                            "key_entry", "one_level", "is_node_type", "tuple_structure"}}


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_dir_shows_only_the_public_api(module_name):
    module = importlib.import_module(module_name)
    api = getattr(module, "__all__", None)
    assert api is not None, f"{module_name} has no __all__"
    assert len(set(api)) == len(api), f"{module_name}.__all__ repeats a name"
    absent = [name for name in api if not hasattr(module, name)]
    assert absent == [], f"{module_name}.__all__ names what the module lacks: {absent}"
    shown = {name for name in dir(module) if not (name.startswith("__") and name.endswith("__"))}
    extra = sorted(shown - set(api) - _submodule_names(module))
    assert extra == [], f"dir({module_name}) shows names outside its API: {extra}"
    # its own functions and classes (a package's include those of its submodules)
    own = (module_name + ".") if hasattr(module, "__path__") else None
    forgotten = sorted(
        name for name, value in vars(module).items()
        if name[0] != "_" and name not in api and (inspect.isfunction(value) or
                                                   inspect.isclass(value))
        and (value.__module__ == module_name or own and value.__module__.startswith(own))
        and name not in NOT_API.get(module_name, ()))
    assert forgotten == [], f"{module_name} has public names missing from __all__ (so dir() " \
        f"hides them): {forgotten}"


def test_star_import_gives_the_api():
    namespace: dict = {}
    exec("from fungrad.numpy import *", namespace)  # noqa: S102
    assert {"sin", "float32", "ndarray", "pi", "linalg"} <= namespace.keys()
    assert "sys" not in namespace and "np" not in namespace


def test_top_level_all_matches_jax_where_it_can():
    ours = set(fungrad.__all__)
    for name in ("grad", "jit", "vmap", "jvp", "vjp", "linearize", "value_and_grad",
                 "jacfwd", "jacrev", "hessian", "make_jaxpr", "eval_shape", "custom_jvp",
                 "custom_vjp", "checkpoint", "remat", "device_put", "devices", "Array",
                 "numpy", "lax", "random", "nn", "tree_util", "tree", "scipy"):
        assert name in ours and hasattr(jax, name), name
    assert {"nn", "optim", "train"} <= ours


def _api_text() -> str:
    return "\n".join(page.read_text() for page in sorted(API_DOCS.glob("*.md")))


def _is_module(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ModuleNotFoundError:
        return False
    return True


def _api_directives() -> list[str]:
    """The ``::: name`` directives of the API reference that document a module."""
    return [m for m in re.findall(r"^::: (fungrad[\w.]*)\s*$", _api_text(), re.M)
            if _is_module(m)]


def test_api_reference_covers_the_public_modules():
    directives = _api_directives()
    assert len(directives) == len(set(directives)), "a module is documented twice"
    assert sorted(directives) == sorted(PUBLIC_MODULES)


def _defined_at(obj) -> str | None:
    """``obj.__module__`` + ``obj.__qualname__`` when they lead back to ``obj``: the path the
    API reference's generator follows from a re-export to the object it documents."""
    target = sys.modules.get(getattr(obj, "__module__", None) or "")
    path = f"{obj.__module__}.{obj.__qualname__}" if target is not None else None
    for part in getattr(obj, "__qualname__", "").split("."):
        target = getattr(target, part, None)
    return path if target is obj else None


def test_every_public_name_is_in_the_api_reference():
    """A public function or class of a documented module appears in the API reference.

    The generator documents what a module defines (``__module__`` is the module) and finds
    a re-exported object through its ``__module__`` and ``__qualname__``: a wrapper that a
    builder makes in one module and another re-exports must name itself
    (``lax._prim.public_op``), or it silently drops out. Two kinds need an entry of their own
    on an API page: a name that a submodule shadows (``fungrad.lax.dot`` the function beside
    the module ``fungrad.lax.dot``; ``fungrad.config``, an instance, by its class) gets a
    ``:::`` directive for the path it is defined at, and an object of another library
    (``PyTreeDef``) a hand-written entry with the anchor ``[](){#module.name}``. NumPy's
    and ml_dtypes' scalar types in ``fungrad.numpy`` are theirs to document.
    """
    text = _api_text()
    entries = (set(re.findall(r"^::: (fungrad[\w.]*)\s*$", text, re.M))
               | set(re.findall(r"\[\]\(\)\{#([\w.]+)\}", text)))
    missing = []
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            shadowed = _is_module(f"{module_name}.{name}")
            if not (inspect.isroutine(obj) or inspect.isclass(obj)):
                if not shadowed or isinstance(obj, types.ModuleType):
                    continue
                obj = type(obj)
            if obj.__module__.split(".")[0] in ("numpy", "ml_dtypes"):
                continue
            where = _defined_at(obj)
            followed = where is not None and where.startswith("fungrad.")
            found = (f"{module_name}.{name}" in entries or where in entries
                     or (not shadowed and (followed or obj.__module__ == module_name)))
            if not found:
                missing.append(f"{module_name}.{name} ({where or 'unresolvable'})")
    assert not missing, f"not in the API reference: {missing}"
