"""Stax: JAX's small neural-network library of ``(init_fun, apply_fun)`` pairs
(``jax.example_libraries.stax``), for code written against it.

A layer is a pair of pure functions: ``init_fun(rng, input_shape) -> (output_shape, params)``
draws the parameters for inputs of that shape, and ``apply_fun(params, inputs, **kwargs)``
computes the outputs (``rng=`` carries a key to the layers that need one, such as
``Dropout``). Layer constructors are CamelCase (``Dense(10)``); layers without arguments
are pairs already (``Relu``, ``Flatten``). ``serial``, ``parallel``, ``FanOut`` and
``FanInSum``/``FanInConcat`` compose them. The same key gives the same parameters as
``jax.example_libraries.stax``, bit for bit. New code may prefer ``fungrad.nn``'s layers
over params dicts.

Bad arguments raise a ``ValueError`` or ``TypeError`` naming the layer and the argument
(``stax.Dense: input_shape ...``) when the layer is built or initialised, not a NumPy error
from deep inside.

Examples:
    >>> import fungrad
    >>> from fungrad.example_libraries import stax
    >>> init_fun, apply_fun = stax.serial(stax.Dense(8), stax.Relu, stax.Dense(3),
    ...                                   stax.LogSoftmax)
    >>> out_shape, params = init_fun(fungrad.random.PRNGKey(0), (-1, 4))
    >>> out_shape
    (-1, 3)
    >>> [w.shape for w, b in params[::2]]
    [(4, 8), (8, 3)]
    >>> fungrad.jit(apply_fun)(params, fungrad.numpy.ones((2, 4))).shape
    (2, 3)
"""
from __future__ import annotations

import functools
import math
import numbers
import operator
from typing import Any, Callable, Sequence

import fungrad.numpy as jnp
from fungrad import lax, random
from fungrad._core.namespace import public_dir
from fungrad.nn.functions import (elu, gelu, leaky_relu, log_softmax, relu, selu, sigmoid,
                                  softmax, softplus, standardize)
from fungrad.nn.initializers import glorot_normal, normal, ones, zeros

__all__ = [
    # layers
    "Dense", "GeneralConv", "Conv", "GeneralConvTranspose", "Conv1DTranspose", "ConvTranspose",
    "BatchNorm", "elementwise", "Tanh", "Relu", "Exp", "LogSoftmax", "Softmax", "Softplus",
    "Sigmoid", "Elu", "LeakyRelu", "Selu", "Gelu", "MaxPool", "SumPool", "AvgPool", "Flatten",
    "Identity", "FanOut", "FanInSum", "FanInConcat", "Dropout",
    # combinators
    "serial", "parallel", "shape_dependent",
    # the functions and initialisers stax re-exports, with its old aliases
    "relu", "log_softmax", "softmax", "softplus", "sigmoid", "elu", "leaky_relu", "selu", "gelu",
    "standardize", "glorot_normal", "normal", "ones", "zeros", "glorot", "randn", "logsoftmax",
    # types
    "InitFun", "ApplyFun", "Layer"]
__dir__ = public_dir(__all__)

Shape = Any  # a tuple of ints (-1 for an unknown batch size), or a list of them
InitFun = Callable[[Any, Shape], tuple[Shape, Any]]
ApplyFun = Callable[..., Any]
Layer = tuple[InitFun, ApplyFun]

# jax's old names, kept by stax for backward compatibility
glorot = glorot_normal
randn = normal
logsoftmax = log_softmax

_PADDINGS = ("VALID", "SAME", "SAME_LOWER")


# --------------------------------------------------------------------------- argument checks

def _ints(layer: str, name: str, value: Any, length: int | None = None,
          what: str = "") -> tuple[int, ...]:
    """``value`` as a tuple of ints, or an error naming ``stax.<layer>`` and ``name``."""
    try:
        dims = tuple(operator.index(d) for d in value)
    except TypeError:
        raise TypeError(f"stax.{layer}: {name} must be a sequence of ints, "
                        f"got {value!r}") from None
    if length is not None and len(dims) != length:
        raise ValueError(f"stax.{layer}: {name} must have {length} entries{what}, got {value!r}")
    return dims


