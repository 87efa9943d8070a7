"""JAX's remaining top-level surface against jax on the same inputs: ``fungrad.typing``,
``stages``, ``profiler``, ``dlpack``, the transfer guards, strict dtype promotion, tracer
leak flags, live arrays, arrays from shards, the process helpers, the ``jax.errors``
classes and ``debug.log``/``breakpoint``/sharding views."""
from __future__ import annotations

import gc
import gzip
import io
import json
import logging
import pathlib
import sys
from typing import Any, Callable

import jax
import jax.numpy as jnp_ref
import ml_dtypes
import numpy as np
import pytest
import torch

import fungrad
import fungrad.dlpack
import fungrad.numpy as fnp
import fungrad.profiler
import fungrad.stages
import fungrad.typing
from harness import assert_same, rand, to_fg, to_jax

RNG = np.random.default_rng(0)


def _outcome(run: Callable[[], Any]) -> str:
    """``"ok"`` or the name of the error ``run`` raised (the two libraries' errors have the
    same names: ``JaxRuntimeError``, ``TypePromotionError``, ...)."""
    try:
        run()
    except Exception as e:  # noqa: BLE001  (any error: its name is compared)
        return type(e).__name__
    return "ok"


# --------------------------------------------------------------------------- typing

TYPING_VALUES = {"int": 1, "float": 1.5, "bool": True, "complex": 2j, "np.float32": np.float32(1),
                 "np.int8": np.int8(3), "np.bool_": np.bool_(True), "str": "a", "None": None,
                 "list": [1.0], "tuple": (1, 2), "np.str_": np.str_("a"), "bytes": b"x",
                 "bfloat16 scalar": ml_dtypes.bfloat16(1), "ndarray": np.ones(2, np.float32)}


@pytest.mark.parametrize("name", [*TYPING_VALUES, "Array"])
def test_array_like_isinstance_matches_jax(name):
    fg_value, jax_value = (fnp.ones(2), jnp_ref.ones(2)) if name == "Array" else \
        (TYPING_VALUES[name],) * 2
    assert isinstance(fg_value, fungrad.typing.ArrayLike) == \
        isinstance(jax_value, jax.typing.ArrayLike)


def test_array_like_covers_tracers_and_dtype_like_is_an_annotation():
    seen = []
    fungrad.jit(lambda x: seen.append(isinstance(x, fungrad.typing.ArrayLike)) or x)(1.0)
    jax.jit(lambda x: seen.append(isinstance(x, jax.Array)) or x)(1.0)
    assert seen == [True, True]  # jax's ArrayLike union says False here: a documented difference
    for lib in (fungrad, jax):  # a Union with type[Any]: isinstance refuses it in both
        with pytest.raises(TypeError):
            isinstance(np.float32, lib.typing.DTypeLike)
    assert isinstance(fungrad.devices()[0], fungrad.typing.DeviceLike)
    assert isinstance(fnp.ones(2), fungrad.typing.SupportsDType)


# --------------------------------------------------------------------------- stages

def test_stages_classes_and_out_info_match_jax():
    def f(lib):
        return lambda x, y: {"s": lib.numpy.sin(x) @ y}
    args = (rand(RNG, (4, 8)), rand(RNG, (8, 2)))
    wrapped, ref = fungrad.jit(f(fungrad)), jax.jit(f(jax))
    assert isinstance(wrapped, fungrad.stages.Wrapped) and isinstance(ref, jax.stages.Wrapped)
    traced = wrapped.trace(*to_fg(args))
    lowered = traced.lower()
    compiled = lowered.compile(compiler_options={"xla_cpu_enable_fast_math": False})
    assert isinstance(traced, fungrad.stages.Traced)
    assert isinstance(lowered, fungrad.stages.Lowered)
    assert isinstance(compiled, fungrad.stages.Compiled)
    ref_lowered = ref.lower(*to_jax(args))
    for stage in (traced, lowered, compiled):
        got = stage.out_info["s"]
        want = ref_lowered.out_info["s"]
        assert (got.shape, got.dtype) == (want.shape, want.dtype)
    assert lowered.cost_analysis() is None and compiled.cost_analysis() is None
    assert_same(compiled(*to_fg(args))["s"], ref(*to_jax(args))["s"])


