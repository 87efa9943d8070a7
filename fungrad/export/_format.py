"""The serialized form of an ``Exported``: fungrad's own, versioned and safe (no pickle).

Layout of the bytes::

    b"FGEXPORT"  magic (8 bytes)
    u32 LE       format version (``FORMAT_VERSION``)
    u64 LE       length of the header
    header       UTF-8 JSON: the function's name, platforms, pytrees, avals and its jaxpr
    data         raw bytes of the constants, which the header points into (offset, nbytes)

Every value in the header is tagged JSON: ``null``, booleans, integers and strings stand for
themselves; anything else is a list whose first element names its kind (``["f", hex]`` a
float, ``["tuple", [...]]``, ``["dtype", "bfloat16"]``, ``["array", ...]``, ``["jaxpr", {...}]``
...). Classes (parameter enums and NamedTuples, pytree nodes) are written by a registered
name and read back only through the allow-list in this module (``register_class``), never by
importing a path found in the data; primitives are looked up by name among fungrad's
registered primitives. Anything that cannot be written (a Python callable in a parameter,
a reference) raises ``ExportSerializationError`` naming the primitive and the parameter;
anything malformed in the data raises ``ExportDeserializationError``.
"""
from __future__ import annotations

import dataclasses
import enum
import json
import math
import struct
from typing import Any, Callable

import numpy as np

from fungrad import tree
from fungrad._core import core, dtypes
from fungrad._core.array import Array
from fungrad._core.core import ClosedJaxpr, Jaxpr, JaxprEqn, Literal, ShapedArray, Var

__all__ = ["FORMAT_VERSION", "MAGIC", "ExportSerializationError", "ExportDeserializationError",
           "register_class", "register_node", "pack", "unpack", "encode_tree", "decode_tree"]

MAGIC = b"FGEXPORT"
FORMAT_VERSION = 1
_PREFIX = struct.Struct("<8sIQ")


class ExportSerializationError(TypeError):
    """An ``Exported`` holds something the format cannot write (a Python callable, a ref).
    The ``Exported`` itself can still be called; only ``serialize`` refuses."""


class ExportDeserializationError(ValueError):
    """The bytes are not a valid serialized ``Exported`` of a supported version, or name a
    primitive or class this fungrad does not know."""


# --------------------------------------------------------------------------- the allow-lists

_classes: dict[str, type] = {}       # serialized name -> enum / NamedTuple / dataclass
_class_names: dict[type, str] = {}
# pytree node types: serialized name -> (type, aux to JSON value, JSON value to aux, build)
_nodes: dict[str, tuple[type, Callable, Callable, Callable]] = {}
_node_names: dict[type, str] = {}


def register_class(cls: type, name: str | None = None) -> type:
    """Allow ``cls`` (an enum, NamedTuple or frozen dataclass of parameters) in the format,
    written as ``name`` (default: ``cls.__qualname__``)."""
    name = name or cls.__qualname__
    if _classes.get(name, cls) is not cls:
        raise ValueError(f"a class is already registered for serialization as {name!r}")
    _classes[name], _class_names[cls] = cls, name
    return cls


def register_node(cls: type, name: str, aux_to_value: Callable, value_to_aux: Callable,
                  build: Callable) -> None:
    """Allow instances of the pytree node type ``cls`` in serialized pytrees, written as
    ``name``: ``aux_to_value(aux)`` gives a value the format can write, ``value_to_aux``
    reverses it and ``build(aux, children)`` makes a node."""
    if name in _nodes or cls in _node_names:
        raise ValueError(f"pytree node {cls.__name__} or name {name!r} is already registered "
                         "for serialization")
    _nodes[name], _node_names[cls] = (cls, aux_to_value, value_to_aux, build), name


def _dtype_table() -> dict[str, np.dtype]:
    table = {d.name: d for d in (*dtypes.all_dtypes, *dtypes.intn)}
    table["float0"] = dtypes.float0
    return table


