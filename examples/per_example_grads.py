"""Per-example gradients with ``vmap(grad(...))``, and DP-SGD-style training with them.

``grad`` of the loss of *one* example, mapped over the batch with ``vmap``, gives every
example's own gradient in one vectorised call, where the obvious alternative is a Python
loop of one ``grad`` call per example. The script checks that both give the same
gradients, and prints how much faster the vmapped version is (both jitted).

Those gradients are what differentially private SGD (Abadi et al., 2016) needs: clip each
example's gradient to L2 norm ``C`` (``g / max(1, |g| / C)``), sum, add Gaussian noise of
standard deviation ``sigma * C``, divide by the batch size. An MLP is trained that way on
scikit-learn's digits, next to the same MLP trained with plain averaged gradients. (No
privacy budget is computed: that needs an accountant, which is not part of this example.)

Writes ``grad_norms.png`` (the per-example gradient norms before clipping, at the start and
at the end of DP training, with the clipping norm) and ``metrics.jsonl``.

Run:  python examples/per_example_grads.py
      python examples/per_example_grads.py --quick
"""
from __future__ import annotations

import time
from typing import Any

import gallery  # the helper beside this script
import numpy as np
from digits import load_data, mlp  # the example beside this one

import fungrad
import fungrad.numpy as jnp
from fungrad import nn, optim, random, train, tree

MODEL = mlp()


def example_loss(params: Any, image: Any, label: Any) -> Any:
    """The loss of one example: ``image (8, 8)``, ``label ()``."""
    logits, _ = MODEL.apply(params, {}, image[None], False)
    return nn.softmax_cross_entropy_with_integer_labels(logits[0], label)


per_example_grads = fungrad.jit(fungrad.vmap(fungrad.grad(example_loss), in_axes=(None, 0, 0)))
one_grad = fungrad.jit(fungrad.grad(example_loss))


def looped_grads(params: Any, images: Any, labels: Any) -> Any:
    """The same gradients, one ``grad`` call per example, stacked along a new first axis."""
    grads = [one_grad(params, images[i], labels[i]) for i in range(len(images))]
    return tree.map(lambda *g: np.stack(g), *grads)


def best_time(fn: Any, *args: Any, repeat: int) -> float:
    """The fastest of ``repeat`` calls (after a first, compiling, call), in seconds."""
    fungrad.block_until_ready(fn(*args))
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fungrad.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return min(times)


def compare(params: Any, images: np.ndarray, labels: np.ndarray, repeat: int) -> dict:
    """Check that vmap and the loop agree, and time both."""
    fast = per_example_grads(params, images, labels)
    slow = looped_grads(params, images, labels)
    diff = max(float(np.max(np.abs(np.asarray(a) - b)))
               for a, b in zip(tree.leaves(fast), tree.leaves(slow)))
    scale = max(float(np.max(np.abs(b))) for b in tree.leaves(slow))
    if diff > 1e-5 * scale:
        raise AssertionError(f"per_example_grads: vmap and the loop differ by {diff:.3g} "
                             f"(scale {scale:.3g})")
    t_vmap = best_time(per_example_grads, params, images, labels, repeat=repeat)
    t_loop = best_time(looped_grads, params, images, labels, repeat=repeat)
    return {"max_abs_diff": diff, "vmap_ms": 1e3 * t_vmap, "loop_ms": 1e3 * t_loop,
            "speedup": t_loop / t_vmap}


def make_dp_step(opt: optim.GradientTransformation, clip: float, sigma: float) -> Any:
    """One DP-SGD step: clipped per-example gradients, summed, noised and averaged."""
    def step(params, opt_state, images, labels, key):
        grads = fungrad.vmap(fungrad.grad(example_loss), in_axes=(None, 0, 0))(
            params, images, labels)
        norms = fungrad.vmap(nn.global_norm)(grads)                       # (batch,)
        factor = 1.0 / jnp.maximum(1.0, norms / clip)
        leaves, treedef = tree.flatten(grads)
        keys = random.split(key, len(leaves))
        noisy = [(jnp.tensordot(factor, g, axes=1) + sigma * clip * random.normal(k, g.shape[1:]))
                 / len(images) for g, k in zip(leaves, keys)]
        updates, opt_state = opt.update(tree.unflatten(treedef, noisy), opt_state, params)
        return optim.apply_updates(params, updates), opt_state, norms
    return fungrad.jit(step)


def make_plain_step(opt: optim.GradientTransformation) -> Any:
    def step(params, opt_state, images, labels):
        def batch_loss(p):
            return jnp.mean(fungrad.vmap(example_loss, in_axes=(None, 0, 0))(p, images, labels))

        grads = fungrad.grad(batch_loss)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optim.apply_updates(params, updates), opt_state
    return fungrad.jit(step)