@pytest.mark.filterwarnings("ignore:Some donated buffers were not usable")
@pytest.mark.parametrize("fn,shapes", [
    (lambda lib: lambda a, b: a + b, [(3,), (3,)]),
    (lambda lib: lambda a, b: (a @ b).sum(), [(3, 4), (4, 2)]),
    (lambda lib: lambda a, b: a * b[0], [(5,), (2,)]),
])
def test_memory_analysis_sizes_match_jax(fn, shapes):
    args = [rand(RNG, s) for s in shapes]
    got = fungrad.jit(fn(fungrad), donate_argnums=0).lower(*to_fg(args)).compile()
    want = jax.jit(fn(jax), donate_argnums=0).lower(*to_jax(args)).compile()
    got, want = got.memory_analysis(), want.memory_analysis()
    for field in ("argument_size_in_bytes", "output_size_in_bytes", "alias_size_in_bytes"):
        assert getattr(got, field) == getattr(want, field), field
    assert got.generated_code_size_in_bytes > 0


# --------------------------------------------------------------------------- profiler

def _trace_events(log_dir: pathlib.Path, name: str = "*.trace.json.gz") -> dict:
    (path,) = log_dir.glob(f"plugins/profile/*/{name}")
    with gzip.open(path, "rt") as f:
        return json.load(f)


def test_profiler_trace_records_annotations_named_scopes_and_jit_calls(tmp_path):
    f = fungrad.jit(lambda x: fnp.sin(x) * 2)

    @fungrad.profiler.annotate_function
    def step_fn(x):
        with fungrad.named_scope("inner"):
            return f(x)
    x = fnp.ones(3)
    step_fn(x)  # outside a trace: recorded nowhere
    with fungrad.profiler.trace(tmp_path, create_perfetto_trace=True):
        with fungrad.profiler.TraceAnnotation("outer", size=3):
            for i in range(2):
                with fungrad.profiler.StepTraceAnnotation("train", step_num=i):
                    step_fn(x)
    assert fungrad.jit(lambda v: v).__call__.__func__ is fungrad.stages.Wrapped._call_unrecorded
    trace = _trace_events(tmp_path)
    spans = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    names = [e["name"] for e in spans]
    assert sorted(names) == sorted(["outer", "train 0", "train 1"] + 2 * [
        "test_profiler_trace_records_annotations_named_scopes_and_jit_calls.<locals>.step_fn",
        "inner", "jit(<lambda>)"])
    by_name = {e["name"]: e for e in spans}
    outer, jit_call = by_name["outer"], by_name["jit(<lambda>)"]
    assert outer["args"] == {"size": "3"} and by_name["train 1"]["args"] == {"step_num": "1"}
    assert outer["ts"] <= jit_call["ts"] and \
        jit_call["ts"] + jit_call["dur"] <= outer["ts"] + outer["dur"]
    perfetto = _trace_events(tmp_path, "perfetto_trace.json.gz")
    assert "metadata" in trace and "metadata" not in perfetto
    assert perfetto["traceEvents"] == trace["traceEvents"]


def test_profiler_start_and_stop_errors_match_jax(tmp_path):
    for lib in (fungrad, jax):
        with pytest.raises(RuntimeError, match="No profile started"):
            lib.profiler.stop_trace()
        with pytest.raises(ValueError, match="No active profiler server"):
            lib.profiler.stop_server()
    fungrad.profiler.start_trace(tmp_path / "a")
    with pytest.raises(RuntimeError, match="already been started"):
        fungrad.profiler.start_trace(tmp_path / "b")
    fungrad.profiler.stop_trace()
    with pytest.warns(UserWarning, match="no profiler server"):
        fungrad.profiler.start_server(9999)
    with pytest.raises(ValueError, match="Only one profiler server"):
        fungrad.profiler.start_server(9998)
    fungrad.profiler.stop_server()