def _dtype(name: Any) -> np.dtype:
    if not isinstance(name, str):
        raise ExportDeserializationError(f"a dtype name must be a string, got {name!r}")
    table = _dtype_table()
    if name not in table and name not in np.sctypeDict:
        dtypes.load_ml_dtypes()  # bfloat16, the small floats and int4 come with ml_dtypes
        table = _dtype_table()
    if name not in table:
        raise ExportDeserializationError(f"unknown dtype {name!r}")
    return table[name]


def _dtype_name(dtype: np.dtype) -> str:
    return "float0" if dtype == dtypes.float0 else np.dtype(dtype).name


# --------------------------------------------------------------------------- writing

class _Writer:
    """Encodes values into tagged JSON, collecting array bytes into one blob."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.size = 0
        self.where = "the program"  # names the primitive and parameter in errors

    def data(self, arr: np.ndarray) -> list:
        raw = np.ascontiguousarray(arr).tobytes()
        ref = [self.size, len(raw)]
        self.chunks.append(raw)
        self.size += len(raw)
        return ref

    def value(self, x: Any) -> Any:
        if x is None or isinstance(x, (bool, str)):
            return x
        if type(x) is int:
            return x
        if type(x) is float:
            return ["f", x.hex()]
        if type(x) is complex:
            return ["c", x.real.hex(), x.imag.hex()]
        if isinstance(x, enum.Enum) and type(x) in _class_names:
            return ["enum", _class_names[type(x)], x.name]
        if isinstance(x, tuple) and type(x) in _class_names:  # a registered NamedTuple
            return ["namedtuple", _class_names[type(x)], [self.value(v) for v in x]]
        if dataclasses.is_dataclass(x) and type(x) in _class_names:
            return ["dataclass", _class_names[type(x)],
                    [[f.name, self.value(getattr(x, f.name))] for f in dataclasses.fields(x)]]
        if type(x) is tuple:
            return ["tuple", [self.value(v) for v in x]]
        if type(x) is list:
            return ["list", [self.value(v) for v in x]]
        if type(x) is dict:
            return ["dict", [[self.value(k), self.value(v)] for k, v in x.items()]]
        if type(x) is slice:
            return ["slice", self.value(x.start), self.value(x.stop), self.value(x.step)]
        if isinstance(x, np.dtype):
            return ["dtype", _dtype_name(x)]
        if isinstance(x, type) and issubclass(x, np.generic):
            return ["dtype", _dtype_name(np.dtype(x))]
        if type(x) is ShapedArray:
            return ["aval", list(x.shape), _dtype_name(x.dtype), x.weak_type]
        if type(x) is Array:
            buf = np.asarray(x)
            return ["array", _dtype_name(buf.dtype), list(buf.shape), x.weak_type, self.data(buf)]
        if type(x) is np.ndarray:
            return ["ndarray", _dtype_name(x.dtype), list(x.shape), self.data(x)]
        if isinstance(x, np.generic):
            return ["scalar", _dtype_name(x.dtype), self.data(np.asarray(x))]
        if type(x) is ClosedJaxpr:
            return ["closed_jaxpr", self.jaxpr(x.jaxpr), [self.value(c) for c in x.consts]]
        if type(x) is Jaxpr:
            return ["jaxpr", self.jaxpr(x)]
        if type(x) is core.Primitive:
            return ["primitive", x.name]
        what = "a Python callable" if callable(x) else f"a value of type {type(x).__name__}"
        raise ExportSerializationError(
            f"cannot serialize {self.where}: it holds {what} ({x!r:.80}), which fungrad's "
            "export format cannot write (custom_jvp/custom_vjp rules, callbacks and refs are "
            "Python objects). The Exported can still be called; it cannot be serialized.")

    def jaxpr(self, jaxpr: Jaxpr) -> dict:
        ids: dict[Var, int] = {}
        avals: list = []

        def define(v: Var) -> int:
            ids[v] = len(avals)
            avals.append(self.value(v.aval))
            return ids[v]

        def atom(a: Any) -> Any:
            if type(a) is Literal:
                return {"lit": self.value(a.val), "aval": self.value(a.aval)}
            return ids[a]

        constvars = [define(v) for v in jaxpr.constvars]
        invars = [define(v) for v in jaxpr.invars]
        eqns = []
        outer = self.where
        for eqn in jaxpr.eqns:
            ins = [atom(a) for a in eqn.invars]
            params = []
            for k, v in eqn.params.items():
                self.where = f"parameter {k!r} of primitive {eqn.primitive.name!r}"
                params.append([k, self.value(v)])
            self.where = outer
            eqns.append([eqn.primitive.name, ins, [define(v) for v in eqn.outvars], params])
        return {"vars": avals, "constvars": constvars, "invars": invars,
                "outvars": [atom(a) for a in jaxpr.outvars], "eqns": eqns}


# --------------------------------------------------------------------------- reading

class _Reader:
    """Decodes tagged JSON, checking every field; array bytes come from ``blob``."""

    def __init__(self, blob: memoryview) -> None:
        self.blob = blob
        self.primitives = {p.name: p for p in core.primitives()}

    def data(self, ref: Any, dtype: np.dtype, shape: tuple) -> np.ndarray:
        start, nbytes = ref
        if not (type(start) is int and type(nbytes) is int and 0 <= start
                and start + nbytes <= len(self.blob)):
            raise ExportDeserializationError(f"array data {ref!r} lies outside the data section")
        if math.prod(shape) * dtype.itemsize != nbytes:
            raise ExportDeserializationError(f"array data of {nbytes} bytes does not hold a "
                                             f"{dtype.name}{list(shape)}")
        return np.frombuffer(self.blob[start:start + nbytes], dtype).reshape(shape).copy()

    def shape(self, s: Any) -> tuple:
        if type(s) is not list or any(type(d) is not int or d < 0 for d in s):
            raise ExportDeserializationError(f"invalid shape {s!r}")
        return tuple(s)

    def aval(self, x: Any) -> ShapedArray:
        v = self.value(x)
        if type(v) is not ShapedArray:
            raise ExportDeserializationError(f"expected an aval, got {x!r:.80}")
        return v

    def value(self, x: Any) -> Any:  # noqa: C901 - one branch per tag, read as a table
        if x is None or isinstance(x, (bool, int, str)):
            return x
        if type(x) is not list or not x or type(x[0]) is not str:
            raise ExportDeserializationError(f"malformed value {x!r:.80}")
        tag, args = x[0], x[1:]
        if tag == "f":
            return float.fromhex(args[0])
        if tag == "c":
            return complex(float.fromhex(args[0]), float.fromhex(args[1]))
        if tag in ("tuple", "list"):
            items = [self.value(v) for v in self.list(args[0])]
            return tuple(items) if tag == "tuple" else items
        if tag == "dict":
            return {self.value(k): self.value(v) for k, v in self.list(args[0])}
        if tag == "slice":
            return slice(*map(self.value, args))
        if tag == "dtype":
            return _dtype(args[0])
        if tag == "aval":
            shape, name, weak = args
            return ShapedArray(self.shape(shape), _dtype(name), bool(weak))
        if tag == "array":
            name, shape, weak, ref = args
            dtype = _dtype(name)
            return Array(self.data(ref, dtype, self.shape(shape)), bool(weak))
        if tag == "ndarray":
            name, shape, ref = args
            dtype = _dtype(name)
            return self.data(ref, dtype, self.shape(shape))
        if tag == "scalar":
            dtype = _dtype(args[0])
            return self.data(args[1], dtype, ())[()]
        if tag in ("enum", "namedtuple", "dataclass"):
            cls = _classes.get(args[0]) if type(args[0]) is str else None
            if cls is None:
                raise ExportDeserializationError(f"unknown class {args[0]!r} in the data (not "
                                                 "among fungrad's serializable classes)")
            if tag == "enum":
                if not issubclass(cls, enum.Enum) or args[1] not in cls.__members__:
                    raise ExportDeserializationError(f"{args[0]} has no member {args[1]!r}")
                return cls[args[1]]
            if tag == "namedtuple":
                return cls(*[self.value(v) for v in self.list(args[1])])
            return cls(**{str(k): self.value(v) for k, v in self.list(args[1])})
        if tag == "closed_jaxpr":
            return ClosedJaxpr(self.jaxpr(args[0]), [self.value(c) for c in self.list(args[1])])
        if tag == "jaxpr":
            return self.jaxpr(args[0])
        if tag == "primitive":
            return self.primitive(args[0])
        raise ExportDeserializationError(f"unknown value tag {tag!r}")

    @staticmethod
    def list(x: Any) -> list:
        if type(x) is not list:
            raise ExportDeserializationError(f"expected a list, got {x!r:.80}")
        return x

    def primitive(self, name: Any) -> core.Primitive:
        prim = self.primitives.get(name) if type(name) is str else None
        if prim is None:
            raise ExportDeserializationError(
                f"unknown primitive {name!r}: no primitive of that name is registered in this "
                "fungrad (if a fungrad module outside fungrad.lax defines it, import that "
                "module before deserializing)")
        return prim

    def jaxpr(self, d: Any) -> Jaxpr:
        if type(d) is not dict:
            raise ExportDeserializationError(f"malformed jaxpr {d!r:.80}")
        variables = [Var(self.aval(a)) for a in self.list(d["vars"])]

        def var(i: Any) -> Var:
            if type(i) is not int or not 0 <= i < len(variables):
                raise ExportDeserializationError(f"invalid variable index {i!r}")
            return variables[i]

        def atom(a: Any) -> Any:
            if type(a) is dict:
                return Literal(self.value(a["lit"]), self.aval(a["aval"]))
            return var(a)

        eqns = []
        for e in self.list(d["eqns"]):
            name, ins, outs, params = self.list(e)
            prim = self.primitive(name)
            eqn = JaxprEqn(prim, [atom(a) for a in self.list(ins)],
                           [var(i) for i in self.list(outs)],
                           {str(k): self.value(v) for k, v in self.list(params)})
            _check_eqn(eqn)
            eqns.append(eqn)
        return Jaxpr([var(i) for i in self.list(d["constvars"])],
                     [var(i) for i in self.list(d["invars"])],
                     [atom(a) for a in self.list(d["outvars"])], eqns)


def _check_eqn(eqn: JaxprEqn) -> None:
    """The equation's declared output types must be what its primitive's shape rule gives."""
    prim = eqn.primitive
    if prim.abstract_eval is None:
        return
    try:
        out = prim.abstract_eval(*[a.aval for a in eqn.invars], **eqn.params)
    except Exception as e:  # a shape rule rejecting malformed parameters
        raise ExportDeserializationError(f"equation {prim.name} does not type-check: "
                                         f"{type(e).__name__}: {e}") from e
    out = list(out) if prim.multiple_results else [out]
    declared = [v.aval for v in eqn.outvars]
    if len(out) != len(declared) or any(
            a.shape != b.shape or a.dtype != b.dtype for a, b in zip(out, declared)):
        raise ExportDeserializationError(
            f"equation {prim.name}: declared results {[a.str_short() for a in declared]} but "
            f"its operands give {[a.str_short() for a in out]}")


# --------------------------------------------------------------------------- pytrees

class _Leaf:
    """A placeholder leaf, to walk a treedef's structure as a sample tree."""


