"""fungrad.optim's losses against optax's (optax.losses), on the same inputs: values, dtypes,
weak types, under fungrad.jit, and derivatives for a few."""
import numpy as np
import optax
import pytest

import fungrad
from fungrad import optim
from harness import compare, compare_transforms, rand, x64

RNG = np.random.default_rng(0)
F32 = np.float32


def _probs(shape, dtype=F32):
    """Rows (last axis) of probabilities summing to 1."""
    p = RNG.uniform(0.05, 1.0, shape)
    return (p / p.sum(-1, keepdims=True)).astype(dtype)


def _mask(shape):
    """A boolean mask with at least one True along the last axis."""
    m = RNG.random(shape) > 0.5
    m[..., 0] = True
    return m


def _labels(shape, num_classes):
    return RNG.integers(0, num_classes, shape).astype(np.int32)


def _pm1(shape):
    return np.where(RNG.random(shape) > 0.5, 1.0, -1.0).astype(F32)


def _ctc_args():
    """(B, T, K) logits with the second sequence's last 2 frames padded; (B, N) labels
    with a repeated label and the second sequence's last label padded."""
    logits = rand(RNG, (2, 6, 4))
    logit_paddings = np.array([[0] * 6, [0] * 4 + [1] * 2], F32)
    labels = np.array([[1, 1, 3], [2, 3, 0]], np.int32)
    label_paddings = np.array([[0, 0, 0], [0, 0, 1]], F32)
    return [logits, logit_paddings, labels, label_paddings]


def _segmentation_args(shape=(2, 4, 4, 3)):
    """Logits and one-hot targets, (batch, height, width, classes)."""
    targets = np.eye(shape[-1], dtype=F32)[_labels(shape[:-1], shape[-1])]
    return [rand(RNG, shape), targets]