def _varint(data: bytes, i: int) -> tuple[int, int]:
    """The varint at ``data[i:]`` and the offset after it."""
    n, shift = 0, 0
    while True:
        byte = data[i]
        n, shift, i = n | (byte & 0x7F) << shift, shift + 7, i + 1
        if byte < 0x80:
            return n, i


def _protobuf_fields(data: bytes) -> list[tuple[int, Any]]:
    """The (field number, value) pairs of a protocol buffer message (varint and
    length-delimited fields: the wire types a pprof profile of samples uses)."""
    fields, i = [], 0
    while i < len(data):
        key, i = _varint(data, i)
        value, i = _varint(data, i)
        if key & 7 == 2:
            value, i = data[i:i + value], i + value
        fields.append((key >> 3, value))
    return fields


def _packed(data: bytes) -> list[int]:
    values, i = [], 0
    while i < len(data):
        n, i = _varint(data, i)
        values.append(n)
    return values


def test_device_memory_profile_is_a_pprof_of_the_live_arrays(tmp_path):
    x = fnp.arange(1000, dtype=fnp.float32)
    fungrad.profiler.save_device_memory_profile(tmp_path / "mem.prof")
    profile = _protobuf_fields(gzip.decompress((tmp_path / "mem.prof").read_bytes()))
    strings = [v.decode() for k, v in profile if k == 6]
    assert strings[0] == "" and {"kind", "buffer", "cpu:0", "[1000]", "float32"} <= set(strings)
    sample_types = [[strings[n] for _, n in _protobuf_fields(v)] for k, v in profile if k == 1]
    assert sample_types == [["allocations", "count"], ["space", "bytes"]]
    values = [_packed(dict(_protobuf_fields(v))[2]) for k, v in profile if k == 2]
    assert [1, x.nbytes] in values and len(values) == len(fungrad.live_arrays())


# --------------------------------------------------------------------------- dlpack

DLPACK_DTYPES = [np.bool_, np.int8, np.int32, np.uint8, np.float16, np.float32, np.complex64,
                 np.float64, np.int64]


@pytest.mark.parametrize("dtype", DLPACK_DTYPES, ids=lambda d: np.dtype(d).name)
def test_dlpack_round_trips_with_torch_and_numpy_match_jax(dtype):
    host = rand(RNG, (2, 3), dtype)
    for source in (torch.from_numpy(host.copy()), host.copy()):
        got = fungrad.dlpack.from_dlpack(source)
        want = jax.dlpack.from_dlpack(source)
        assert_same(got, want, check_weak=False)
        assert got.committed == want.committed
        if np.dtype(dtype).itemsize < 8:  # canonicalised 64-bit types are copies, as in jax
            assert np.shares_memory(np.asarray(got), np.asarray(source))
    x = fungrad.dlpack.from_dlpack(host.copy())
    back = torch.from_dlpack(x)
    np.testing.assert_array_equal(back.numpy(), np.asarray(x))
    assert back.data_ptr() == np.asarray(x).ctypes.data
    assert np.shares_memory(np.from_dlpack(x), np.asarray(x))
    assert tuple(map(int, x.__dlpack_device__())) == \
        tuple(map(int, jnp_ref.asarray(host).__dlpack_device__()))


def test_dlpack_copy_device_and_errors_match_jax():
    t = torch.arange(4.0)
    copied = fungrad.dlpack.from_dlpack(t, copy=True)
    assert not np.shares_memory(np.asarray(copied), t.numpy())
    placed = fungrad.dlpack.from_dlpack(t, device=fungrad.devices("cpu")[0])
    assert placed.committed and np.shares_memory(np.asarray(placed), t.numpy())
    for lib in (fungrad, jax):
        with pytest.raises(TypeError, match="__dlpack__"):
            lib.dlpack.from_dlpack([1.0, 2.0])
        with pytest.raises(TypeError):
            lib.dlpack.is_supported_dtype(None)
    for dtype in [*DLPACK_DTYPES, np.uint64, np.complex128, np.float16]:
        assert fungrad.dlpack.is_supported_dtype(dtype) == jax.dlpack.is_supported_dtype(dtype)
    assert not fungrad.dlpack.is_supported_dtype(ml_dtypes.bfloat16)  # documented difference