def _input_shape(layer: str, shape: Any, ndim: int | None = None, *, min_ndim: int = 0,
                 what: str = "") -> tuple[int, ...]:
    """An ``init_fun``'s ``input_shape`` as a tuple of ints of the rank the layer needs."""
    dims = _ints(layer, "input_shape", shape, ndim, what)
    if len(dims) < min_ndim:
        raise ValueError(f"stax.{layer}: input_shape must have at least {min_ndim} "
                         f"dimension(s){what}, got {shape!r}")
    return dims


def _shapes(layer: str, shapes: Any, count: int | None = None) -> list[tuple[int, ...]]:
    """The list of input shapes of a layer with several inputs."""
    if isinstance(shapes, (str, bytes)) or not isinstance(shapes, Sequence) or \
            not all(isinstance(s, Sequence) for s in shapes):
        raise TypeError(f"stax.{layer}: input_shape must be a sequence of shapes (one per "
                        f"input, as FanOut makes), got {shapes!r}")
    if count is not None and len(shapes) != count:
        raise ValueError(f"stax.{layer}: input_shape must hold {count} shapes (one per layer), "
                         f"got {len(shapes)}: {shapes!r}")
    return [_input_shape(layer, s) for s in shapes]


def _padding(layer: str, padding: Any, n: int, what: str) -> Any:
    """``padding`` as lax takes it: one of ``_PADDINGS`` or ``n`` ``(low, high)`` pairs."""
    if isinstance(padding, str):
        if padding.upper() not in _PADDINGS:
            raise ValueError(f"stax.{layer}: padding must be 'VALID', 'SAME', 'SAME_LOWER' or "
                             f"{n} (low, high) pairs ({what}), got {padding!r}")
        return padding.upper()
    try:
        pairs = tuple((operator.index(lo), operator.index(hi)) for lo, hi in padding)
    except (TypeError, ValueError):
        pairs = None
    if pairs is None or len(pairs) != n:
        raise ValueError(f"stax.{layer}: padding must be 'VALID', 'SAME', 'SAME_LOWER' or "
                         f"{n} (low, high) pairs ({what}), got {padding!r}")
    return pairs


def _layers(combinator: str, layers: Sequence[Any]) -> tuple[tuple, tuple]:
    """The ``init_fun``s and ``apply_fun``s of ``layers``, each checked to be a pair."""
    for i, layer in enumerate(layers):
        if not (isinstance(layer, (tuple, list)) and len(layer) == 2 and all(map(callable, layer))):
            hint = " (call the constructor: Dense(10), not Dense)" if callable(layer) else ""
            raise TypeError(f"stax.{combinator}: layer {i} must be an (init_fun, apply_fun) "
                            f"pair{hint}, got {layer!r}")
    if not layers:
        return (), ()
    init_funs, apply_funs = zip(*layers)
    return init_funs, apply_funs


def _check_inputs(layer: str, inputs: Any, axis: int, size: int) -> None:
    """``inputs`` has ``size`` entries along ``axis`` (the one the params were drawn for)."""
    shape = jnp.shape(inputs)
    if len(shape) <= axis or shape[axis] != size:
        raise ValueError(f"stax.{layer}: inputs of shape {tuple(shape)} do not fit the params, "
                         f"drawn for {size} input features (channels) on axis {axis}")


# --------------------------------------------------------------------------- dense and conv

