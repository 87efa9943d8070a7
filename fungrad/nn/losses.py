"""Losses, numerically stable at extreme logits (±1e4) in value and gradient.

Per-example losses follow optax; ``cross_entropy`` adds what a training loop needs:
integer or soft labels, label smoothing, an ignore index or mask, and reduction.
"""
from __future__ import annotations

from typing import Any

import numpy as np

import fungrad.numpy as jnp
from fungrad.nn.functions import log_sigmoid, log_softmax, one_hot


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


def _check_integer_labels(fname: str, logits: Any, labels: Any, axis: int) -> None:
    """Integer ``labels`` must have the shape of ``logits`` without ``axis`` (or broadcast
    to it, as optax): a ValueError naming the loss and both shapes otherwise."""
    dtype = jnp.asarray(labels).dtype
    if not jnp.issubdtype(dtype, jnp.integer):
        raise TypeError(f"{fname}: labels must be integer class indices, got dtype {dtype} "
                        "(use softmax_cross_entropy for one-hot or soft labels)")
    ys, ls = np.shape(labels), np.shape(logits)
    if not -len(ls) <= axis < len(ls):
        raise ValueError(f"{fname}: axis {axis} is out of bounds for logits of shape {ls}")
    expected = ls[:axis % len(ls)] + ls[axis % len(ls) + 1:]
    try:
        fits = len(ys) == len(expected) and np.broadcast_shapes(ys, expected) == expected
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"{fname}: labels of shape {ys} do not match logits of shape {ls}: "
                         f"integer labels must have shape {expected} (the logits' shape "
                         f"without axis {axis})")


def softmax_cross_entropy(logits: Any, labels: Any, axis: int = -1) -> Any:
    """Cross entropy against probability ``labels`` (one-hot or soft), per example."""
    _check_broadcast("softmax_cross_entropy", logits, labels)
    return -jnp.sum(labels * log_softmax(logits, axis=axis), axis=axis)


def softmax_cross_entropy_with_integer_labels(logits: Any, labels: Any, axis: int = -1) -> Any:
    """Cross entropy against integer class ``labels``, per example."""
    _check_integer_labels("softmax_cross_entropy_with_integer_labels", logits, labels, axis)
    logp = log_softmax(logits, axis=axis)
    picked = jnp.take_along_axis(logp, jnp.expand_dims(labels, axis), axis=axis)
    return -jnp.squeeze(picked, axis)


def smooth_labels(labels: Any, alpha: float) -> Any:
    """``(1 - alpha) * labels + alpha / num_classes``."""
    return (1.0 - alpha) * labels + alpha / labels.shape[-1]


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
        _check_integer_labels("cross_entropy", logits, labels, -1)
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


def kl_divergence(log_predictions: Any, targets: Any, axis: int = -1) -> Any:
    """``KL(targets || exp(log_predictions))`` per example (as optax); 0 where targets are 0."""
    _check_broadcast("kl_divergence", log_predictions, targets, ("log_predictions", "targets"))
    safe = jnp.where(targets > 0, targets, 1.0)
    terms = jnp.where(targets > 0, targets * (jnp.log(safe) - log_predictions), 0.0)
    return jnp.sum(terms, axis=axis)