# (id, the loss given the module (fungrad.optim or optax.losses), its inputs)
CASES = [
    ("softmax_cross_entropy", lambda m: m.softmax_cross_entropy,
     lambda: [rand(RNG, (4, 5)), _probs((4, 5))]),
    ("softmax_cross_entropy_axis0", lambda m: lambda x, y: m.softmax_cross_entropy(x, y, axis=0),
     lambda: [rand(RNG, (4, 5)), _probs((5, 4)).T.copy()]),
    ("softmax_cross_entropy_where", lambda m: lambda x, y, w: m.softmax_cross_entropy(x, y,
                                                                                      where=w),
     lambda: [rand(RNG, (4, 5)), _probs((4, 5)), _mask((4, 5))]),
    ("softmax_cross_entropy_where_rows",
     lambda m: lambda x, y, w: m.softmax_cross_entropy(x, y, where=w),
     lambda: [rand(RNG, (4, 5)), _probs((4, 5)), np.array([True, False, True, True])]),
    ("integer_labels", lambda m: m.softmax_cross_entropy_with_integer_labels,
     lambda: [rand(RNG, (4, 5)), _labels((4,), 5)]),
    ("integer_labels_axis0",
     lambda m: lambda x, y: m.softmax_cross_entropy_with_integer_labels(x, y, axis=0),
     lambda: [rand(RNG, (4, 5)), _labels((5,), 4)]),
    ("integer_labels_axes",
     lambda m: lambda x, y: m.softmax_cross_entropy_with_integer_labels(x, y, axis=(3, 1)),
     lambda: [rand(RNG, (2, 3, 4, 5)), _labels((2, 4), 15)]),
    ("integer_labels_where",
     lambda m: lambda x, y, w: m.softmax_cross_entropy_with_integer_labels(x, y, where=w),
     lambda: [rand(RNG, (4, 5)), _labels((4,), 5), _mask((4, 5))]),
    ("integer_labels_where_rows",
     lambda m: lambda x, y, w: m.softmax_cross_entropy_with_integer_labels(x, y, where=w),
     lambda: [rand(RNG, (4, 5)), _labels((4,), 5), np.array([True, False, True, True])]),
    ("safe_softmax_cross_entropy", lambda m: m.safe_softmax_cross_entropy,
     lambda: [rand(RNG, (4, 5)), _probs((4, 5))]),
    ("safe_softmax_cross_entropy_neg_inf", lambda m: m.safe_softmax_cross_entropy,
     lambda: [np.array([[0.5, -np.inf, 1.0], [2.0, 0.0, -np.inf]], F32),
              np.array([[0.3, 0.0, 0.7], [0.5, 0.5, 0.0]], F32)]),
    ("sigmoid_binary_cross_entropy", lambda m: m.sigmoid_binary_cross_entropy,
     lambda: [rand(RNG, (4, 5)), (RNG.random((4, 5)) > 0.5).astype(F32)]),
    ("sigmoid_binary_cross_entropy_int_labels", lambda m: m.sigmoid_binary_cross_entropy,
     lambda: [rand(RNG, (4, 5)), (RNG.random((4, 5)) > 0.5).astype(np.int32)]),
    ("sigmoid_focal_loss", lambda m: m.sigmoid_focal_loss,
     lambda: [rand(RNG, (4, 5), low=-8, high=8), RNG.random((4, 5)).astype(F32)]),
    ("sigmoid_focal_loss_alpha",
     lambda m: lambda x, y: m.sigmoid_focal_loss(x, y, alpha=0.25, gamma=1.5),
     lambda: [rand(RNG, (4, 5)), (RNG.random((4, 5)) > 0.5).astype(F32)]),
    ("poly_loss_cross_entropy", lambda m: m.poly_loss_cross_entropy,
     lambda: [rand(RNG, (4, 5)), _probs((4, 5))]),
    ("poly_loss_cross_entropy_where",
     lambda m: lambda x, y, w: m.poly_loss_cross_entropy(x, y, epsilon=-1.0, where=w),
     lambda: [rand(RNG, (4, 5)), _probs((4, 5)), _mask((4, 5))]),
    ("smooth_labels", lambda m: lambda y: m.smooth_labels(y, 0.1),
     lambda: [np.eye(5, dtype=F32)[_labels((4,), 5)]]),
    ("smooth_labels_axis0_where", lambda m: lambda y, w: m.smooth_labels(y, 0.2, axis=0, where=w),
     lambda: [_probs((4, 5)), _mask((4, 5))]),
    ("l2_loss", lambda m: m.l2_loss, lambda: [rand(RNG, (4, 5)), rand(RNG, (4, 5))]),
    ("l2_loss_no_targets", lambda m: m.l2_loss, lambda: [rand(RNG, (4, 5))]),
    ("squared_error", lambda m: m.squared_error, lambda: [rand(RNG, (4, 5)), rand(RNG, (4, 5))]),
    ("squared_error_no_targets", lambda m: m.squared_error, lambda: [rand(RNG, (4, 5))]),
    ("huber_loss", lambda m: lambda x, y: m.huber_loss(x, y, delta=0.5),
     lambda: [rand(RNG, (4, 5), low=-3, high=3), rand(RNG, (4, 5))]),
    ("huber_loss_no_targets", lambda m: m.huber_loss, lambda: [rand(RNG, (4, 5), low=-3, high=3)]),
    ("log_cosh", lambda m: m.log_cosh,
     lambda: [rand(RNG, (4, 5), low=-100, high=100), rand(RNG, (4, 5))]),
    ("log_cosh_no_targets", lambda m: m.log_cosh, lambda: [rand(RNG, (4, 5))]),
    ("cosine_similarity", lambda m: m.cosine_similarity,
     lambda: [rand(RNG, (4, 5)), rand(RNG, (4, 5))]),
    ("cosine_similarity_axis0_where",
     lambda m: lambda x, y, w: m.cosine_similarity(x, y, epsilon=0.1, axis=0, where=w),
     lambda: [rand(RNG, (4, 5)), rand(RNG, (4, 5)), _mask((4, 5))]),
    ("cosine_distance", lambda m: lambda x, y: m.cosine_distance(x, y, epsilon=1e-3),
     lambda: [rand(RNG, (4, 5)), rand(RNG, (4, 5))]),
    ("hinge_loss", lambda m: m.hinge_loss, lambda: [rand(RNG, (8,)), _pm1((8,))]),
    ("perceptron_loss", lambda m: m.perceptron_loss, lambda: [rand(RNG, (8,)), _pm1((8,))]),
    ("multiclass_hinge_loss", lambda m: m.multiclass_hinge_loss,
     lambda: [rand(RNG, (2, 4, 5)), _labels((2, 4), 5)]),
    ("multiclass_perceptron_loss", lambda m: m.multiclass_perceptron_loss,
     lambda: [rand(RNG, (4, 5)), _labels((4,), 5)]),
    ("kl_divergence", lambda m: m.kl_divergence,
     lambda: [np.log(_probs((4, 5))), _probs((4, 5))]),
    ("kl_divergence_zero_targets", lambda m: lambda x, y: m.kl_divergence(x, y, axis=0),
     lambda: [np.log(_probs((4, 5))), np.eye(4, 5, dtype=F32)]),
    ("kl_divergence_where", lambda m: lambda x, y, w: m.kl_divergence(x, y, where=w),
     lambda: [np.log(_probs((4, 5))), _probs((4, 5)), _mask((4, 5))]),
    ("kl_divergence_with_log_targets", lambda m: m.kl_divergence_with_log_targets,
     lambda: [np.log(_probs((4, 5))), np.log(_probs((4, 5)))]),
    ("generalized_kl_divergence", lambda m: m.generalized_kl_divergence,
     lambda: [rand(RNG, (4, 5)), RNG.uniform(0.1, 3.0, (4, 5)).astype(F32)]),
    ("generalized_kl_divergence_where",
     lambda m: lambda x, y, w: m.generalized_kl_divergence(x, y, axis=0, where=w),
     lambda: [rand(RNG, (4, 5)), RNG.uniform(0.1, 3.0, (4, 5)).astype(F32), _mask((4, 5))]),
    ("ntxent", lambda m: m.ntxent,
     lambda: [rand(RNG, (6, 3)), np.array([0, 0, 1, 1, 2, 2], np.int32)]),
    ("ntxent_temperature", lambda m: lambda e, y: m.ntxent(e, y, temperature=0.5),
     lambda: [rand(RNG, (6, 3)), np.array([0, 1, 0, 1, 2, 2], np.int32)]),
    ("triplet_margin_loss", lambda m: m.triplet_margin_loss,
     lambda: [rand(RNG, (4, 5)), rand(RNG, (4, 5)), rand(RNG, (4, 5))]),
    ("triplet_margin_loss_options",
     lambda m: lambda a, p, n: m.triplet_margin_loss(a, p, n, axis=0, margin=0.5, eps=1e-3),
     lambda: [rand(RNG, (4, 5)), rand(RNG, (4, 5)), rand(RNG, (4, 5))]),
    ("dice_loss", lambda m: m.dice_loss, _segmentation_args),
    ("dice_loss_options", lambda m: lambda x, y, w: m.dice_loss(
        x, y, class_weights=w, smooth=0.5, alpha=0.3, beta=0.7, reduction="sum",
        ignore_background=True),
     lambda: _segmentation_args() + [RNG.uniform(0.5, 2.0, (3,)).astype(F32)]),
    ("dice_loss_none_axis", lambda m: lambda x, y: m.dice_loss(x, y, reduction="none",
                                                               axis=(1,)),
     _segmentation_args),
    ("dice_loss_probabilities", lambda m: lambda x, y: m.dice_loss(x, y, apply_softmax=False),
     lambda: [_probs((2, 4, 4, 3)), _segmentation_args()[1]]),
    ("binary_dice_loss", lambda m: m.binary_dice_loss,
     lambda: [rand(RNG, (2, 4, 4)), (RNG.random((2, 4, 4)) > 0.5).astype(F32)]),
    ("multiclass_generalized_dice_loss", lambda m: m.multiclass_generalized_dice_loss,
     _segmentation_args),
    ("ctc_loss", lambda m: m.ctc_loss, _ctc_args),
    ("ctc_loss_options", lambda m: lambda *a: m.ctc_loss(*a, blank_id=3, log_epsilon=-1e4),
     _ctc_args),
    ("ctc_loss_with_forward_probs", lambda m: m.ctc_loss_with_forward_probs, _ctc_args),
]


