"""Losses, numerically stable at extreme logits (±1e4) in value and gradient.

Per-example losses follow optax, arguments and numerics (``fungrad.optim.losses``, optax's
whole set, takes these from here); ``cross_entropy`` adds what a training loop needs: integer
or soft labels, label smoothing, an ignore index or mask, and reduction.
"""
from __future__ import annotations

from typing import Any

import numpy as np

import fungrad.numpy as jnp
from fungrad._core.util import canonicalize_axis
from fungrad.nn.functions import log_sigmoid, log_softmax, one_hot

Axis = int | tuple[int, ...] | None


def _check_broadcast(fname: str, logits: Any, labels: Any,
                     names: tuple[str, str] = ("logits", "labels")) -> None:
    """``labels`` must have the shape of ``logits`` or broadcast against it (as optax):
    a TypeError naming the loss and both shapes rather than one from an op inside."""
    ys, ls = np.shape(labels), np.shape(logits)
    if ys == ls:
        return
    try:
        np.broadcast_shapes(ys, ls)
    except ValueError:
        raise TypeError(f"{fname}: {names[1]} of shape {ys} do not match {names[0]} of shape {ls} "
                        f"(they must have the same shape or broadcast against it)") from None


def check_floating(fname: str, name: str, x: Any) -> None:
    """optax's input check: a TypeError naming the loss unless ``x`` is floating point."""
    dtype = jnp.result_type(x)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"{fname}: {name} must have a floating-point dtype, got {dtype}")


def _check_integer_labels(fname: str, logits: Any, labels: Any,
                          class_axes: tuple[int, ...]) -> None:
    """Integer ``labels`` must have the shape of ``logits`` without ``class_axes`` (or
    broadcast to it, as optax): a ValueError naming the loss and both shapes otherwise."""
    dtype = jnp.result_type(labels)
    if not jnp.issubdtype(dtype, jnp.integer):
        raise TypeError(f"{fname}: labels must be integer class indices, got dtype {dtype} "
                        "(use softmax_cross_entropy for one-hot or soft labels)")
    ys, ls = np.shape(labels), np.shape(logits)
    expected = tuple(d for i, d in enumerate(ls) if i not in class_axes)
    try:
        fits = len(ys) == len(expected) and np.broadcast_shapes(ys, expected) == expected
    except ValueError:
        fits = False
    if not fits:
        axes = class_axes[0] if len(class_axes) == 1 else class_axes
        raise ValueError(f"{fname}: labels of shape {ys} do not match logits of shape {ls}: "
                         f"integer labels must have shape {expected} (the logits' shape "
                         f"without axis {axes})")


def _expand_where(where: Any, ndim: int, axis: Axis) -> Any:
    """A per-example ``where`` (one dimension short of the logits) gains the class axis."""
    if where is not None and jnp.ndim(where) != ndim:
        return jnp.expand_dims(where, axis)
    return where


def softmax_cross_entropy(logits: Any, labels: Any, axis: Axis = -1, where: Any = None) -> Any:
    """Cross entropy against probability ``labels`` (one-hot or soft) along ``axis``, per
    example, over the classes where ``where`` is True (``where`` has the logits' shape or
    lacks the class axis), as ``optax.softmax_cross_entropy``."""
    fname = "softmax_cross_entropy"
    check_floating(fname, "logits", logits)
    _check_broadcast(fname, logits, labels)
    where = _expand_where(where, jnp.ndim(logits), axis)
    return -jnp.sum(labels * log_softmax(logits, axis, where), axis, where=where)


def _flatten_class_axes(x: Any, batch_axes: tuple[int, ...], class_axes: tuple[int, ...]) -> Any:
    """``x`` with ``class_axes`` moved to the end (in order) and flattened into one."""
    x = jnp.transpose(x, batch_axes + class_axes)
    return jnp.reshape(x, x.shape[:len(batch_axes)] + (-1,))


def softmax_cross_entropy_with_integer_labels(logits: Any, labels: Any, axis: Axis = -1,
                                              where: Any = None) -> Any:
    """Cross entropy against integer class ``labels`` along ``axis``, per example, as
    ``optax.softmax_cross_entropy_with_integer_labels``: with a tuple of axes a label is a
    flat index into the slice those axes span; 0 where ``where`` leaves no class.

    The label's entry of ``log_softmax(logits)``: the GPU compiler fuses that pattern (the
    row's max, sum and the label's gather) into one kernel per row block."""
    fname = "softmax_cross_entropy_with_integer_labels"
    check_floating(fname, "logits", logits)
    if not isinstance(axis, (int, tuple)):
        raise ValueError(f"{fname}: axis must be an int or a tuple of ints, got "
                         f"{type(axis).__name__}")
    ndim = jnp.ndim(logits)
    class_axes = tuple(canonicalize_axis(a, ndim, fname)
                       for a in (axis if isinstance(axis, tuple) else (axis,)))
    _check_integer_labels(fname, logits, labels, class_axes)
    where = _expand_where(where, ndim, axis)
    if isinstance(axis, tuple):
        batch_axes = tuple(d for d in range(ndim) if d not in class_axes)
        logits = _flatten_class_axes(logits, batch_axes, class_axes)
        if where is not None:
            where = _flatten_class_axes(where, batch_axes, class_axes)
        axis = len(batch_axes)
    else:
        axis = class_axes[0]
    log_probs = log_softmax(logits, axis=axis, where=where)
    out = -jnp.squeeze(jnp.take_along_axis(log_probs, jnp.expand_dims(labels, axis), axis=axis),
                       axis)
    if where is not None:
        out = jnp.where(jnp.any(where, axis), out, 0.0)
    return out