def accuracy(params: Any, images: np.ndarray, labels: np.ndarray) -> float:
    logits, _ = MODEL.apply(params, {}, jnp.asarray(images), False)
    return float(np.mean(np.asarray(jnp.argmax(logits, -1)) == labels))


def plot_norms(first: np.ndarray, last: np.ndarray, clip: float):
    def draw(plt):
        fig, ax = plt.subplots(figsize=(6, 3.4))
        bins = np.linspace(0, max(first.max(), last.max()) * 1.02, 40)
        ax.hist(first, bins=bins, alpha=0.6, label="first step")
        ax.hist(last, bins=bins, alpha=0.6, label="last step")
        ax.axvline(clip, color="black", linestyle="--", label=f"clipping norm C={clip:g}")
        ax.set_xlabel("per-example gradient norm (before clipping)")
        ax.set_ylabel("examples")
        ax.legend()
        return fig
    return draw


def main(argv: list[str] | None = None) -> None:
    ap = gallery.parser(__doc__)
    ap.add_argument("--batch-size", type=int, default=128,
                    help="examples per step (and per timing)")
    ap.add_argument("--steps", type=int, default=300, help="training steps of each model")
    ap.add_argument("--clip", type=float, default=1.0,
                    help="clipping norm C of each example's gradient")
    ap.add_argument("--sigma", type=float, default=1.0,
                    help="noise multiplier: noise std is sigma * C")
    ap.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate")
    ap.add_argument("--repeat", type=int, default=5, help="timing repetitions (the best is kept)")
    args = ap.parse_args(argv)
    if args.quick:
        args.batch_size, args.steps, args.repeat = 32, 20, 2
    if min(args.batch_size, args.steps, args.repeat) < 1 or args.clip <= 0 or args.sigma < 0:
        ap.error("--batch-size, --steps, --repeat and --clip must be positive, --sigma >= 0")
    run_dir = gallery.start_run("per_example_grads", args)
    (x_train, y_train), (x_test, y_test) = load_data(args.seed)
    params, _ = MODEL.init(random.PRNGKey(args.seed))

    t = compare(params, x_train[:args.batch_size], y_train[:args.batch_size], args.repeat)
    print(f"per-example gradients of {args.batch_size} examples "
          f"({nn.count_params(params):,} parameters):")
    print(f"  vmap(grad(loss)): {t['vmap_ms']:8.2f} ms")
    print(f"  loop of grad:     {t['loop_ms']:8.2f} ms")
    print(f"  speed-up:         {t['speedup']:8.1f}x")
    print(f"  max |vmap - loop| = {t['max_abs_diff']:.2e}: the gradients agree")

    opt = optim.adam(args.lr)
    dp_step, plain_step = make_dp_step(opt, args.clip, args.sigma), make_plain_step(opt)
    dp_params = plain_params = params
    dp_state = plain_state = opt.init(params)
    rng, key = np.random.default_rng(args.seed), random.PRNGKey(args.seed + 1)
    first_norms = norms = np.zeros(0)
    with train.MetricsWriter(run_dir) as log:
        log.write(0, vmap_ms=t["vmap_ms"], loop_ms=t["loop_ms"], speedup=t["speedup"])
        for step in range(1, args.steps + 1):
            idx = rng.choice(len(x_train), args.batch_size, replace=False)
            dp_params, dp_state, norms = dp_step(dp_params, dp_state, x_train[idx], y_train[idx],
                                                 random.fold_in(key, step))
            plain_params, plain_state = plain_step(plain_params, plain_state, x_train[idx],
                                                   y_train[idx])
            norms = np.asarray(norms)
            if step == 1:
                first_norms = norms
            log.write(step, mean_grad_norm=float(norms.mean()),
                      clipped_frac=float(np.mean(norms > args.clip)))
        dp_acc = accuracy(dp_params, x_test, y_test)
        plain_acc = accuracy(plain_params, x_test, y_test)
        log.write(args.steps, dp_test_acc=dp_acc, plain_test_acc=plain_acc)
    print(f"after {args.steps} steps of {args.batch_size} examples:")
    print(f"  DP-SGD (C={args.clip:g}, sigma={args.sigma:g}) test accuracy: {dp_acc:.4f} "
          f"({100 * np.mean(norms > args.clip):.0f}% of the last batch's gradients clipped)")
    print(f"  non-private test accuracy:              {plain_acc:.4f}")
    gallery.save_picture(run_dir, "grad_norms.png", plot_norms(first_norms, norms, args.clip))
    gallery.finish(run_dir)


if __name__ == "__main__":
    main()