def encode_tree(treedef: Any, writer: Any = None) -> Any:
    """A ``PyTreeDef`` as tagged JSON: leaves, None, tuples, lists, dicts and the node types
    registered with ``register_node`` (``ExportSerializationError`` for others)."""
    writer = writer or _Writer()

    def walk(x: Any) -> Any:
        if type(x) is _Leaf:
            return "*"
        if x is None:
            return None
        if type(x) in (tuple, list):
            return [type(x).__name__, [walk(c) for c in x]]
        if type(x) is dict:
            return ["dict", [[writer.value(k), walk(v)] for k, v in x.items()]]
        name = _node_names.get(type(x))
        if name is None:
            raise ExportSerializationError(
                f"cannot serialize a pytree holding a {type(x).__qualname__} node: register it "
                "with fungrad.export.register_namedtuple_serialization or "
                "register_pytree_node_serialization")
        _, aux_to_value, _, _ = _nodes[name]
        children, aux, _ = tree.one_level(x)
        return ["node", name, writer.value(aux_to_value(aux)), [walk(c) for _, c in children]]

    sample = tree.unflatten(treedef, [_Leaf() for _ in range(treedef.num_leaves)])
    return walk(sample)


def decode_tree(x: Any, reader: Any = None) -> Any:
    """The ``PyTreeDef`` that ``encode_tree`` wrote."""
    reader = reader or _Reader(memoryview(b""))

    def build(x: Any) -> Any:
        if x == "*":
            return _Leaf()
        if x is None:
            return None
        kind, *args = _Reader.list(x)
        if kind in ("tuple", "list"):
            items = [build(c) for c in _Reader.list(args[0])]
            return tuple(items) if kind == "tuple" else items
        if kind == "dict":
            return {reader.value(k): build(v) for k, v in _Reader.list(args[0])}
        if kind == "node" and args[0] in _nodes:
            _, _, value_to_aux, make = _nodes[args[0]]
            return make(value_to_aux(reader.value(args[1])),
                        [build(c) for c in _Reader.list(args[2])])
        raise ExportDeserializationError(f"unknown pytree node {x!r:.80}")

    return tree.structure(build(x), is_leaf=lambda v: type(v) is _Leaf)