def Dense(out_dim: int, W_init: Callable = glorot_normal(), b_init: Callable = normal()) -> Layer:
    """A fully connected layer: ``inputs @ W + b`` over the last axis.

    ``W`` is ``(in_dim, out_dim)`` drawn with ``W_init`` (Glorot normal), ``b`` is
    ``(out_dim,)`` drawn with ``b_init`` (normal, stddev 0.01).
    """
    out_dim = operator.index(out_dim)

    def init_fun(rng, input_shape):
        input_shape = _input_shape("Dense", input_shape, min_ndim=1,
                                   what=" (the last one is the input features)")
        k1, k2 = random.split(rng)
        params = W_init(k1, (input_shape[-1], out_dim)), b_init(k2, (out_dim,))
        return input_shape[:-1] + (out_dim,), params

    def apply_fun(params, inputs, **kwargs):
        W, b = params
        _check_inputs("Dense", inputs, jnp.ndim(inputs) - 1, W.shape[0])
        return jnp.dot(inputs, W) + b
    return init_fun, apply_fun


def _conv_layer(name: str, transpose: bool, dimension_numbers: Any, out_chan: int,
                filter_shape: Sequence[int], strides: Sequence[int] | None, padding: Any,
                W_init: Callable | None, b_init: Callable) -> Layer:
    """``GeneralConv`` and ``GeneralConvTranspose``: the two differ in the lax functions that
    give the output shape and compute the outputs."""
    specs = dimension_numbers
    if not (isinstance(specs, (tuple, list)) and len(specs) == 3
            and all(isinstance(s, str) for s in specs)):
        raise TypeError(f"stax.{name}: dimension_numbers must be three strings such as "
                        f"('NHWC', 'HWIO', 'NHWC'), got {specs!r}")
    lhs_spec, rhs_spec, out_spec = specs
    if not (len(lhs_spec) == len(rhs_spec) == len(out_spec) and {"N", "C"} <= set(lhs_spec)
            and {"N", "C"} <= set(out_spec) and {"I", "O"} <= set(rhs_spec)):
        raise ValueError(f"stax.{name}: dimension_numbers must name the batch and channel axes "
                         f"('N', 'C') of the inputs and outputs and the 'I', 'O' axes of the "
                         f"kernel, with one rank for all three, got {specs!r}")
    n = len(rhs_spec) - 2
    filter_shape = _ints(name, "filter_shape", filter_shape, n, f" (one per spatial axis of "
                         f"{rhs_spec!r})")
    one = (1,) * n
    strides = one if strides is None else _ints(name, "strides", strides, n,
                                                " (one per spatial axis)")
    padding = _padding(name, padding, n, "one per spatial axis")
    W_init = W_init or glorot_normal(rhs_spec.index("I"), rhs_spec.index("O"))
    out_shape = lax.conv_transpose_shape_tuple if transpose else lax.conv_general_shape_tuple
    in_axis = lhs_spec.index("C")

    def init_fun(rng, input_shape):
        input_shape = _input_shape(name, input_shape, len(lhs_spec),
                                   what=f" (one per axis of {lhs_spec!r})")
        spatial = iter(filter_shape)
        kernel_shape = [out_chan if c == "O" else input_shape[in_axis] if c == "I"
                        else next(spatial) for c in rhs_spec]
        output_shape = out_shape(input_shape, kernel_shape, strides, padding, specs)
        bias_shape = [out_chan if c == "C" else 1 for c in out_spec]
        k1, k2 = random.split(rng)
        return tuple(output_shape), (W_init(k1, kernel_shape), b_init(k2, bias_shape))

    def apply_fun(params, inputs, **kwargs):
        W, b = params
        _check_inputs(name, inputs, in_axis, W.shape[rhs_spec.index("I")])
        if transpose:
            out = lax.conv_transpose(inputs, W, strides, padding, dimension_numbers=specs)
        else:
            out = lax.conv_general_dilated(inputs, W, strides, padding, one, one,
                                           dimension_numbers=specs)
        return out + b
    return init_fun, apply_fun


