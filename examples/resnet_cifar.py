"""ResNet-20 (He et al., 2016, CIFAR-10 section) with explicit batch-norm state.

The model is ``fungrad.models.resnet`` with the ``resnet20-cifar`` preset: a 3x3 stem and
three stages of three basic blocks (16/32/64 channels). Batch norm's running statistics
are a pytree of their own: the train step takes them and returns the updated ones next to
the params, and evaluation reads them unchanged.

Data: with ``--data DIR``, CIFAR-10 from the standard "python version" batches
(``data_batch_1`` ... ``data_batch_5`` and ``test_batch``, as extracted from
``cifar-10-python.tar.gz``; nothing is downloaded), trained with the usual augmentation
(random 32x32 crops of the image padded by 4 pixels, random horizontal flips). Those files
are pickles, and unpickling can run arbitrary code, so they are read with an unpickler that
refuses every global except the two NumPy needs to rebuild an array. Without ``--data``,
scikit-learn's 8x8 digits, upscaled to 32x32 and repeated over 3 channels, stand in.

Optimiser: SGD with Nesterov momentum 0.9, weight decay 5e-4, cosine-decayed learning rate.
Prints the accuracies per epoch; writes ``accuracy.png`` and ``metrics.jsonl``.

Run:  python examples/resnet_cifar.py                                  (digits, a few minutes)
      python examples/resnet_cifar.py --data cifar-10-batches-py --epochs 30
      python examples/resnet_cifar.py --quick
"""
from __future__ import annotations

import dataclasses
import glob
import os
import pickle
import time
from typing import Any, BinaryIO

import gallery  # the helper beside this script
import numpy as np
from digits import load_data as load_digits  # the example beside this one

import fungrad
import fungrad.numpy as jnp
from fungrad import nn, optim, random, train
from fungrad.models import resnet

CIFAR_MEAN = np.array([0.4914, 0.4822, 0.4465], np.float32)
CIFAR_STD = np.array([0.2470, 0.2435, 0.2616], np.float32)


# --------------------------------------------------------------------------- data