# --------------------------------------------------------------------------- the container

def pack(header: Callable[[_Writer], dict]) -> bytearray:
    """The bytes of a serialized export: ``header(writer)`` builds the JSON header, writing
    array data through the writer."""
    writer = _Writer()
    text = json.dumps(header(writer), separators=(",", ":"), allow_nan=False).encode()
    return bytearray(_PREFIX.pack(MAGIC, FORMAT_VERSION, len(text)) + text
                     + b"".join(writer.chunks))


def unpack(blob: bytes | bytearray | memoryview) -> tuple[dict, _Reader]:
    """The JSON header and a reader for its values; ``ExportDeserializationError`` for bytes
    that are not a serialized export of this format version."""
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise TypeError(f"deserialize expects bytes or a bytearray, got {type(blob).__name__}")
    blob = memoryview(bytes(blob))
    if len(blob) < _PREFIX.size or bytes(blob[:8]) != MAGIC:
        raise ExportDeserializationError("not a serialized fungrad Exported (bad magic bytes)")
    _, version, length = _PREFIX.unpack(blob[:_PREFIX.size])
    if version != FORMAT_VERSION:
        raise ExportDeserializationError(
            f"serialized with export format version {version}; this fungrad reads version "
            f"{FORMAT_VERSION} only")
    end = _PREFIX.size + length
    if end > len(blob):
        raise ExportDeserializationError("truncated data: the header runs past the end")
    try:
        header = json.loads(bytes(blob[_PREFIX.size:end]).decode())
    except (UnicodeDecodeError, ValueError) as e:
        raise ExportDeserializationError(f"corrupted header: {e}") from e
    if type(header) is not dict:
        raise ExportDeserializationError("corrupted header: not a JSON object")
    return header, _Reader(blob[end:])
