"""optax's losses (``optax.losses``): the ones ``fungrad.nn`` defines, and the rest.

Names, arguments, defaults and numerics follow optax. The cross entropies, ``smooth_labels``
and ``kl_divergence`` are ``fungrad.nn``'s own (one implementation, with optax's arguments);
where ``fungrad.nn`` computes what optax does with fewer options (``squared_error``,
``huber_loss``, ``sigmoid_binary_cross_entropy``), the functions here add optax's input
checks and casts around it.
"""
from __future__ import annotations

import warnings
from typing import Any

import fungrad.numpy as jnp
from fungrad import lax, nn
from fungrad.nn.losses import (check_floating, kl_divergence, smooth_labels,
                               softmax_cross_entropy, softmax_cross_entropy_with_integer_labels)
from fungrad.transforms.custom_derivatives import custom_jvp

__all__ = [
    # classification
    "softmax_cross_entropy", "softmax_cross_entropy_with_integer_labels",
    "safe_softmax_cross_entropy", "sigmoid_binary_cross_entropy", "sigmoid_focal_loss",
    "poly_loss_cross_entropy", "hinge_loss", "multiclass_hinge_loss", "perceptron_loss",
    "multiclass_perceptron_loss", "kl_divergence", "kl_divergence_with_log_targets",
    "generalized_kl_divergence", "convex_kl_divergence", "ctc_loss",
    "ctc_loss_with_forward_probs",
    # smoothing
    "smooth_labels",
    # regression
    "l2_loss", "squared_error", "huber_loss", "log_cosh", "cosine_similarity",
    "cosine_distance",
    # self-supervised
    "ntxent", "triplet_margin_loss",
    # segmentation
    "dice_loss", "binary_dice_loss", "multiclass_generalized_dice_loss",
]

_Axis = int | tuple[int, ...] | None


def _check_shapes_equal(a: Any, b: Any) -> None:
    if jnp.shape(a) != jnp.shape(b):
        raise ValueError(f"Shape mismatch: got {jnp.shape(a)} and {jnp.shape(b)}.")


def _check_rank(x: Any, rank: int) -> None:
    if jnp.ndim(x) != rank:
        raise ValueError(f"Expected the input to have rank {rank}, got {jnp.ndim(x)} instead")


# ----------------------------------------------------------------------------- classification

def sigmoid_binary_cross_entropy(logits: Any, labels: Any) -> Any:
    """Elementwise sigmoid cross entropy; ``labels`` are cast to the logits' dtype."""
    check_floating("sigmoid_binary_cross_entropy", "logits", logits)
    return nn.sigmoid_binary_cross_entropy(logits, jnp.astype(labels, jnp.result_type(logits)))


def sigmoid_focal_loss(logits: Any, labels: Any, *, alpha: Any = None, gamma: Any = 2.0) -> Any:
    """Focal loss ``-alpha_t (1 - p_t)^gamma log(p_t)`` elementwise, ``(1 - p_t)^gamma``
    computed in log space; no ``alpha`` weighting when ``alpha`` is None."""
    check_floating("sigmoid_focal_loss", "logits", logits)
    labels = jnp.astype(labels, jnp.result_type(logits))
    ce_loss = sigmoid_binary_cross_entropy(logits, labels)
    log_p, log_q = nn.log_sigmoid(logits), nn.log_sigmoid(-logits)
    log_one_minus_p_t = nn.logsumexp(jnp.stack([log_p, log_q], axis=-1), axis=-1,
                                     b=jnp.stack([1 - labels, labels], axis=-1))
    loss = ce_loss * jnp.exp(gamma * log_one_minus_p_t)
    if alpha is None:
        return loss
    return (alpha * labels + (1.0 - alpha) * (1.0 - labels)) * loss


@custom_jvp
def _weighted_logsoftmax(x: Any, weights: Any) -> Any:
    """``weights * log_softmax(x)``, 0 where ``weights`` is 0 (even where ``x`` is -inf)."""
    log_softmax_x = nn.log_softmax(x, axis=-1)
    return jnp.where(weights != 0.0, weights * log_softmax_x, jnp.zeros_like(log_softmax_x))