# Cases that check input values in Python (so that neither library can trace them).
CONCRETE = {"dice_loss_probabilities"}


@pytest.mark.parametrize("name,make,args", CASES, ids=[c[0] for c in CASES])
def test_matches_optax(name, make, args):
    compare(make(optim), make(optax.losses), *args(), jit_ref=name not in CONCRETE)


@pytest.mark.parametrize("name", ["softmax_cross_entropy", "kl_divergence", "huber_loss",
                                  "sigmoid_focal_loss", "cosine_similarity", "log_cosh"])
def test_matches_optax_float64(name):
    make, args = next((make, args) for n, make, args in CASES if n == name)
    with x64():
        args = [a.astype(np.float64) if a.dtype == F32 else a for a in args()]
        compare(make(optim), make(optax.losses), *args, jit_ref=True)


def test_convex_kl_divergence_is_deprecated_generalized_kl():
    args = [rand(RNG, (4, 5)), RNG.uniform(0.1, 3.0, (4, 5)).astype(F32)]
    with pytest.warns(DeprecationWarning, match="generalized_kl_divergence"):
        compare(optim.convex_kl_divergence, optax.losses.generalized_kl_divergence, *args)


# (id, the loss given the module, its inputs, the arguments to differentiate)
GRAD_CASES = [
    ("softmax_cross_entropy_where",
     lambda m: lambda x, y, w: m.softmax_cross_entropy(x, y, where=w),
     lambda: [rand(RNG, (4, 5)), _probs((4, 5)), _mask((4, 5))], (0, 1)),
    ("integer_labels", lambda m: m.softmax_cross_entropy_with_integer_labels,
     lambda: [rand(RNG, (4, 5)), _labels((4,), 5)], (0,)),
    ("safe_softmax_cross_entropy", lambda m: m.safe_softmax_cross_entropy,
     lambda: [rand(RNG, (4, 5)), _probs((4, 5))], (0, 1)),
    ("sigmoid_focal_loss", lambda m: lambda x, y: m.sigmoid_focal_loss(x, y, alpha=0.25),
     lambda: [rand(RNG, (4, 5)), RNG.random((4, 5)).astype(F32)], (0, 1)),
    ("poly_loss_cross_entropy", lambda m: m.poly_loss_cross_entropy,
     lambda: [rand(RNG, (4, 5)), _probs((4, 5))], (0, 1)),
    ("kl_divergence", lambda m: m.kl_divergence,
     lambda: [np.log(_probs((4, 5))), _probs((4, 5))], (0, 1)),
    ("huber_loss", lambda m: m.huber_loss,
     lambda: [rand(RNG, (4, 5), low=-3, high=3), rand(RNG, (4, 5))], (0, 1)),
    ("cosine_distance", lambda m: m.cosine_distance,
     lambda: [rand(RNG, (4, 5)), rand(RNG, (4, 5))], (0, 1)),
    ("ntxent", lambda m: m.ntxent,
     lambda: [rand(RNG, (6, 3)), np.array([0, 0, 1, 1, 2, 2], np.int32)], (0,)),
    ("triplet_margin_loss", lambda m: m.triplet_margin_loss,
     lambda: [rand(RNG, (4, 5)), rand(RNG, (4, 5)), rand(RNG, (4, 5))], (0, 1, 2)),
    ("dice_loss", lambda m: m.dice_loss, _segmentation_args, (0,)),
    ("ctc_loss", lambda m: m.ctc_loss, _ctc_args, (0,)),
]