# --------------------------------------------------------------------------- transfer guards

def _guard_ops(lib: Any) -> dict[str, Callable[[], Any]]:
    x = lib.numpy.ones(3)
    f = lib.jit(lambda a: a * 2)
    f(x)
    return {
        "device_put(numpy)": lambda: lib.device_put(np.ones(3)),
        "device_put(scalar)": lambda: lib.device_put(1.0),
        "device_put(array)": lambda: lib.device_put(x),
        "device_put(array, device)": lambda: lib.device_put(x, lib.devices()[0]),
        "jit(numpy)": lambda: f(np.ones(3)),
        "jit(python scalar)": lambda: f(1.0),
        "jit(numpy scalar)": lambda: f(np.float32(1.0)),
        "jit(array)": lambda: f(x),
        "np.asarray(array)": lambda: np.asarray(x),
        "device_get(array)": lambda: lib.device_get(x),
        "jnp.sum(array)": lambda: lib.numpy.sum(x),
    }


@pytest.mark.parametrize("level", ["allow", "log", "disallow", "log_explicit",
                                   "disallow_explicit"])
@pytest.mark.parametrize("guard", ["transfer_guard", "transfer_guard_host_to_device",
                                   "transfer_guard_device_to_host",
                                   "transfer_guard_device_to_device"])
def test_transfer_guards_raise_where_jax_raises(guard, level):
    fg_ops, jax_ops = _guard_ops(fungrad), _guard_ops(jax)
    for name in fg_ops:
        with getattr(fungrad, guard)(level):
            got = _outcome(fg_ops[name])
        with getattr(jax, guard)(level):
            want = _outcome(jax_ops[name])
        assert got == want, (name, got, want)


class _DeviceBuffer:
    """A buffer outside host memory, as a CuPy array is: ``get()`` copies it to the host."""

    def __init__(self, host: np.ndarray) -> None:
        self.host, self.shape, self.dtype = host, host.shape, host.dtype

    def get(self) -> np.ndarray:
        return self.host.copy()


@pytest.mark.parametrize("level,implicit,explicit", [
    ("allow", "ok", "ok"), ("log", "ok", "ok"), ("disallow", "JaxRuntimeError", "ok"),
    ("disallow_explicit", "JaxRuntimeError", "JaxRuntimeError")])
def test_device_to_host_guard_applies_to_device_buffers(level, implicit, explicit):
    x = fungrad.Array(_DeviceBuffer(np.arange(3.0, dtype=np.float32)))
    with fungrad.transfer_guard_device_to_host(level):
        assert _outcome(lambda: np.asarray(x)) == _outcome(x.tolist) == implicit
        assert _outcome(lambda: fungrad.device_get(x)) == explicit
    np.testing.assert_array_equal(fungrad.device_get({"x": x})["x"], [0.0, 1.0, 2.0])


def test_transfer_guard_logs_config_flag_and_bad_level(caplog):
    f = fungrad.jit(lambda a: a + 1)
    with caplog.at_level(logging.WARNING, logger="fungrad.transfer"):
        with fungrad.transfer_guard("log"):
            f(np.ones(2, np.float32))
            fungrad.device_put(np.ones(2))  # explicit: not logged at "log"
        with fungrad.transfer_guard("log_explicit"):
            fungrad.device_put(np.ones(2))
    assert [r.getMessage() for r in caplog.records] == [
        "implicit host-to-device transfer: aval=f32[2]",
        "explicit host-to-device transfer: aval=f32[2]"]
    fungrad.config.update("jax_transfer_guard", "disallow")
    try:
        assert fungrad.transfer_guard_device_to_host.value == "disallow"
        with pytest.raises(fungrad.errors.JaxRuntimeError, match="host-to-device"):
            f(np.ones(2))
    finally:
        fungrad.config.update("jax_transfer_guard", "allow")
    for lib in (fungrad, jax):
        with pytest.raises(ValueError):
            with lib.transfer_guard("bogus"):
                pass