@_weighted_logsoftmax.defjvp
def _weighted_logsoftmax_jvp(primals: tuple, tangents: tuple) -> tuple:
    (x, weights), (x_dot, weights_dot) = primals, tangents
    log_softmax_x = nn.log_softmax(x, axis=-1)
    result = jnp.where(weights != 0.0, weights * log_softmax_x, jnp.zeros_like(log_softmax_x))
    x_dot_mean = jnp.sum(x_dot * nn.softmax(x, axis=-1), axis=-1, keepdims=True)
    return result, weights * x_dot - weights * x_dot_mean + weights_dot * log_softmax_x


def safe_softmax_cross_entropy(logits: Any, labels: Any) -> Any:
    """Softmax cross entropy over the last axis taking ``0 * log(0)`` as 0: a label of 0
    against a logit of -inf adds nothing (and no NaN to the gradient)."""
    check_floating("safe_softmax_cross_entropy", "logits", logits)
    return -jnp.sum(_weighted_logsoftmax(logits, labels), axis=-1)


def poly_loss_cross_entropy(logits: Any, labels: Any, *, epsilon: Any = 2.0, axis: _Axis = -1,
                            where: Any = None) -> Any:
    """PolyLoss: cross entropy plus ``epsilon * (1 - p_t)``, ``p_t`` the probability the
    softmax gives the labels."""
    check_floating("poly_loss_cross_entropy", "logits", logits)
    check_floating("poly_loss_cross_entropy", "labels", labels)
    p = nn.softmax(logits, axis=axis, where=where)
    one_minus_pt = jnp.sum(labels * (1 - p), axis=axis, where=where)
    cross_entropy = softmax_cross_entropy(logits, labels, axis=axis, where=where)
    return cross_entropy + epsilon * one_minus_pt


def hinge_loss(predictor_outputs: Any, targets: Any) -> Any:
    """Binary hinge loss ``max(0, 1 - outputs * targets)``, targets in {-1, 1}."""
    return jnp.maximum(0, 1 - predictor_outputs * targets)


def perceptron_loss(predictor_outputs: Any, targets: Any) -> Any:
    """Binary perceptron loss ``max(0, -outputs * targets)``, targets in {-1, 1}."""
    _check_shapes_equal(predictor_outputs, targets)
    return jnp.maximum(0, -predictor_outputs * targets)


_dot_last_dim = jnp.vectorize(jnp.dot, signature="(n),(n)->()")


def multiclass_hinge_loss(scores: Any, labels: Any) -> Any:
    """Multiclass hinge loss ``max_k(scores_k + [k != label]) - scores_label``."""
    one_hot_labels = nn.one_hot(labels, jnp.shape(scores)[-1])
    return (jnp.max(scores + 1.0 - one_hot_labels, axis=-1)
            - _dot_last_dim(scores, one_hot_labels))


def multiclass_perceptron_loss(scores: Any, labels: Any) -> Any:
    """Multiclass perceptron loss ``max_k scores_k - scores_label``."""
    one_hot_labels = nn.one_hot(labels, jnp.shape(scores)[-1])
    return jnp.max(scores, axis=-1) - _dot_last_dim(scores, one_hot_labels)


def kl_divergence_with_log_targets(log_predictions: Any, log_targets: Any, axis: _Axis = -1,
                                   where: Any = None) -> Any:
    """``KL(exp(log_targets) || exp(log_predictions))`` along ``axis``."""
    check_floating("kl_divergence_with_log_targets", "log_predictions", log_predictions)
    check_floating("kl_divergence_with_log_targets", "log_targets", log_targets)
    loss = jnp.exp(log_targets) * (log_targets - log_predictions)
    return jnp.sum(loss, axis=axis, where=where)


def generalized_kl_divergence(log_predictions: Any, targets: Any, axis: _Axis = -1,
                              where: Any = None) -> Any:
    """KL divergence of unnormalised distributions: ``KL + sum(predictions - targets)``."""
    kl = kl_divergence(log_predictions, targets, axis=axis, where=where)
    return kl + jnp.sum(jnp.exp(log_predictions) - targets, axis=axis, where=where)


def convex_kl_divergence(log_predictions: Any, targets: Any, axis: _Axis = -1,
                         where: Any = None) -> Any:
    """Deprecated (as in optax): ``generalized_kl_divergence``."""
    warnings.warn("The function convex_kl_divergence is deprecated. Please use "
                  "generalized_kl_divergence instead.", DeprecationWarning, stacklevel=2)
    return generalized_kl_divergence(log_predictions, targets, axis=axis, where=where)


