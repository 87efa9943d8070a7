"""End to end: an MLP on scikit-learn's bundled digits, trained with jit + adamw."""
import time

import numpy as np
from sklearn.datasets import load_digits

import fungrad
import fungrad.numpy as jnp
from fungrad import nn, optim, random


def test_digits_mlp_reaches_96_percent():
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int32)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    split = int(0.8 * len(x))
    x_train, y_train, x_test, y_test = x[:split], y[:split], x[split:], y[split:]

    k1, k2 = random.split(random.PRNGKey(0))
    params = {"l1": nn.linear_init(k1, 64, 128), "l2": nn.linear_init(k2, 128, 10)}
    forward = lambda p, x: nn.linear(p["l2"], nn.relu(nn.linear(p["l1"], x)))
    loss_fn = lambda p, x, y: nn.cross_entropy(forward(p, x), y)
    opt = optim.adamw(3e-3, weight_decay=1e-4,
                      mask=lambda p: fungrad.tree.map(lambda w: w.ndim > 1, p))
    opt_state = opt.init(params)

    @fungrad.jit
    def step(params, opt_state, x, y):
        loss, grads = fungrad.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optim.apply_updates(params, updates), opt_state, loss

    start = time.perf_counter()
    rng = np.random.default_rng(1)
    for _ in range(12):
        perm = rng.permutation(split)
        for i in range(0, split, 64):
            idx = perm[i:i + 64]
            params, opt_state, loss = step(params, opt_state, jnp.asarray(x_train[idx]),
                                           jnp.asarray(y_train[idx]))
    elapsed = time.perf_counter() - start
    predicted = jnp.argmax(forward(params, jnp.asarray(x_test)), -1)
    accuracy = float(jnp.mean(predicted == jnp.asarray(y_test)))
    print(f"digits MLP: test accuracy {accuracy:.3f} after {elapsed:.1f} s of training")
    assert accuracy >= 0.96