# --------------------------------------------------------------------------- dtype promotion

PROMOTION_OPERANDS = ["bool", "int8", "int32", "uint8", "uint32", "float16", "bfloat16",
                      "float32", "complex64", "float8_e4m3fn", 1, 1.0, 1j, True]


def _operand(lib: Any, spec: Any) -> Any:
    return lib.numpy.ones(2, spec) if isinstance(spec, str) else spec


@pytest.mark.parametrize("mode", ["standard", "strict"])
def test_numpy_dtype_promotion_matches_jax(mode):
    for a in PROMOTION_OPERANDS:
        for b in PROMOTION_OPERANDS:
            with fungrad.numpy_dtype_promotion(mode):
                got = _outcome(lambda: fnp.add(_operand(fungrad, a), _operand(fungrad, b)))
                got_dtype = None if got != "ok" else \
                    fnp.add(_operand(fungrad, a), _operand(fungrad, b)).dtype
            with jax.numpy_dtype_promotion(mode):
                want = _outcome(lambda: jnp_ref.add(_operand(jax, a), _operand(jax, b)))
                want_dtype = None if want != "ok" else \
                    jnp_ref.add(_operand(jax, a), _operand(jax, b)).dtype
            assert (got, got_dtype) == (want, want_dtype), (a, b)


@pytest.mark.parametrize("pair", [("int32", "float32"), ("int8", "int16"), ("float32", float),
                                  ("int32", int), ("bool", int), ("float16", "float16"),
                                  ("uint8", complex)], ids=str)
def test_strict_promote_types_and_result_type_match_jax(pair):
    with fungrad.numpy_dtype_promotion("strict"), jax.numpy_dtype_promotion("strict"):
        for fg_fn, jax_fn in ((fnp.promote_types, jnp_ref.promote_types),
                              (fnp.result_type, jnp_ref.result_type)):
            got, want = _outcome(lambda: fg_fn(*pair)), _outcome(lambda: jax_fn(*pair))
            assert got == want
            if got == "ok":
                assert fg_fn(*pair) == jax_fn(*pair)
    assert fungrad.numpy_dtype_promotion.value == "standard"


def _library_ops(lib: Any) -> dict[str, Callable[[], Any]]:
    """Library functions whose insides promote (means, random draws, softmax, ...)."""
    jnp = lib.numpy
    i, f = jnp.arange(4, dtype=jnp.int32), jnp.ones(4, jnp.float32)
    return {"mean int": lambda: jnp.mean(i), "int / 2": lambda: i / 2,
            "where int float": lambda: jnp.where(i > 1, i, f),
            "where float scalar": lambda: jnp.where(i > 1, f, 0.0),
            "normal": lambda: lib.random.normal(lib.random.key(0), (3,)),
            "softmax": lambda: lib.nn.softmax(f), "linspace": lambda: jnp.linspace(0, 1, 5),
            "sqrt int": lambda: jnp.sqrt(i), "std int": lambda: jnp.std(i),
            "concatenate": lambda: jnp.concatenate([i, f]), "dot int float": lambda: jnp.dot(i, f),
            "grad": lambda: lib.grad(lambda v: jnp.sum(jnp.sin(v) ** 2))(f),
            "logsumexp": lambda: lib.scipy.special.logsumexp(f),
            "x + np.int32": lambda: f + np.int32(1), "one_hot": lambda: lib.nn.one_hot(i, 4),
            "at add": lambda: f.at[i].add(1), "jit": lambda: lib.jit(lambda a: a * 2 + 1)(f)}


def test_strict_promotion_inside_library_functions_matches_jax():
    fg_ops, jax_ops = _library_ops(fungrad), _library_ops(jax)
    for name in fg_ops:
        with fungrad.numpy_dtype_promotion("strict"):
            got = _outcome(fg_ops[name])
        with jax.numpy_dtype_promotion("strict"):
            want = _outcome(jax_ops[name])
        assert got == want, (name, got, want)


# --------------------------------------------------------------------------- leaks and flags