def ctc_loss_with_forward_probs(logits: Any, logit_paddings: Any, labels: Any,
                                label_paddings: Any, *, blank_id: int = 0,
                                log_epsilon: Any = -1e5) -> tuple[Any, Any, Any]:
    """CTC loss of (B, T, K) ``logits`` against right-padded (B, N) ``labels`` (paddings
    are 1.0 where padded), with the log forward probabilities of blank and label states.

    Returns ``(loss, logalpha_blank, logalpha_nonblank)``: (B,), (T, B, N+1), (T, B, N).
    """
    _check_rank(logits, 3)
    _check_rank(labels, 2)
    _check_shapes_equal(labels, label_paddings)
    _check_shapes_equal(logits[..., 0], logit_paddings)
    batchsize, _, num_classes = logits.shape
    batchsize_of_labels, maxlabellen = labels.shape
    if batchsize_of_labels != batchsize:
        raise ValueError(f"Expected `labels` to have batch size {batchsize}, got "
                         f"{batchsize_of_labels}.")

    logprobs = nn.log_softmax(logits)
    labellens = maxlabellen - jnp.sum(label_paddings, axis=1).astype(jnp.int32)

    # repeat[b, n] == 1.0 when label[b, n] == label[b, n+1].
    repeat = (labels[:, :-1] == labels[:, 1:]).astype(jnp.float32)
    repeat = jnp.pad(repeat, ((0, 0), (0, 1)))

    logprobs_phi = jnp.transpose(logprobs[:, :, blank_id:blank_id + 1], (1, 0, 2))  # [T, B, 1]
    one_hot = nn.one_hot(labels, num_classes=num_classes)  # [B, N, K]
    logprobs_emit = jnp.transpose(jnp.einsum("btk,bnk->btn", logprobs, one_hot),
                                  (1, 0, 2))  # [T, B, N]

    logalpha_phi_init = (jnp.ones((batchsize, maxlabellen + 1)) * log_epsilon).at[:, 0].set(0.0)
    logalpha_emit_init = jnp.ones((batchsize, maxlabellen)) * log_epsilon

    def update_phi_score(phi, added_score):
        # phi[:, 1:] plus added_score, in log space.
        return jnp.concatenate([phi[:, :1], jnp.logaddexp(phi[:, 1:], added_score)], axis=-1)

    def loop_body(prev, x):
        prev_phi, prev_emit = prev
        # emit-to-phi epsilon transition, except if the next label is a repetition
        prev_phi_orig = prev_phi
        prev_phi = update_phi_score(prev_phi, prev_emit + log_epsilon * repeat)
        logprob_emit, logprob_phi, pad = x
        # phi-to-emit transition
        next_emit = jnp.logaddexp(prev_phi[:, :-1] + logprob_emit, prev_emit + logprob_emit)
        # self-loop transition
        next_phi = prev_phi + logprob_phi
        # emit-to-phi blank transition only when the next label is a repetition
        next_phi = update_phi_score(next_phi,
                                    prev_emit + logprob_phi + log_epsilon * (1.0 - repeat))
        pad = pad.reshape((batchsize, 1))
        next_emit = pad * prev_emit + (1.0 - pad) * next_emit
        next_phi = pad * prev_phi_orig + (1.0 - pad) * next_phi
        return (next_phi, next_emit), (next_phi, next_emit)

    xs = (logprobs_emit, logprobs_phi, jnp.transpose(logit_paddings, (1, 0)))
    _, (logalpha_phi, logalpha_emit) = lax.scan(
        loop_body, (logalpha_phi_init, logalpha_emit_init), xs)

    # the last row gets the last epsilon transition
    logalpha_phi_last = update_phi_score(logalpha_phi[-1], logalpha_emit[-1])
    logalpha_phi = logalpha_phi.at[-1].set(logalpha_phi_last)

    one_hot_lens = nn.one_hot(labellens, num_classes=maxlabellen + 1)  # [B, N+1]
    per_seq_loss = -jnp.einsum("bn,bn->b", logalpha_phi_last, one_hot_lens)
    return per_seq_loss, logalpha_phi, logalpha_emit


def ctc_loss(logits: Any, logit_paddings: Any, labels: Any, label_paddings: Any, *,
             blank_id: int = 0, log_epsilon: Any = -1e5) -> Any:
    """CTC loss per sequence, (B,): see ``ctc_loss_with_forward_probs``."""
    per_seq_loss, _, _ = ctc_loss_with_forward_probs(
        logits, logit_paddings, labels, label_paddings, blank_id=blank_id,
        log_epsilon=log_epsilon)
    return per_seq_loss