# The only globals a pickled NumPy array calls (NumPy 1 wrote the first name, NumPy 2 the second).
ARRAY_GLOBALS = {("numpy.core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
                 ("numpy._core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
                 ("numpy", "ndarray"): np.ndarray,
                 ("numpy", "dtype"): np.dtype}


class ArrayUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, strings, bytes, numbers and NumPy arrays, nothing else.

    A pickle names the callables it calls to rebuild objects; ``find_class`` looks them up.
    Here it answers only NumPy's array rebuilding (``_reconstruct``, ``ndarray``, ``dtype``)
    and refuses every other global, so a malicious file cannot run code."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ARRAY_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"ArrayUnpickler: the pickle asks for {module}.{name}, which is "
                "not a NumPy array type; refusing to load it") from None


def read_batch(f: BinaryIO) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch: images ``(N, 32, 32, 3)`` uint8 and labels ``(N,)`` int32."""
    batch = ArrayUnpickler(f, encoding="bytes").load()
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise ValueError("read_batch: not a CIFAR-10 batch (a dict with b'data' and b'labels')")
    data = batch[b"data"]
    if (not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2
            or data.shape[1] != 3072):
        raise ValueError(f"read_batch: b'data' is not a (N, 3072) uint8 array: "
                         f"{getattr(data, 'shape', data)!r}")
    labels = np.asarray(batch[b"labels"], np.int32)
    if labels.shape != (len(data),):
        raise ValueError(f"read_batch: {len(labels)} labels for {len(data)} images")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def load_cifar(directory: str) -> tuple[tuple, tuple]:
    """``(x_train, y_train), (x_test, y_test)`` from the python batches in ``directory``,
    images normalised per channel, float32 NHWC."""
    train_files = sorted(glob.glob(os.path.join(directory, "data_batch_*")))
    test_file = os.path.join(directory, "test_batch")
    if not train_files or not os.path.exists(test_file):
        raise FileNotFoundError(f"load_cifar: {directory} has no data_batch_* and test_batch files "
                                "(extract cifar-10-python.tar.gz and pass its "
                                "cifar-10-batches-py folder)")
    parts = []
    for path in train_files + [test_file]:
        with open(path, "rb") as f:
            parts.append(read_batch(f))
    normalise = lambda x: ((x / np.float32(255) - CIFAR_MEAN) / CIFAR_STD).astype(np.float32)
    x_train = np.concatenate([x for x, _ in parts[:-1]])
    y_train = np.concatenate([y for _, y in parts[:-1]])
    return (normalise(x_train), y_train), (normalise(parts[-1][0]), parts[-1][1])


def digits_as_images(seed: int) -> tuple[tuple, tuple]:
    """The 8x8 digits upscaled 4x (nearest neighbour) to 32x32, on 3 identical channels."""
    def upscale(x):
        x = np.repeat(np.repeat(x, 4, axis=1), 4, axis=2)[..., None]
        return np.repeat((x - 0.5) / 0.5, 3, axis=-1).astype(np.float32)
    (x_train, y_train), (x_test, y_test) = load_digits(seed)
    return (upscale(x_train), y_train), (upscale(x_test), y_test)


def augment(rng: np.random.Generator, images: np.ndarray, pad: int = 4) -> np.ndarray:
    """Random crops of the zero-padded images, and random horizontal flips."""
    n, h, w, _ = images.shape
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    dy, dx = rng.integers(0, 2 * pad + 1, (2, n))
    rows = dy[:, None] + np.arange(h)
    cols = dx[:, None] + np.arange(w)
    cols = np.where(rng.random(n)[:, None] < 0.5, cols[:, ::-1], cols)
    return padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


# --------------------------------------------------------------------------- training

def make_steps(cfg: resnet.Config, opt: optim.GradientTransformation) -> tuple[Any, Any]:
    """The jitted train step ``(params, state, opt_state, x, y) -> (params, state, opt_state,
    loss, correct)`` and the evaluation's predictions (running statistics)."""
    def train_step(params, state, opt_state, x, y):
        def loss_fn(params):
            logits, new_state = resnet.apply(params, state, cfg, x, train=True)
            loss = jnp.mean(nn.softmax_cross_entropy_with_integer_labels(logits, y))
            return loss, (new_state, jnp.sum(jnp.argmax(logits, -1) == y))
        (loss, (state, correct)), grads = fungrad.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optim.apply_updates(params, updates), state, opt_state, loss, correct

    predict = lambda params, state, x: jnp.argmax(
        resnet.apply(params, state, cfg, x, train=False)[0], -1)
    return fungrad.jit(train_step, donate_argnums=(0, 1, 2)), fungrad.jit(predict)


def evaluate(predict: Any, params: Any, state: Any, images: np.ndarray, labels: np.ndarray,
             batch_size: int) -> float:
    """Accuracy over ``images``, in batches of one shape (the last one padded)."""
    correct = 0
    for i in range(0, len(images), batch_size):
        chunk = images[i:i + batch_size]
        padding = np.zeros((batch_size - len(chunk), *chunk.shape[1:]), chunk.dtype)
        predicted = np.asarray(predict(params, state, np.concatenate([chunk, padding])))
        correct += int(np.sum(predicted[:len(chunk)] == labels[i:i + batch_size]))
    return correct / len(images)


def plot_accuracy(history: list[dict], title: str):
    def draw(plt):
        fig, ax = plt.subplots(figsize=(6, 3.4))
        epochs = [h["epoch"] for h in history]
        ax.plot(epochs, [h["train_acc"] for h in history], "o-",
                label="train (the batches of the epoch)")
        ax.plot(epochs, [h["test_acc"] for h in history], "o-", label="test")
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy")
        ax.set_ylim(0, 1)
        ax.set_title(title)
        ax.legend(loc="lower right")
        return fig
    return draw


def main(argv: list[str] | None = None) -> None:
    ap = gallery.parser(__doc__)
    ap.add_argument("--data", default=None, metavar="DIR",
                    help="CIFAR-10 python batches (cifar-10-batches-py); default: upscaled digits")
    ap.add_argument("--epochs", type=int, default=4, help="passes over the training images")
    ap.add_argument("--batch-size", type=int, default=128, help="images per step")
    ap.add_argument("--lr", type=float, default=0.1, help="peak learning rate (cosine decay to 0)")
    ap.add_argument("--limit", type=int, default=None,
                    help="use only the first N training and test images")
    args = ap.parse_args(argv)
    cfg = resnet.PRESETS["resnet20-cifar"]
    if args.quick:  # ResNet-8 (one block per stage) on a few images
        args.epochs, args.batch_size, args.limit = 2, 16, args.limit or 64
        cfg = dataclasses.replace(cfg, depths=(1, 1, 1))
    if min(args.epochs, args.batch_size) < 1:
        ap.error("--epochs and --batch-size must be >= 1")
    dataset = "CIFAR-10" if args.data else "digits upscaled to 32x32x3"
    run_dir = gallery.start_run("resnet_cifar", args, model=dataclasses.asdict(cfg),
                                dataset=dataset)
    (x_train, y_train), (x_test, y_test) = (load_cifar(args.data) if args.data
                                            else digits_as_images(args.seed))
    if args.limit:
        x_train, y_train = x_train[:args.limit], y_train[:args.limit]
        x_test, y_test = x_test[:args.limit], y_test[:args.limit]
    batch = min(args.batch_size, len(x_train))
    steps_per_epoch = len(x_train) // batch
    params, state = resnet.init(random.PRNGKey(args.seed), cfg)
    schedule = optim.cosine_decay_schedule(args.lr, args.epochs * steps_per_epoch)
    opt = optim.chain(optim.add_decayed_weights(5e-4),
                      optim.sgd(schedule, momentum=0.9, nesterov=True))
    opt_state = opt.init(params)
    train_step, predict = make_steps(cfg, opt)
    print(f"{dataset}: {len(x_train)} training and {len(x_test)} test images; ResNet with depths "
          f"{cfg.depths}, {nn.count_params(params):,} parameters; "
          f"{steps_per_epoch} steps of {batch} per epoch")
    rng = np.random.default_rng(args.seed)
    history, step, t0 = [], 0, time.perf_counter()
    with train.MetricsWriter(run_dir) as log:
        for epoch in range(1, args.epochs + 1):
            order, correct = rng.permutation(len(x_train)), 0
            for i in range(steps_per_epoch):
                idx = order[i * batch:(i + 1) * batch]
                x = augment(rng, x_train[idx]) if args.data else x_train[idx]
                params, state, opt_state, loss, right = train_step(params, state, opt_state, x,
                                                                   y_train[idx])
                step += 1
                correct += int(right)
                log.write(step, train_loss=loss, lr=float(schedule(step - 1)),
                          wall_time=time.perf_counter() - t0)
            record = {"epoch": epoch, "train_acc": correct / (steps_per_epoch * batch),
                      "test_acc": evaluate(predict, params, state, x_test, y_test, batch)}
            history.append(record)
            log.write(step, **record)
            print(f"epoch {epoch}: loss {float(loss):.4f}, "
                  f"train accuracy {record['train_acc']:.4f}, "
                  f"test accuracy {record['test_acc']:.4f} ({time.perf_counter() - t0:.0f} s)",
                  flush=True)
    print(f"test accuracy after {args.epochs} epochs: {history[-1]['test_acc']:.4f}")
    gallery.save_picture(run_dir, "accuracy.png", plot_accuracy(history, f"ResNet on {dataset}"))
    gallery.finish(run_dir)


if __name__ == "__main__":
    main()