def smooth_labels(labels: Any, alpha: Any, *, axis: Axis = -1, where: Any = None) -> Any:
    """``(1 - alpha) * labels + alpha / num_categories``, the categories along ``axis``
    (those where ``where`` is True), as ``optax.smooth_labels``."""
    check_floating("smooth_labels", "labels", labels)
    if where is None:
        num_categories = jnp.size(labels, axis)
    else:
        num_categories = jnp.sum(where, axis, keepdims=True)
    return (1.0 - alpha) * labels + alpha / num_categories


def _reduce(loss: Any, weights: Any, reduction: str) -> Any:
    if reduction == "none":
        return loss if weights is None else loss * weights
    if reduction == "sum":
        return jnp.sum(loss if weights is None else loss * weights)
    if reduction == "mean":
        if weights is None:
            return jnp.mean(loss)
        return jnp.sum(loss * weights) / jnp.maximum(jnp.sum(weights), 1.0)
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def cross_entropy(logits: Any, labels: Any, *, label_smoothing: float = 0.0,
                  ignore_index: int | None = None, mask: Any = None,
                  reduction: str = "mean") -> Any:
    """Softmax cross entropy over the last axis.

    ``labels`` are integer classes (shape ``logits.shape[:-1]``) or probabilities (same
    shape as ``logits``). Positions equal to ``ignore_index`` or where ``mask`` is False
    do not count; ``"mean"`` averages over the counted positions.

    Examples:
        >>> import fungrad.numpy as jnp
        >>> from fungrad import nn
        >>> nn.cross_entropy(jnp.array([[0.0, 0.0], [5.0, 5.0]]), jnp.array([1, -1]),
        ...                  ignore_index=-1)  # log(2), the ignored row does not count
        Array(0.6931472, dtype=float32)
    """
    integer = jnp.issubdtype(jnp.asarray(labels).dtype, jnp.integer)
    if integer:
        _check_integer_labels("cross_entropy", logits, labels, (jnp.ndim(logits) - 1,))
    else:
        _check_broadcast("cross_entropy", logits, labels)
    weights = None if mask is None else jnp.asarray(mask).astype(logits.dtype)
    if integer:
        if ignore_index is not None:
            keep = (labels != ignore_index).astype(logits.dtype)
            weights = keep if weights is None else weights * keep
            labels = jnp.where(labels == ignore_index, 0, labels)
        if label_smoothing:
            labels = one_hot(labels, logits.shape[-1], dtype=logits.dtype)
        else:
            losses = softmax_cross_entropy_with_integer_labels(logits, labels)
            return _reduce(losses, weights, reduction)
    if label_smoothing:
        labels = smooth_labels(labels, label_smoothing)
    return _reduce(softmax_cross_entropy(logits, labels), weights, reduction)


def sigmoid_binary_cross_entropy(logits: Any, labels: Any) -> Any:
    """Elementwise binary cross entropy from logits (stable: uses ``log_sigmoid``)."""
    _check_broadcast("sigmoid_binary_cross_entropy", logits, labels)
    return -labels * log_sigmoid(logits) - (1.0 - labels) * log_sigmoid(-logits)


def squared_error(predictions: Any, targets: Any | None = None) -> Any:
    """Elementwise ``(predictions - targets)^2``."""
    return jnp.square(predictions - (0.0 if targets is None else targets))


def mse(predictions: Any, targets: Any) -> Any:
    """Mean squared error."""
    return jnp.mean(squared_error(predictions, targets))


def l1_loss(predictions: Any, targets: Any) -> Any:
    """Elementwise absolute error."""
    return jnp.abs(predictions - targets)


def huber_loss(predictions: Any, targets: Any | None = None, delta: float = 1.0) -> Any:
    """Elementwise Huber loss: quadratic within ``delta``, linear beyond (as optax)."""
    err = jnp.abs(predictions - (0.0 if targets is None else targets))
    quadratic = jnp.minimum(err, delta)
    return 0.5 * quadratic ** 2 + delta * (err - quadratic)


def kl_divergence(log_predictions: Any, targets: Any, axis: Axis = -1,
                  where: Any = None) -> Any:
    """``KL(targets || exp(log_predictions))`` along ``axis`` per example, taking
    ``0 * log(0)`` as 0, as ``optax.kl_divergence`` (whose gradient in ``targets`` is NaN
    where a target is 0; this one's is finite there, ``-log_predictions``)."""
    fname = "kl_divergence"
    check_floating(fname, "log_predictions", log_predictions)
    check_floating(fname, "targets", targets)
    _check_broadcast(fname, log_predictions, targets, ("log_predictions", "targets"))
    zero = targets == 0
    log_targets = jnp.log(jnp.where(zero, 1.0, targets))  # no log(0) to poison the gradient
    return jnp.sum(targets * (log_targets - log_predictions), axis=axis, where=where)