# ----------------------------------------------------------------------------- smoothing

# ----------------------------------------------------------------------------- regression

def squared_error(predictions: Any, targets: Any = None) -> Any:
    """Elementwise ``(predictions - targets)^2``; ``targets`` must have the same shape."""
    check_floating("squared_error", "predictions", predictions)
    if targets is not None:
        _check_shapes_equal(predictions, targets)
    return nn.squared_error(predictions, targets)


def l2_loss(predictions: Any, targets: Any = None) -> Any:
    """Half the squared error, elementwise."""
    return 0.5 * squared_error(jnp.asarray(predictions), targets)


def huber_loss(predictions: Any, targets: Any = None, *, delta: Any = 1.0) -> Any:
    """Elementwise Huber loss: quadratic within ``delta``, linear beyond."""
    check_floating("huber_loss", "predictions", predictions)
    return nn.huber_loss(predictions, targets, delta)


def log_cosh(predictions: Any, targets: Any = None) -> Any:
    """Elementwise ``log(cosh(predictions - targets))``, stable for large errors."""
    check_floating("log_cosh", "predictions", predictions)
    errors = predictions if targets is None else predictions - targets
    return jnp.logaddexp(errors, -errors) - jnp.astype(jnp.log(2.0), jnp.result_type(errors))


def cosine_similarity(predictions: Any, targets: Any, *, epsilon: Any = 0.0, axis: _Axis = -1,
                      where: Any = None) -> Any:
    """Cosine similarity along ``axis``, the squared norms clipped below at ``epsilon``."""
    check_floating("cosine_similarity", "predictions", predictions)
    check_floating("cosine_similarity", "targets", targets)

    def unit(x):
        norm2 = jnp.sum(jnp.square(x), axis=axis, where=where, keepdims=True)
        return x / jnp.sqrt(jnp.clip(norm2, epsilon))
    return jnp.sum(unit(predictions) * unit(targets), axis=axis, where=where)


def cosine_distance(predictions: Any, targets: Any, *, epsilon: Any = 0.0, axis: _Axis = -1,
                    where: Any = None) -> Any:
    """``1 - cosine_similarity``."""
    return 1.0 - cosine_similarity(predictions, targets, epsilon=epsilon, axis=axis,
                                   where=where)


# ----------------------------------------------------------------------------- self-supervised

def ntxent(embeddings: Any, labels: Any, temperature: Any = 0.07) -> Any:
    """Normalized temperature-scaled cross entropy (SimCLR's contrastive loss) of
    (batch, dim) ``embeddings``: pairs with equal ``labels`` are positives."""
    check_floating("ntxent", "embeddings", embeddings)
    if labels.shape[0] != embeddings.shape[0]:
        raise ValueError("Labels and embeddings must have the same leading dimension, found "
                         f"{labels.shape[0]} for labels and {embeddings.shape[0]} for "
                         "embeddings.")
    xcs = cosine_similarity(embeddings[None, :, :], embeddings[:, None, :],
                            epsilon=jnp.finfo(embeddings.dtype).eps) / temperature
    same = labels[:, None] == labels[None, :]
    diffs = ~same
    matches = same & ~jnp.eye(same.shape[0], dtype=bool)  # a vector is not its own positive
    xcs_diffs = jnp.where(diffs, xcs, -jnp.inf)
    xcs_matches = jnp.where(matches, xcs, -jnp.inf)
    # shift by the row maximum for stability
    xcs_max = lax.stop_gradient(
        jnp.max(jnp.concatenate((xcs_diffs, xcs_matches), axis=-1), axis=1, keepdims=True))
    xcs_shift_diffs = xcs_diffs - xcs_max
    xcs_shift_matches = xcs_matches - xcs_max
    denom = jnp.sum(jnp.exp(xcs_shift_diffs), axis=1, keepdims=True) + jnp.exp(xcs_shift_matches)
    log_softm = xcs_shift_matches - jnp.log(denom)
    return -jnp.where(matches, log_softm, 0.0).sum() / matches.sum()