def GeneralConv(dimension_numbers: tuple[str, str, str], out_chan: int,
                filter_shape: Sequence[int], strides: Sequence[int] | None = None,
                padding: Any = "VALID", W_init: Callable | None = None,
                b_init: Callable = normal(1e-6)) -> Layer:
    """A convolution with any layout: ``dimension_numbers`` is ``(lhs, rhs, out)`` as in
    ``lax.conv_general_dilated`` (``('NHWC', 'HWIO', 'NHWC')`` for ``Conv``).

    The kernel's shape puts ``out_chan`` on ``'O'``, the input channels on ``'I'`` and
    ``filter_shape`` on the spatial axes; it is drawn with ``W_init`` (Glorot normal over
    those axes) and the bias, ``out_chan`` along ``'C'`` of the output, with ``b_init``.
    """
    return _conv_layer("GeneralConv", False, dimension_numbers, out_chan, filter_shape,
                       strides, padding, W_init, b_init)


def Conv(out_chan: int, filter_shape: Sequence[int], strides: Sequence[int] | None = None,
         padding: Any = "VALID", W_init: Callable | None = None,
         b_init: Callable = normal(1e-6)) -> Layer:
    """A 2-D convolution of NHWC images with an HWIO kernel (``GeneralConv`` in that
    layout)."""
    return _conv_layer("Conv", False, ("NHWC", "HWIO", "NHWC"), out_chan, filter_shape,
                       strides, padding, W_init, b_init)


def GeneralConvTranspose(dimension_numbers: tuple[str, str, str], out_chan: int,
                         filter_shape: Sequence[int], strides: Sequence[int] | None = None,
                         padding: Any = "VALID", W_init: Callable | None = None,
                         b_init: Callable = normal(1e-6)) -> Layer:
    """A transposed convolution (``lax.conv_transpose``) with any layout, parameters as in
    ``GeneralConv``: strides above 1 upsample."""
    return _conv_layer("GeneralConvTranspose", True, dimension_numbers, out_chan, filter_shape,
                       strides, padding, W_init, b_init)


def Conv1DTranspose(out_chan: int, filter_shape: Sequence[int],
                    strides: Sequence[int] | None = None, padding: Any = "VALID",
                    W_init: Callable | None = None, b_init: Callable = normal(1e-6)) -> Layer:
    """A 1-D transposed convolution of NHC sequences with an HIO kernel."""
    return _conv_layer("Conv1DTranspose", True, ("NHC", "HIO", "NHC"), out_chan, filter_shape,
                       strides, padding, W_init, b_init)


def ConvTranspose(out_chan: int, filter_shape: Sequence[int],
                  strides: Sequence[int] | None = None, padding: Any = "VALID",
                  W_init: Callable | None = None, b_init: Callable = normal(1e-6)) -> Layer:
    """A 2-D transposed convolution of NHWC images with an HWIO kernel."""
    return _conv_layer("ConvTranspose", True, ("NHWC", "HWIO", "NHWC"), out_chan, filter_shape,
                       strides, padding, W_init, b_init)


# --------------------------------------------------------------------------- normalisation

def BatchNorm(axis: int | Sequence[int] = (0, 1, 2), epsilon: float = 1e-5, center: bool = True,
              scale: bool = True, beta_init: Callable = zeros,
              gamma_init: Callable = ones) -> Layer:
    """Standardise over ``axis`` with the current batch's statistics, then scale by
    ``gamma`` and shift by ``beta`` (params ``(beta, gamma)``, shaped as the axes that are
    not reduced; ``()`` for the one left out by ``center=False`` or ``scale=False``).

    Stax keeps no running averages: inference standardises with its own batch too.
    Negative axes count from the end of the input shape.
    """
    axes = (axis,) if jnp.isscalar(axis) else tuple(axis)

    def reduced(ndim):
        """``axis`` as non-negative axes of inputs of rank ``ndim``."""
        for a in axes:
            if not -ndim <= operator.index(a) < ndim:
                raise ValueError(f"stax.BatchNorm: axis {a} is out of range for inputs of rank "
                                 f"{ndim}")
        return tuple(operator.index(a) % ndim for a in axes)

    def init_fun(rng, input_shape):
        input_shape = _input_shape("BatchNorm", input_shape)
        red = reduced(len(input_shape))
        shape = tuple(d for i, d in enumerate(input_shape) if i not in red)
        k1, k2 = random.split(rng)
        beta = beta_init(k1, shape) if center else ()
        gamma = gamma_init(k2, shape) if scale else ()
        return input_shape, (beta, gamma)

    def apply_fun(params, x, **kwargs):
        beta, gamma = params
        red = reduced(jnp.ndim(x))
        expand = tuple(None if i in red else slice(None) for i in range(jnp.ndim(x)))
        z = standardize(x, red, epsilon=epsilon)
        if scale:
            z = gamma[expand] * z
        return z + beta[expand] if center else z
    return init_fun, apply_fun