def test_check_tracer_leaks_flag_and_escaped_tracers_like_jax():
    for lib in (fungrad, jax):
        assert not lib.check_tracer_leaks.value
        with lib.checking_leaks():
            assert lib.check_tracer_leaks.value
        escaped = []
        lib.jit(lambda x: escaped.append(x) or x)(lib.numpy.ones(2))
        with pytest.raises(lib.errors.UnexpectedTracerError):
            lib.numpy.sin(escaped[0])


# --------------------------------------------------------------------------- arrays and hosts

def test_live_arrays_like_jax():
    for lib in (fungrad, jax):
        x = lib.numpy.arange(7.0)
        assert any(a is x for a in lib.live_arrays())
        assert any(a is x for a in lib.live_arrays("cpu"))
        ident = id(x)
        del x
        gc.collect()
        assert all(id(a) != ident for a in lib.live_arrays())
    donated = fnp.ones(5)
    fungrad.jit(lambda v: v + 1, donate_argnums=0)(donated)
    assert all(a is not donated for a in fungrad.live_arrays())


def test_process_helpers_device_and_async_copy_match_jax():
    for name in ("process_indices", "process_index", "process_count"):
        assert getattr(fungrad, name)() == getattr(jax, name)(), name
    for name in ("host_count", "host_id", "host_ids"):  # JAX's older names, deprecated
        with pytest.warns(UserWarning, match="renamed"):
            want = getattr(jax, name)()
        with pytest.warns(UserWarning, match="older name"):
            assert getattr(fungrad, name)() == want, name
    assert isinstance(fungrad.devices()[0], fungrad.Device)
    assert isinstance(jax.devices()[0], jax.Device)
    x = fnp.ones(2)
    assert fungrad.copy_to_host_async({"x": x})["x"] is x and x.copy_to_host_async() is None
    assert fungrad.effects_barrier() is None and jax.effects_barrier() is None


def _shard_makers(lib: Any) -> dict[str, Callable[[], Any]]:
    data = np.arange(6.0).reshape(2, 3)
    sharding = lib.numpy.ones(1).sharding  # SingleDeviceSharding in both
    return {
        "callback": lambda: lib.make_array_from_callback((2, 3), sharding, lambda i: data[i]),
        "callback int32": lambda: lib.make_array_from_callback(
            (2, 3), sharding, lambda i: data.astype(np.int32)[i], dtype=np.int32),
        "callback scalar": lambda: lib.make_array_from_callback((), sharding, lambda i: 3.0),
        "single device": lambda: lib.make_array_from_single_device_arrays(
            (2, 3), sharding, [lib.device_put(data)]),
        "process local": lambda: lib.make_array_from_process_local_data(sharding, data),
        "process local shape": lambda: lib.make_array_from_process_local_data(
            sharding, data, (2, 3)),
    }


def test_make_array_from_shards_matches_jax():
    got, want = _shard_makers(fungrad), _shard_makers(jax)
    for name in got:
        a, b = got[name](), want[name]()
        assert_same(a, b, check_weak=False)
        assert a.committed == b.committed, name
    indices = []
    for lib in (fungrad, jax):
        lib.make_array_from_callback((2, 3), lib.numpy.ones(1).sharding,
                                     lambda i: indices.append(i) or np.zeros((2, 3)))
    assert indices[0] == indices[1] == (slice(None), slice(None))
    for lib in (fungrad, jax):
        sharding = lib.numpy.ones(1).sharding
        with pytest.raises(ValueError, match="global_shape"):
            lib.make_array_from_process_local_data(sharding, np.ones((2, 3)), (4, 3))
        with pytest.raises(ValueError, match="dtype"):
            lib.make_array_from_callback((2,), sharding, lambda i: np.ones(2), dtype=np.int32)
        with pytest.raises(ValueError):
            lib.make_array_from_callback((3,), sharding, lambda i: np.ones(2))


# --------------------------------------------------------------------------- errors

ERRORS = ["JAXTypeError", "JAXIndexError", "JaxRuntimeError", "KeyReuseError",
          "NonConcreteBooleanIndexError", "JaxprTypeError", "InconclusiveDimensionOperation",
          "ConcretizationTypeError", "TracerBoolConversionError", "TracerArrayConversionError",
          "UnexpectedTracerError"]
