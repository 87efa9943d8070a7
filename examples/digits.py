"""Handwritten digits: an MLP and a small CNN on scikit-learn's bundled 8x8 digits.

The 1,797 images of ``sklearn.datasets.load_digits`` (shipped with scikit-learn, nothing is
downloaded) are split 80/20. Two models from ``fungrad.nn`` layers are trained with AdamW
in one jitted step each:

* an MLP, 64 -> 128 -> 10 with ReLU;
* a CNN: two blocks of 3x3 convolution, batch norm, ReLU and 2x2 max pooling, then a linear
  head. Batch norm's running statistics are *state*, passed in and returned explicitly:
  training normalises with the batch's statistics and returns updated running ones, and
  evaluation uses the running ones.

Prints each model's test accuracy per epoch and the CNN's confusion matrix; writes
``confusion.png`` and ``metrics.jsonl``.

Run:  python examples/digits.py            (about a minute)
      python examples/digits.py --quick    (seconds)
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple

import gallery  # the helper beside this script
import numpy as np
from sklearn.datasets import load_digits

import fungrad
import fungrad.numpy as jnp
from fungrad import nn, optim, random, train


def load_data(seed: int) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``(x_train, y_train), (x_test, y_test)``: images ``(N, 8, 8)`` scaled to [0, 1] and
    int32 labels, shuffled with ``seed`` and split 80/20."""
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)
    y = digits.target.astype(np.int32)
    order = np.random.default_rng(seed).permutation(len(x))
    cut = int(0.8 * len(x))
    return (x[order[:cut]], y[order[:cut]]), (x[order[cut:]], y[order[cut:]])


class Classifier(NamedTuple):
    """``init(key) -> (params, state)`` and
    ``apply(params, state, images, train) -> (logits, state)``."""
    init: Callable[[Any], tuple[Any, Any]]
    apply: Callable[..., tuple[Any, Any]]


def mlp() -> Classifier:
    def init(key):
        k1, k2 = random.split(key)
        return {"hidden": nn.linear_init(k1, 64, 128), "out": nn.linear_init(k2, 128, 10)}, {}

    def apply(params, state, images, train):
        h = nn.relu(nn.linear(params["hidden"], jnp.reshape(images, (images.shape[0], -1))))
        return nn.linear(params["out"], h), state
    return Classifier(init, apply)


def cnn(widths: tuple[int, int] = (16, 32)) -> Classifier:
    """Two conv-BN-ReLU-pool blocks (8x8 -> 4x4 -> 2x2), then a linear head."""
    def init(key):
        k1, k2, k3 = random.split(key, 3)
        params = {"conv1": nn.conv_init(k1, 1, widths[0], (3, 3), use_bias=False),
                  "bn1": nn.norm_init(widths[0]),
                  "conv2": nn.conv_init(k2, widths[0], widths[1], (3, 3), use_bias=False),
                  "bn2": nn.norm_init(widths[1]), "out": nn.linear_init(k3, 4 * widths[1], 10)}
        state = {"bn1": nn.batch_norm_state(widths[0]), "bn2": nn.batch_norm_state(widths[1])}
        return params, state

    def apply(params, state, images, train):
        x, new = images[..., None], {}
        for i in ("1", "2"):
            x = nn.conv(params["conv" + i], x)
            x, new["bn" + i] = nn.batch_norm(params["bn" + i], state["bn" + i], x, train=train)
            x = nn.max_pool(nn.relu(x), (2, 2))
        return nn.linear(params["out"], jnp.reshape(x, (x.shape[0], -1))), new
    return Classifier(init, apply)