# --------------------------------------------------------------------------- elementwise

def elementwise(fun: Callable, **fun_kwargs: Any) -> Layer:
    """A layer without params applying ``fun(inputs, **fun_kwargs)`` (an activation)."""
    def init_fun(rng, input_shape):
        return input_shape, ()

    def apply_fun(params, inputs, **kwargs):
        return fun(inputs, **fun_kwargs)
    return init_fun, apply_fun


Tanh = elementwise(jnp.tanh)
Relu = elementwise(relu)
Exp = elementwise(jnp.exp)
LogSoftmax = elementwise(log_softmax, axis=-1)
Softmax = elementwise(softmax, axis=-1)
Softplus = elementwise(softplus)
Sigmoid = elementwise(sigmoid)
Elu = elementwise(elu)
LeakyRelu = elementwise(leaky_relu)
Selu = elementwise(selu)
Gelu = elementwise(gelu)


# --------------------------------------------------------------------------- pooling

def _window_sizes(inputs: Any, window: tuple, strides: tuple, padding: Any,
                  non_spatial: tuple) -> Any:
    """How many input elements (not padding) each pooling window covers, broadcastable
    against the pooled outputs: ``AvgPool`` divides sums by it."""
    spatial = tuple(d for i, d in enumerate(inputs.shape) if i not in non_spatial)
    if not isinstance(padding, str):
        padding = tuple(p for i, p in enumerate(padding) if i not in non_spatial)
    counts = lax.reduce_window(jnp.ones(spatial, inputs.dtype), 0.0, lax.add, window, strides,
                               padding)
    return jnp.expand_dims(counts, sorted(non_spatial))


def _pooling(name: str, what: str, reducer: Callable, init_val: float,
             average: bool = False) -> Callable:
    """The constructor of a pooling layer reducing windows with ``reducer`` from
    ``init_val`` (``what`` says to what, for the docstring); ``average`` divides by the
    window sizes."""
    def PoolingLayer(window_shape: Sequence[int], strides: Sequence[int] | None = None,
                     padding: Any = "VALID", spec: str | None = None) -> Layer:
        window = _ints(name, "window_shape", window_shape)
        n = len(window) + 2
        spatial_strides = (1,) * len(window) if strides is None else _ints(
            name, "strides", strides, len(window), " (one per entry of window_shape)")
        if spec is None:
            non_spatial = (0, n - 1)
        elif isinstance(spec, str) and len(spec) == n and {"N", "C"} <= set(spec):
            non_spatial = (spec.index("N"), spec.index("C"))
        else:
            raise ValueError(f"stax.{name}: spec must be a layout string of {n} letters with "
                             f"'N' and 'C' (such as 'NHWC'), got {spec!r}")
        padding = _padding(name, padding, n, "one per input axis, the batch and channel "
                           "axes included")
        full_window, full_strides = list(window), list(spatial_strides)
        for i in sorted(non_spatial):
            full_window.insert(i, 1)
            full_strides.insert(i, 1)
        full_window, full_strides = tuple(full_window), tuple(full_strides)

        def init_fun(rng, input_shape):
            input_shape = _input_shape(name, input_shape, n, what=f" (a batch axis, "
                                       f"{len(window)} spatial axes and a channel axis)")
            pads = padding if not isinstance(padding, str) else lax.padtype_to_pads(
                input_shape, full_window, full_strides, padding)
            return tuple(lax.reduce_window_shape_tuple(input_shape, full_window, full_strides,
                                                       pads, (1,) * n, (1,) * n)), ()

        def apply_fun(params, inputs, **kwargs):
            if jnp.ndim(inputs) != n:
                raise ValueError(f"stax.{name}: inputs must have {n} dimensions, got shape "
                                 f"{jnp.shape(inputs)}")
            out = lax.reduce_window(inputs, init_val, reducer, full_window, full_strides,
                                    padding)
            if average:
                out = out / _window_sizes(inputs, window, spatial_strides, padding, non_spatial)
            return out
        return init_fun, apply_fun

    PoolingLayer.__name__ = PoolingLayer.__qualname__ = name
    PoolingLayer.__doc__ = (
        f"A pooling layer: the {what} of each "
        f"``window_shape`` window of the spatial axes, moved by ``strides``.\n\n"
        f"Inputs are NHWC-like (batch first, channels last) unless ``spec`` names the "
        f"layout (``'NCHW'``); ``padding`` is 'VALID', 'SAME', 'SAME_LOWER' or a (low, "
        f"high) pair per input axis." + ("\nPadding does not count in the mean." if average
                                         else ""))
    return PoolingLayer


