"""PRNG keys: raw ``uint32[..., 2]`` arrays and typed key arrays, and the key operations.

Two kinds of keys, as in JAX:

* raw keys (``PRNGKey(seed)``, the legacy form): ``uint32`` arrays whose last
  dimension (2) holds the two words of each key;
* typed keys (``key(seed)``): a ``PRNGKeyArray`` wrapping that data, whose
  ``shape`` is the shape of the *key array* (the trailing 2 hidden) and whose
  dtype is ``key<fry>``. It is a pytree with the uint32 data as its one child,
  so typed keys pass through ``jit``, ``vmap``, ``grad``, ``scan`` and
  checkpoints as their data. (The key dimensions lead, so ``vmap`` over a
  typed key array maps its key dimensions as long as ``in_axes``/``out_axes``
  are non-negative.)

Every function accepts both kinds and returns keys of the kind it was given.
"""
from __future__ import annotations

import contextlib
import warnings
from typing import Any, Iterator, Sequence

import numpy as np

from fungrad import lax, tree
from fungrad._core import core, dtypes
from fungrad._core.dtypes import prng_key
from fungrad._core.array import Array
from fungrad.config import config
from fungrad.lax._prim import as_operand, static_ints
from fungrad.random import _threefry
from fungrad.transforms import key_reuse

_U32 = np.dtype(np.uint32)
IMPL_NAME = "threefry2x32"


class KeyDType:
    """The dtype of typed threefry keys, printed ``key<fry>`` as in JAX; its scalar type is
    ``fungrad.dtypes.prng_key``, so ``jnp.issubdtype(key.dtype, dtypes.prng_key)`` holds."""
    name = "key<fry>"
    type = prng_key

    def __repr__(self) -> str:
        return self.name

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KeyDType) or other == self.name

    def __hash__(self) -> int:
        return hash(self.name)


KEY_DTYPE = KeyDType()