def triplet_margin_loss(anchors: Any, positives: Any, negatives: Any, axis: int = -1,
                        norm_degree: Any = 2, margin: Any = 1.0, eps: Any = 1e-6) -> Any:
    """``max(d(anchor, positive) - d(anchor, negative) + margin, 0)``, ``d`` the
    ``norm_degree``-norm along ``axis`` (``eps`` added inside the root)."""
    for x in (anchors, positives, negatives):
        check_floating("triplet_margin_loss", "x", x)

    def distance(other):
        return jnp.power(jnp.sum(jnp.power(anchors - other, norm_degree), axis) + eps,
                         1 / norm_degree)
    return jnp.maximum(distance(positives) - distance(negatives) + margin, 0)


# ----------------------------------------------------------------------------- segmentation

def _reduce_loss(loss: Any, reduction: str, axis: int | None = None) -> Any:
    if reduction == "mean":
        return jnp.mean(loss, axis=axis)
    if reduction == "sum":
        return jnp.sum(loss, axis=axis)
    if reduction == "none":
        return loss
    raise ValueError(f"Unsupported reduction: {reduction}")


def dice_loss(predictions: Any, targets: Any, *, class_weights: Any = None, smooth: Any = 1.,
              alpha: Any = 0.5, beta: Any = 0.5, apply_softmax: bool = True,
              reduction: str = "mean", ignore_background: bool = False,
              axis: Any = None) -> Any:
    """Generalised (Tversky) Dice loss of (batch, ..., classes) predictions against
    targets, per class summed over ``axis`` (the spatial axes by default), then reduced
    over the classes. Logits go through a softmax (a sigmoid for one class) unless
    ``apply_softmax`` is False, when they must be probabilities."""
    if predictions.ndim == targets.ndim - 1:
        predictions = predictions[..., None]
    if targets.ndim == predictions.ndim - 1:
        targets = targets[..., None]
    _check_shapes_equal(predictions, targets)
    probs = predictions
    if apply_softmax:
        probs = (nn.sigmoid(predictions) if predictions.shape[-1] == 1
                 else nn.softmax(predictions, axis=-1))
    else:
        pred_sums = jnp.sum(predictions, axis=-1)
        if not jnp.allclose(pred_sums, 1.0, rtol=1e-5):
            raise ValueError("When apply_softmax=False, predictions must be valid probability "
                             "distributions that sum to 1 along the class axis. Found sum "
                             f"range: [{jnp.min(pred_sums):.6f}, {jnp.max(pred_sums):.6f}]")
    axis = tuple(range(1, probs.ndim - 1)) if axis is None else axis
    intersection = jnp.sum(probs * targets, axis=axis)
    pred_sum = jnp.sum(probs, axis=axis)
    target_sum = jnp.sum(targets, axis=axis)
    numerator = intersection + smooth
    denominator = (intersection + alpha * (pred_sum - intersection)
                   + beta * (target_sum - intersection) + smooth)
    loss = 1.0 - numerator / denominator  # [..., classes]
    if class_weights is not None:
        _check_rank(class_weights, 1)
        loss = loss * class_weights
    if ignore_background and probs.shape[-1] > 1:
        loss = loss[..., 1:]
    return _reduce_loss(loss, reduction, axis=-1)


def multiclass_generalized_dice_loss(predictions: Any, targets: Any, *, smooth: Any = 1.,
                                     apply_softmax: bool = True,
                                     ignore_background: bool = False) -> Any:
    """Dice loss with each class weighted by its inverse squared frequency in ``targets``."""
    _check_shapes_equal(predictions, targets)
    class_frequencies = jnp.sum(targets, axis=tuple(range(targets.ndim - 1)))
    class_weights = 1.0 / (class_frequencies ** 2 + 1e-7)
    class_weights = class_weights / jnp.sum(class_weights) * len(class_weights)
    return jnp.mean(dice_loss(predictions, targets, class_weights=class_weights, smooth=smooth,
                              apply_softmax=apply_softmax, reduction="none",
                              ignore_background=ignore_background))


def binary_dice_loss(predictions: Any, targets: Any, *, smooth: Any = 1.,
                     apply_sigmoid: bool = True) -> Any:
    """Dice loss of one class, from logits through a sigmoid unless ``apply_sigmoid`` is
    False; a channel axis is added where the last axis is not one."""
    if predictions.ndim == targets.ndim and predictions.shape[-1] != 1:
        predictions = predictions[..., None]
        targets = targets[..., None]
    return dice_loss(predictions, targets, smooth=smooth, apply_softmax=apply_sigmoid,
                     reduction="mean")