MaxPool = _pooling("MaxPool", "maximum", lax.max, -math.inf)
SumPool = _pooling("SumPool", "sum", lax.add, 0.0)
AvgPool = _pooling("AvgPool", "mean", lax.add, 0.0, average=True)


# --------------------------------------------------------------------------- shapes and fans

def _flatten() -> Layer:
    def init_fun(rng, input_shape):
        input_shape = _input_shape("Flatten", input_shape, min_ndim=1,
                                   what=" (the first one is the batch)")
        return (input_shape[0], math.prod(input_shape[1:])), ()

    def apply_fun(params, inputs, **kwargs):
        return jnp.reshape(inputs, (jnp.shape(inputs)[0], -1))
    return init_fun, apply_fun


Flatten = _flatten()  # all axes but the first (the batch) into one
Identity = elementwise(lambda x: x)


def FanOut(num: int) -> Layer:
    """``num`` copies of the input, for ``parallel`` branches."""
    num = operator.index(num)

    def init_fun(rng, input_shape):
        return [input_shape] * num, ()

    def apply_fun(params, inputs, **kwargs):
        return [inputs] * num
    return init_fun, apply_fun


def _fan_in_sum() -> Layer:
    def init_fun(rng, input_shape):
        shapes = _shapes("FanInSum", input_shape)
        if not shapes:
            raise ValueError("stax.FanInSum: input_shape must hold at least one shape")
        return shapes[0], ()

    def apply_fun(params, inputs, **kwargs):
        return functools.reduce(operator.add, inputs)
    return init_fun, apply_fun


FanInSum = _fan_in_sum()  # the sum of a list of inputs (residual connections)


def FanInConcat(axis: int = -1) -> Layer:
    """The concatenation of a list of inputs along ``axis``."""
    axis = operator.index(axis)

    def init_fun(rng, input_shape):
        shapes = _shapes("FanInConcat", input_shape)
        if not shapes:
            raise ValueError("stax.FanInConcat: input_shape must hold at least one shape")
        first = shapes[0]
        if not -len(first) <= axis < len(first):
            raise ValueError(f"stax.FanInConcat: axis {axis} is out of range for inputs of "
                             f"rank {len(first)}")
        ax = axis % len(first)
        rest = [s[:ax] + s[ax + 1:] for s in shapes]
        if any(len(s) != len(first) for s in shapes) or any(r != rest[0] for r in rest):
            raise ValueError(f"stax.FanInConcat: input_shape {input_shape!r} must agree on "
                             f"every axis but {axis}")
        return first[:ax] + (sum(s[ax] for s in shapes),) + first[ax + 1:], ()

    def apply_fun(params, inputs, **kwargs):
        return jnp.concatenate(inputs, axis)
    return init_fun, apply_fun