BUILTINS = (TypeError, IndexError, RuntimeError, ValueError, Exception)


@pytest.mark.parametrize("name", ERRORS)
def test_error_classes_have_jax_builtin_bases(name):
    ours, theirs = getattr(fungrad.errors, name), getattr(jax.errors, name)
    assert [issubclass(ours, b) for b in BUILTINS] == [issubclass(theirs, b) for b in BUILTINS]
    for base in ("JAXTypeError", "JAXIndexError"):
        assert issubclass(ours, getattr(fungrad.errors, base)) == \
            issubclass(theirs, getattr(jax.errors, base))


def test_resource_exhausted_is_a_jax_runtime_error():
    with pytest.raises(fungrad.errors.JaxRuntimeError, match="RESOURCE_EXHAUSTED"):
        fnp.zeros((2**40,))


# --------------------------------------------------------------------------- debug

def test_debug_log_records_the_calling_line_per_run(caplog):
    def f(x):
        fungrad.debug.log("x = {x}", x=x)
        return x * 2
    line = f.__code__.co_firstlineno + 1
    g = fungrad.jit(f)
    with caplog.at_level(logging.INFO, logger="fungrad.debug"):
        g(fnp.arange(2))
        g(fnp.arange(2))
        f(fnp.ones(1))
        fungrad.debug.log(ordered=True)("two-call {}", 3)
    records = caplog.records
    assert [r.getMessage() for r in records] == ["x = [0 1]", "x = [0 1]", "x = [1.]",
                                                 "two-call 3"]
    assert {(r.pathname, r.lineno) for r in records[:3]} == {(__file__, line)}
    assert all(r.name == "fungrad.debug" and r.levelno == logging.INFO for r in records)


def test_debug_breakpoint_shows_concrete_values_eagerly_and_under_jit(monkeypatch, capsys):
    def f(x):
        y = x + 1
        fungrad.debug.breakpoint()
        return y
    monkeypatch.setattr(sys, "stdin", io.StringIO("p y * 10\nc\np x\nc\np x\nc\np x\nc\n"))
    f(fnp.arange(2.0))
    fungrad.jit(f)(fnp.arange(3.0))
    fungrad.vmap(fungrad.jit(f))(fnp.arange(2.0))
    out = capsys.readouterr().out
    assert "array([10., 20.], dtype=float32)" in out
    assert "array([0., 1., 2.], dtype=float32)" in out
    assert "np.float32(0.0)" in out and "np.float32(1.0)" in out
    assert out.count("-> fungrad.debug.breakpoint()") == 4
    monkeypatch.setattr(sys, "stdin", io.StringIO("c\n"))
    token = fnp.ones(1)
    assert fungrad.debug.breakpoint(token=token) is token
    for lib in (fungrad, jax):
        with pytest.raises(ValueError, match="mutually exclusive"):
            lib.debug.breakpoint(ordered=True, token=token)


def test_sharding_views_match_jax(capsys):
    fungrad.debug.visualize_array_sharding(fnp.ones(8))
    ours = capsys.readouterr().out
    jax.debug.visualize_array_sharding(jnp_ref.ones(8))
    assert ours == capsys.readouterr().out
    for lib in (fungrad, jax):
        with pytest.raises(ValueError, match="1 and 2 dimensions"):
            lib.debug.visualize_array_sharding(lib.numpy.ones((2, 2, 2)))
    seen, ref = [], []
    fungrad.debug.inspect_array_sharding({"a": fnp.ones(2)}, callback=seen.append)
    fungrad.jit(lambda x: fungrad.debug.inspect_array_sharding(x, callback=seen.append) or x)(
        fnp.ones(2))
    jax.debug.inspect_array_sharding({"a": jnp_ref.ones(2)}, callback=ref.append)
    devices = [[(d.platform, d.id) for d in s.device_set] for s in seen + ref]
    assert devices == 3 * [[("cpu", 0)]]