@pytest.mark.parametrize("name,make,args,argnums", GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
def test_derivatives_match_optax(name, make, args, argnums):
    # vmap draws random inputs for every argument: only where all of them are floats.
    # jax's value, JVP, VJP and vmap come from one program compiled quickly (fused_ref), not
    # four: they agree with the separately jitted ones to an ulp or two, and dice_loss's
    # vmapped values with the eager ones bit for bit, where jit alone moved them by 7e-6
    # relative.
    args = args()
    floats = all(np.asarray(a).dtype == F32 for a in args)
    compare_transforms(make(optim), make(optax.losses), args, RNG, argnums=argnums,
                       vmap_axes=(0,) if floats else (), fused_ref=True)


def test_safe_softmax_cross_entropy_gradient_without_nan():
    logits = np.array([[0.5, -np.inf, 1.0]], F32)
    labels = np.array([[0.3, 0.0, 0.7]], F32)
    grad = fungrad.grad(lambda x: optim.safe_softmax_cross_entropy(x, labels).sum())(logits)
    assert np.isfinite(np.asarray(grad)).all()


@pytest.mark.parametrize("name", optim.losses.__all__)
def test_exported_at_optim_with_optax_names(name):
    assert getattr(optim, name) is getattr(optim.losses, name)
    assert name in optim.__all__
    assert hasattr(optax.losses, name)


@pytest.mark.parametrize("call,error", [
    (lambda m: m.softmax_cross_entropy(np.arange(6).reshape(2, 3), np.ones((2, 3))), TypeError),
    (lambda m: m.softmax_cross_entropy_with_integer_labels(np.ones((2, 3), F32),
                                                           np.ones(2, F32)), TypeError),
    (lambda m: m.softmax_cross_entropy_with_integer_labels(np.ones((2, 3), F32),
                                                           np.ones(2, np.int32), axis=2),
     ValueError),
    (lambda m: m.squared_error(np.ones(3, F32), np.ones(1, F32)), ValueError),
    (lambda m: m.perceptron_loss(np.ones(3, F32), np.ones(1, F32)), ValueError),
    (lambda m: m.ctc_loss(np.ones((2, 3), F32), np.ones(2), np.ones((2, 2)), np.ones((2, 2))),
     ValueError),
])
def test_rejects_what_optax_rejects(call, error):
    for m in (optim, optax.losses):
        with pytest.raises(error):
            call(m)