def Dropout(rate: float, mode: str = "train") -> Layer:
    """Dropout, as stax does it: ``rate`` is the probability of **keeping** an input.

    In ``mode='train'``, each input is kept with probability ``rate`` and scaled by
    ``1 / rate`` (so the mean is unchanged), the others are zeroed; the key comes from
    ``apply_fun(params, inputs, rng=key)``. Any other ``mode`` is the identity.
    """
    if isinstance(rate, numbers.Real) and not 0 < rate <= 1:
        raise ValueError(f"stax.Dropout: rate (the probability of keeping an input) must be in "
                         f"(0, 1], got {rate!r}")

    def init_fun(rng, input_shape):
        return input_shape, ()

    def apply_fun(params, inputs, rng=None, **kwargs):
        if mode != "train":
            return inputs
        if rng is None:
            raise ValueError("stax.Dropout: apply_fun needs a PRNG key in train mode: call "
                             "apply_fun(params, inputs, rng=key) with a key from "
                             "fungrad.random.PRNGKey (serial and parallel pass theirs on)")
        keep = random.bernoulli(rng, rate, jnp.shape(inputs))
        return jnp.where(keep, inputs / rate, 0)
    return init_fun, apply_fun


# --------------------------------------------------------------------------- combinators

def serial(*layers: Layer) -> Layer:
    """The layers one after the other; params are a list, one entry per layer.

    ``init_fun`` splits its key once per layer (``rng, layer_rng = split(rng)``);
    ``apply_fun`` splits ``rng=``, when given, into one key per layer.
    """
    init_funs, apply_funs = _layers("serial", layers)

    def init_fun(rng, input_shape):
        params = []
        for init in init_funs:
            rng, layer_rng = random.split(rng)
            input_shape, layer_params = init(layer_rng, input_shape)
            params.append(layer_params)
        return input_shape, params

    def apply_fun(params, inputs, rng=None, **kwargs):
        if len(params) != len(apply_funs):
            raise ValueError(f"stax.serial: params hold {len(params)} entries for "
                             f"{len(apply_funs)} layers")
        rngs = random.split(rng, len(apply_funs)) if rng is not None else [None] * len(params)
        for apply, layer_params, layer_rng in zip(apply_funs, params, rngs):
            inputs = apply(layer_params, inputs, rng=layer_rng, **kwargs)
        return inputs
    return init_fun, apply_fun


def parallel(*layers: Layer) -> Layer:
    """The layers side by side: layer ``i`` takes input ``i`` of a list (``FanOut``
    makes one) and gives output ``i``; params are a tuple, one entry per layer."""
    init_funs, apply_funs = _layers("parallel", layers)
    n = len(layers)

    def init_fun(rng, input_shape):
        shapes = _shapes("parallel", input_shape, n)
        rngs = random.split(rng, n)
        pairs = [init(r, s) for init, r, s in zip(init_funs, rngs, shapes)]
        return tuple(s for s, _ in pairs), tuple(p for _, p in pairs)

    def apply_fun(params, inputs, rng=None, **kwargs):
        if len(params) != n or len(inputs) != n:
            raise ValueError(f"stax.parallel: {n} layers need {n} params and {n} inputs, got "
                             f"{len(params)} and {len(inputs)}")
        rngs = random.split(rng, n) if rng is not None else [None] * n
        return [apply(p, x, rng=r, **kwargs)
                for apply, p, x, r in zip(apply_funs, params, inputs, rngs)]
    return init_fun, apply_fun


def shape_dependent(make_layer: Callable[[Shape], Layer]) -> Layer:
    """A layer built by ``make_layer(input_shape)`` once the input shape is known (at
    ``init_fun`` from its argument, at ``apply_fun`` from the inputs')."""
    def init_fun(rng, input_shape):
        return make_layer(input_shape)[0](rng, input_shape)

    def apply_fun(params, inputs, **kwargs):
        return make_layer(inputs.shape)[1](params, inputs, **kwargs)
    return init_fun, apply_fun