class PRNGKeyArray:
    """An array of typed PRNG keys (from ``key``, ``split``, ``wrap_key_data``).

    Holds the ``uint32[*shape, 2]`` key data; ``shape`` excludes the trailing 2.
    It has no arithmetic: use it with the ``fungrad.random`` functions, index
    or reshape it, and get its bits with ``key_data``.
    """
    __slots__ = ("_data",)

    def __init__(self, data: Any) -> None:
        self._data = data

    shape = property(lambda self: tuple(core.get_aval(self._data).shape[:-1]),
                     doc="The shape of the key array (without the key data's last axis).")
    ndim = property(lambda self: len(self.shape), doc="The number of dimensions.")
    size = property(lambda self: int(np.prod(self.shape, dtype=np.int64)),
                    doc="The number of keys.")
    dtype = property(lambda self: KEY_DTYPE, doc="The key dtype, ``key<fry>``.")

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of an unsized (scalar) key array")
        return self.shape[0]

    def __iter__(self) -> Iterator["PRNGKeyArray"]:
        return (self[i] for i in range(len(self)))

    def __getitem__(self, index: Any) -> "PRNGKeyArray":
        index = (index if isinstance(index, tuple) else (index,)) + (slice(None),)
        data = self._data
        if config.debug_key_reuse:
            data = _consume_indexed(data, index)
        return PRNGKeyArray(data[index])

    def reshape(self, *shape: Any) -> "PRNGKeyArray":
        """The same keys arranged in a new key-array ``shape``."""
        if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
            shape = tuple(shape[0])
        shape = static_ints(shape, "PRNGKeyArray.reshape")
        if -1 in shape:
            known = int(np.prod([d for d in shape if d != -1]))
            shape = tuple(self.size // max(known, 1) if d == -1 else d for d in shape)
        return PRNGKeyArray(lax.reshape(self._data, shape + (2,)))

    def block_until_ready(self) -> "PRNGKeyArray":
        """Return the keys: computation is synchronous here (kept for JAX code)."""
        return self

    def __repr__(self) -> str:
        return f"Array({self.shape}, dtype={KEY_DTYPE}) overlaying:\n{self._data}"


tree.register_pytree_node(PRNGKeyArray, lambda k: ([k._data], None),
                          lambda aux, children: PRNGKeyArray(children[0]))


def _consume_indexed(data: Any, index: tuple) -> Any:
    """``data`` recording that indexing consumes the keys ``index`` picks (the picked keys
    are fresh ones), as indexing with static indices does in JAX (``slice``). An index
    known only at run time consumes nothing here; consuming its result consumes the
    whole key array."""
    if any(isinstance(i, core.Tracer) for i in index):
        return data
    mask = np.zeros(core.get_aval(data).shape, bool)
    try:
        mask[tuple(np.asarray(i) if isinstance(i, Array) else i for i in index)] = True
    except (IndexError, TypeError, ValueError):
        return data  # indexing itself raises the error that names the problem
    return key_reuse.consume(data, "slice", mask)


# --------------------------------------------------------------------------- key checks

def _key_kind() -> str:
    return ("a PRNG key: a uint32 array whose last dimension is 2 (from PRNGKey, split, "
            "fold_in) or a typed key (from key)")


def check_key_data(name: str, data: Any) -> Any:
    """``data`` as an operand, checked to be raw key data ``uint32[..., 2]``."""
    if not isinstance(data, (Array, core.Tracer, np.ndarray, np.generic)):
        raise TypeError(f"{name}: expected {_key_kind()}, got {type(data).__name__}")
    data = as_operand(data)
    aval = core.get_aval(data)
    if aval.dtype != _U32 or aval.ndim < 1 or aval.shape[-1] != 2:
        raise TypeError(f"{name}: expected {_key_kind()}, got {aval.str_short()}")
    return data


# JAX's words where ``legacy_prng_key`` refuses or warns of a raw key
LEGACY_KEY_MESSAGE = ("Legacy uint32 key array passed as key to jax.random function. Please "
                      "create keys using jax.random.key(). If use of a raw key array was "
                      'intended, set jax_legacy_prng_key="allow".')


_key_checked = 0  # > 0 while a random function calls another with a key it checked already


@contextlib.contextmanager
def key_checked() -> Iterator[None]:
    """Within the block, raw keys are not checked against ``legacy_prng_key`` again: a
    random function calling another (``choice`` calling ``randint``, ``beta`` calling
    ``loggamma``) on the key it checked warns once, as JAX's does."""
    global _key_checked
    _key_checked += 1
    try:
        yield
    finally:
        _key_checked -= 1


def _check_legacy(name: str) -> None:
    """A raw key was given to ``name``: raise or warn as ``legacy_prng_key`` says (and, while
    it allows them, warn that raw keys are deprecated under ``enable_custom_prng``)."""
    if config.legacy_prng_key == "error":
        raise ValueError(LEGACY_KEY_MESSAGE)
    if config.legacy_prng_key == "warn":
        warnings.warn(LEGACY_KEY_MESSAGE, stacklevel=4)
    elif config.enable_custom_prng:
        warnings.warn("Raw arrays as random keys to jax.random functions are deprecated. "
                      "Assuming valid threefry2x32 key for now.", FutureWarning, stacklevel=4)


def check_key(name: str, key: Any, allow_batched: bool = False,
              consume: bool = True, legacy: bool = True) -> tuple[Any, bool]:
    """The raw data of ``key`` and whether it was a typed key.

    Unless ``allow_batched``, the key must be a single key (``uint32[2]`` raw,
    shape ``()`` typed); functions taking one key are vmapped over many. With
    ``consume`` (samplers, ``split``) a typed key is consumed while
    ``debug_key_reuse`` is set: the data returned then carries that record. With
    ``legacy``, a raw key is checked against ``config.legacy_prng_key`` (JAX does so
    everywhere but in ``clone``).
    """
    typed = isinstance(key, PRNGKeyArray)
    data = check_key_data(name, key._data if typed else key)
    if not typed and legacy and not _key_checked and (config.legacy_prng_key != "allow"
                                                      or config.enable_custom_prng):
        _check_legacy(name)
    shape = core.get_aval(data).shape
    if not allow_batched and len(shape) != 1:
        raise ValueError(f"{name} accepts a single key, but was given a key array of shape "
                         f"{shape[:-1]} != () (data {core.get_aval(data).str_short()}). "
                         "Use vmap for batching.")
    if typed and consume and config.debug_key_reuse:
        data = key_reuse.consume(data, name)
    return data, typed


def as_kind(data: Any, typed: bool) -> Any:
    """Key ``data`` returned in the kind (typed or raw) the caller passed in."""
    return PRNGKeyArray(data) if typed else data


def _new_keys(data: Any, typed: bool) -> Any:
    """New keys (``PRNGKey``, ``split``, ``fold_in``) in the kind the caller passed in, or
    typed whatever it was while ``enable_custom_prng`` is set (as JAX's)."""
    return as_kind(data, typed or config.enable_custom_prng)


def _check_impl(name: str, impl: Any) -> None:
    spec = impl if impl is None or isinstance(impl, str) else getattr(impl, "name", impl)
    if spec not in (None, IMPL_NAME, KEY_DTYPE.name) and not isinstance(impl, KeyDType):
        raise ValueError(f"{name}: unsupported PRNG implementation {impl!r}; "
                         f"fungrad implements {IMPL_NAME!r} only")


# --------------------------------------------------------------------------- constructors

def _seed(name: str, seed: Any) -> Any:
    if isinstance(seed, PRNGKeyArray):
        raise TypeError(f"{name} accepts a scalar seed, but was given a PRNG key.")
    if np.ndim(seed):
        raise TypeError(f"{name} accepts a scalar seed, but was given an array of shape "
                        f"{np.shape(seed)} != (). Use vmap for batching.")
    if isinstance(seed, int):
        if not -2 ** 63 <= seed < 2 ** 63:
            raise OverflowError(f"{name}: seed {seed} does not fit in a 64-bit signed integer")
        return _threefry.threefry_seed(seed)
    if isinstance(seed, (float, complex)):
        raise TypeError(f"{name}: the seed must be an integer, got {type(seed).__name__} {seed!r}")
    seed = as_operand(seed)
    if not dtypes.is_integer(core.get_aval(seed).dtype):
        raise TypeError(f"{name}: the seed must be an integer, "
                        f"got {core.get_aval(seed).str_short()}")
    return _threefry.threefry_seed(seed)


def PRNGKey(seed: Any, *, impl: Any = None) -> Any:
    """A raw (legacy) key ``uint32[2]`` from an integer seed (``jax.random.PRNGKey``).

    The seed's 64 bits become the key's two words. Without x64, seeds are
    32-bit: a Python int is wrapped to int32 and the high word is 0, as in JAX.

    Examples:
        >>> from fungrad import random
        >>> random.PRNGKey(7)
        Array([0, 7], dtype=uint32)
    """
    _check_impl("PRNGKey", impl)
    return _new_keys(_seed("PRNGKey", seed), False)


def key(seed: Any, *, impl: Any = None, dtype: Any = None) -> PRNGKeyArray:
    """A typed scalar key (shape ``()``, dtype ``key<fry>``) from an integer seed.

    Examples:
        >>> from fungrad import random
        >>> k = random.key(7)
        >>> k.shape, k.dtype
        ((), key<fry>)
        >>> random.key_data(k)
        Array([0, 7], dtype=uint32)
    """
    if impl is not None and dtype is not None:
        raise ValueError("key: cannot specify both `impl` and `dtype`")
    _check_impl("key", impl if dtype is None else dtype)
    return PRNGKeyArray(_seed("key", seed))


def key_data(keys: Any) -> Any:
    """The ``uint32[..., 2]`` data underlying a key array (raw keys are returned as is)."""
    data, _ = check_key("key_data", keys, allow_batched=True, consume=False)
    return data


def wrap_key_data(key_bits_array: Any, *, impl: Any = None, dtype: Any = None) -> PRNGKeyArray:
    """Wrap ``uint32[..., 2]`` key data into a typed key array of shape ``data.shape[:-1]``."""
    if impl is not None and dtype is not None:
        raise ValueError("wrap_key_data: cannot specify both `impl` and `dtype`")
    _check_impl("wrap_key_data", impl if dtype is None else dtype)
    if isinstance(key_bits_array, PRNGKeyArray):
        raise TypeError("wrap_key_data: expected uint32 key data, got a typed key array; "
                        "use key_data to unwrap it")
    data = check_key_data("wrap_key_data", key_bits_array)
    if config.debug_key_reuse:  # a new key, unconsumed whatever its data was, as in JAX
        data = key_reuse.clone(data)
    return PRNGKeyArray(data)


def key_dtype(impl_spec: Any = None) -> KeyDType:
    """The dtype of typed keys of a PRNG implementation (``key<fry>``: threefry is the only one).

    Examples:
        >>> from fungrad import random
        >>> random.key_dtype()
        key<fry>
    """
    _check_impl("key_dtype", impl_spec)
    return KEY_DTYPE


def clone(key: Any) -> Any:
    """A copy of ``key`` to use again: the same key, typed or raw. While
    ``debug_key_reuse`` is set, a typed key's copy is a fresh, unconsumed key, whether or
    not ``key`` was consumed (``key`` itself is not).

    Examples:
        >>> from fungrad import random
        >>> k = random.key(0)
        >>> bool((random.uniform(random.clone(k)) == random.uniform(k)).all())
        True
    """
    data, typed = check_key("clone", key, allow_batched=True, consume=False, legacy=False)
    if typed and config.debug_key_reuse:
        data = key_reuse.clone(data)
    return as_kind(data, typed)


def key_impl(keys: Any) -> str:
    """The name of the PRNG implementation of ``keys`` (always ``'threefry2x32'``)."""
    check_key("key_impl", keys, allow_batched=True, consume=False)
    return IMPL_NAME


# --------------------------------------------------------------------------- split / fold_in

def split(key: Any, num: int | Sequence[int] = 2) -> Any:
    """``num`` new keys (or an array of keys of shape ``num``) from one key.

    The keys are independent of each other and of ``key``; do not reuse ``key``
    after splitting it.

    Examples:
        >>> from fungrad import random
        >>> random.split(random.PRNGKey(0))  # the same keys as jax.random.split
        Array([[1797259609, 2579123966],
               [ 928981903, 3453687069]], dtype=uint32)
        >>> random.split(random.key(0), (2, 3)).shape
        (2, 3)
    """
    data, typed = check_key("split", key)
    shape = static_ints(num, "split", "num")
    if any(d < 0 for d in shape):
        raise ValueError(f"split: num must be non-negative, got {num}")
    return _new_keys(_threefry.threefry_split(data, shape), typed)


def fold_in(key: Any, data: Any) -> Any:
    """A new key that is a deterministic function of ``key`` and the 32-bit integer ``data``.

    Useful to derive per-step or per-device keys: ``fold_in(key, step)``.

    Examples:
        >>> from fungrad import random
        >>> random.fold_in(random.PRNGKey(0), 1)
        Array([ 928981903, 3453687069], dtype=uint32)
    """
    raw, typed = check_key("fold_in", key, consume=False)  # fold_in consumes nothing, as in JAX
    if np.ndim(data):
        raise TypeError(f"fold_in accepts a scalar, but was given an array of shape "
                        f"{np.shape(data)} != (). Use vmap for batching.")
    if isinstance(data, (int, float)) and not isinstance(data, bool):
        if not 0 <= data < 2 ** 32:
            raise OverflowError(f"fold_in: data {data} is out of bounds for uint32")
        word = as_operand(np.uint32(data))
    else:
        word = lax.convert_element_type(as_operand(data), _U32)
    return _new_keys(_threefry.threefry_fold_in(raw, word), typed)