def make_steps(model: Classifier, opt: optim.GradientTransformation) -> tuple[Any, Any]:
    """The jitted train step (returns the new batch-norm state too) and predictions."""
    def loss_fn(params, state, x, y):
        logits, state = model.apply(params, state, x, True)
        return jnp.mean(nn.softmax_cross_entropy_with_integer_labels(logits, y)), state

    def train_step(params, state, opt_state, x, y):
        (loss, state), grads = fungrad.value_and_grad(loss_fn, has_aux=True)(params, state, x, y)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optim.apply_updates(params, updates), state, opt_state, loss

    predict = lambda params, state, x: jnp.argmax(model.apply(params, state, x, False)[0], -1)
    return fungrad.jit(train_step), fungrad.jit(predict)


def fit(name: str, model: Classifier, data: tuple, epochs: int, batch_size: int, seed: int,
        log: train.MetricsWriter) -> np.ndarray:
    """Train ``model``; log and print the test accuracy after each epoch. Returns the test
    predictions of the last epoch."""
    (x_train, y_train), (x_test, y_test) = data
    params, state = model.init(random.PRNGKey(seed))
    opt = optim.adamw(3e-3, weight_decay=1e-4)
    opt_state = opt.init(params)
    train_step, predict = make_steps(model, opt)
    rng = np.random.default_rng(seed)
    step, t0 = 0, time.perf_counter()
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(x_train))
        # full batches: one compiled shape
        for i in range(0, len(order) - batch_size + 1, batch_size):
            idx = order[i:i + batch_size]
            params, state, opt_state, loss = train_step(params, state, opt_state, x_train[idx],
                                                        y_train[idx])
            step += 1
        pred = np.asarray(predict(params, state, x_test))
        acc = float(np.mean(pred == y_test))
        log.write(step, **{f"{name}_train_loss": loss, f"{name}_test_acc": acc})
        print(f"{name} epoch {epoch}: loss {float(loss):.4f}, test accuracy {acc:.4f}", flush=True)
    print(f"{name.upper()} test accuracy: {acc:.4f} ({nn.count_params(params):,} parameters, "
          f"{time.perf_counter() - t0:.1f} s)")
    return pred


def confusion_matrix(labels: np.ndarray, pred: np.ndarray, classes: int = 10) -> np.ndarray:
    """``m[i, j]``: how many images of class ``i`` were predicted as ``j``."""
    m = np.zeros((classes, classes), np.int64)
    np.add.at(m, (labels, pred), 1)
    return m


def plot_confusion(m: np.ndarray, title: str):
    def draw(plt):
        fig, ax = plt.subplots(figsize=(4.6, 4))
        ax.imshow(m, cmap="Blues")
        for (i, j), n in np.ndenumerate(m):
            if n:
                ax.text(j, i, str(n), ha="center", va="center", fontsize=7,
                        color="white" if n > m.max() / 2 else "black")
        ax.set_xticks(range(10))
        ax.set_yticks(range(10))
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title)
        return fig
    return draw


def main(argv: list[str] | None = None) -> None:
    ap = gallery.parser(__doc__)
    ap.add_argument("--epochs", type=int, default=15, help="passes over the training images")
    ap.add_argument("--batch-size", type=int, default=64, help="images per step")
    args = ap.parse_args(argv)
    if args.quick:
        args.epochs = 2
    if args.epochs < 1 or args.batch_size < 1:
        ap.error("--epochs and --batch-size must be >= 1")
    run_dir = gallery.start_run("digits", args)
    data = load_data(args.seed)
    print(f"{len(data[0][0])} training and {len(data[1][0])} test images of 8x8 pixels")
    with train.MetricsWriter(run_dir) as log:
        fit("mlp", mlp(), data, args.epochs, args.batch_size, args.seed, log)
        pred = fit("cnn", cnn(), data, args.epochs, args.batch_size, args.seed, log)
    m = confusion_matrix(data[1][1], pred)
    print("CNN confusion matrix (rows: true digit, columns: predicted):")
    print("\n".join("  " + " ".join(f"{n:3d}" for n in row) for row in m))
    gallery.save_picture(run_dir, "confusion.png", plot_confusion(m, "CNN on the digits test set"))
    gallery.finish(run_dir)


if __name__ == "__main__":
    main()
