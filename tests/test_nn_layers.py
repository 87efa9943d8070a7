"""fungrad.nn layers, initialisers, attention, losses and params utilities against jax/optax."""
import jax
import jax.numpy as jnp_ref
import numpy as np
import optax
import pytest

import fungrad
import fungrad.numpy as jnp
from fungrad import nn, random
from harness import GRAD_TOL, QUICK_COMPILE, assert_same, compare, compare_transforms, rand, \
    to_fg, to_jax

RNG = np.random.default_rng(0)


# --------------------------------------------------------------------------- initialisers

INITS = [
    ("zeros", lambda m: m.zeros), ("ones", lambda m: m.ones),
    ("constant", lambda m: m.constant(0.3)),
    ("uniform", lambda m: m.uniform(0.5)), ("normal", lambda m: m.normal(0.2)),
    ("truncated_normal", lambda m: m.truncated_normal(0.2)),
    ("glorot_uniform", lambda m: m.glorot_uniform()),
    ("glorot_normal", lambda m: m.glorot_normal()),
    ("xavier_uniform", lambda m: m.xavier_uniform()),
    ("lecun_uniform", lambda m: m.lecun_uniform()),
    ("lecun_normal", lambda m: m.lecun_normal()), ("he_uniform", lambda m: m.he_uniform()),
    ("he_normal", lambda m: m.he_normal()), ("kaiming_normal", lambda m: m.kaiming_normal()),
    ("variance_scaling_conv",
     lambda m: m.variance_scaling(2.0, "fan_avg", "normal", in_axis=-2, out_axis=-1)),
    ("orthogonal", lambda m: m.orthogonal(1.5)),
]


@pytest.mark.parametrize("name,make", INITS, ids=[n for n, _ in INITS])
@pytest.mark.parametrize("shape", [(6, 4), (3, 3, 2, 5)])
def test_initializers_match_jax(name, make, shape):
    fg = make(nn.initializers)(random.PRNGKey(7), shape, jnp.float32)
    # jax's initialiser as one program compiled with QUICK_COMPILE: its random draws are jitted
    # functions of the shape, which XLA's default optimisations take long to compile
    jax_init = jax.jit(make(jax.nn.initializers), static_argnums=(1, 2),
                       compiler_options=QUICK_COMPILE)
    jx = jax_init(jax.random.PRNGKey(7), shape, jnp_ref.float32)
    assert_same(fg, jx, check_weak=False)


def test_orthogonal_is_orthogonal():
    w = np.asarray(nn.initializers.orthogonal()(random.PRNGKey(0), (8, 5)))
    np.testing.assert_allclose(w.T @ w, np.eye(5), atol=1e-5)


# --------------------------------------------------------------------------- layers

def _ln_ref(p, x, eps=1e-5):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / jnp_ref.sqrt(v + eps) * p["scale"] + p["bias"]


def _rms_ref(p, x, eps=1e-6):
    return x / jnp_ref.sqrt((x ** 2).mean(-1, keepdims=True) + eps) * p["scale"]


def _gn_ref(p, x, groups=2, eps=1e-5):
    g = x.reshape(x.shape[:-1] + (groups, -1))
    axes = tuple(range(1, g.ndim - 2)) + (g.ndim - 1,)
    m = g.mean(axes, keepdims=True)
    v = ((g - m) ** 2).mean(axes, keepdims=True)
    return ((g - m) / jnp_ref.sqrt(v + eps)).reshape(x.shape) * p["scale"] + p["bias"]


@pytest.mark.parametrize("fg_fn,ref_fn", [
    (lambda s, b, x: nn.layer_norm({"scale": s, "bias": b}, x),
     lambda s, b, x: _ln_ref({"scale": s, "bias": b}, x)),
    (lambda s, b, x: nn.rms_norm({"scale": s}, x) + b,
     lambda s, b, x: _rms_ref({"scale": s}, x) + b),
    (lambda s, b, x: nn.group_norm({"scale": s, "bias": b}, x, 2),
     lambda s, b, x: _gn_ref({"scale": s, "bias": b}, x)),
    (lambda s, b, x: nn.linear({"w": s[:, None] * b[None, :4], "b": b[:4]}, x),
     lambda s, b, x: x @ (s[:, None] * b[None, :4]) + b[:4]),
], ids=["layer_norm", "rms_norm", "group_norm", "linear"])
def test_layers_values_grads_vmap(fg_fn, ref_fn):
    # jax's references as one program (one compilation instead of one per primitive)
    compare_transforms(fg_fn, ref_fn, [rand(RNG, (6,)), rand(RNG, (6,)), rand(RNG, (3, 4, 6))], RNG,
                       fused_ref=True)


def test_embedding_and_tied_head():
    p = {"embedding": rand(RNG, (10, 4))}
    ids = np.array([[1, 9], [0, 3]], np.int32)
    x = rand(RNG, (2, 4))
    embed, attend = (lambda p, i: p["embedding"][i]), (lambda p, x: x @ p["embedding"].T)
    # jax's results as one program (one compilation instead of one per primitive)
    refs = jax.jit(lambda p, ids, x: (
        embed(p, ids), attend(p, x), jax.grad(lambda p: jnp_ref.sum(embed(p, ids) ** 2))(p)),
        compiler_options=QUICK_COMPILE)(*to_jax((p, ids, x)))
    compare(nn.embedding, embed, p, ids, ref_out=refs[0])
    compare(nn.embedding_attend, attend, p, x, ref_out=refs[1])
    g = fungrad.grad(lambda p: jnp.sum(nn.embedding(p, jnp.asarray(ids)) ** 2))(to_fg(p))
    assert_same(g, refs[2], GRAD_TOL, check_weak=False)


def test_batch_norm_train_and_eval():
    x = rand(RNG, (8, 3))
    params, state = nn.norm_init(3), nn.batch_norm_state(3)
    y, new = nn.batch_norm(params, state, jnp.asarray(x), train=True, momentum=0.9)
    mean, var = x.mean(0), x.var(0)
    np.testing.assert_allclose(np.asarray(y), (x - mean) / np.sqrt(var + 1e-5),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(new.mean), 0.1 * mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(new.var), 0.9 + 0.1 * var, rtol=1e-5)
    y_eval, same = nn.batch_norm(params, new, jnp.asarray(x), train=False)
    assert same is new
    np.testing.assert_allclose(np.asarray(y_eval),
                               (x - np.asarray(new.mean)) / np.sqrt(np.asarray(new.var) + 1e-5),
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("layout,dn", [("NHWC", ("NHWC", "HWIO", "NHWC")),
                                       ("NCHW", ("NCHW", "OIHW", "NCHW"))])
@pytest.mark.parametrize("groups,stride,dilation", [(1, 1, 1), (2, 2, 1), (1, 1, 2)])
def test_conv2d_matches_jax(layout, dn, groups, stride, dilation):
    p = nn.conv_init(random.PRNGKey(1), 4, 6, (3, 3), groups=groups, layout=layout)
    x = rand(RNG, (2, 7, 7, 4) if layout == "NHWC" else (2, 4, 7, 7))
    w, b = np.asarray(p["w"]), np.asarray(p["b"])

    def ref(x):
        y = jax.lax.conv_general_dilated(x, w, (stride, stride), "SAME",
                                         rhs_dilation=(dilation, dilation),
                                         dimension_numbers=dn, feature_group_count=groups)
        return y + (b if layout == "NHWC" else b[:, None, None])
    compare(lambda x: nn.conv(p, x, stride, "SAME", dilation, groups, layout), ref, x)


def test_causal_conv1d_is_causal_and_depthwise():
    p = {"w": jnp.asarray(rand(RNG, (4, 1, 3))), "b": jnp.zeros(3)}
    x = rand(RNG, (1, 10, 3))
    y = np.asarray(nn.causal_conv1d(p, jnp.asarray(x)))
    x2 = x.copy()
    x2[0, 6:] += 5.0
    y2 = np.asarray(nn.causal_conv1d(p, jnp.asarray(x2)))
    np.testing.assert_array_equal(y[0, :6], y2[0, :6])
    w = np.asarray(p["w"])[:, 0, :]
    xp = np.pad(x[0], ((3, 0), (0, 0)))
    ref = np.stack([(xp[t:t + 4] * w).sum(0) for t in range(10)])
    np.testing.assert_allclose(y[0], ref, rtol=1e-5, atol=1e-5)


def test_pooling_matches_jax():
    x = rand(RNG, (2, 6, 6, 3))
    max_pool = lambda x: jax.lax.reduce_window(  # noqa: E731
        x, -jnp_ref.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
    avg_pool = lambda x: jax.lax.reduce_window(  # noqa: E731
        x, 0.0, jax.lax.add, (1, 3, 3, 1), (1, 1, 1, 1), "SAME") / 9
    # jax's results as one program (one compilation instead of one per primitive)
    refs = jax.jit(lambda x: (max_pool(x), avg_pool(x), x.mean((1, 2)),
                              jax.grad(lambda x: jnp_ref.sum(max_pool(x) ** 2))(x)),
                   compiler_options=QUICK_COMPILE)(x)
    compare(lambda x: nn.max_pool(x, (2, 2)), max_pool, x, ref_out=refs[0])
    compare(lambda x: nn.avg_pool(x, (3, 3), (1, 1), "SAME"), avg_pool, x, ref_out=refs[1])
    compare(nn.global_avg_pool, lambda x: x.mean((1, 2)), x, ref_out=refs[2])
    g = fungrad.grad(lambda x: jnp.sum(nn.max_pool(x, (2, 2)) ** 2))(jnp.asarray(x))
    assert_same(g, refs[3], GRAD_TOL, check_weak=False)


def test_dropout_matches_jax_mask_and_is_identity_in_eval():
    x = rand(RNG, (4, 5))
    y = nn.dropout(random.PRNGKey(3), jnp.asarray(x), 0.25, train=True)
    keep = jax.random.bernoulli(jax.random.PRNGKey(3), 0.75, x.shape)
    np.testing.assert_allclose(np.asarray(y), np.where(keep, x / 0.75, 0), rtol=1e-6)
    assert nn.dropout(None, jnp.asarray(x), 0.25, train=False) is not None
    np.testing.assert_array_equal(
        np.asarray(nn.dropout(None, jnp.asarray(x), 0.25, train=False)), x)
    with pytest.raises(ValueError, match="key"):
        nn.dropout(None, jnp.asarray(x), 0.25, train=True)


def _attention_ref(p, x, n_heads, n_kv, mask):
    B, T, _ = x.shape
    q = (x @ p["q"]["w"]).reshape(B, T, n_heads, -1)
    k = jnp_ref.repeat((x @ p["k"]["w"]).reshape(B, T, n_kv, -1), n_heads // n_kv, axis=2)
    v = jnp_ref.repeat((x @ p["v"]["w"]).reshape(B, T, n_kv, -1), n_heads // n_kv, axis=2)
    s = jnp_ref.einsum("bthd,bshd->bhts", q, k) / np.sqrt(q.shape[-1])
    s = jnp_ref.where(mask, s, jnp_ref.finfo(s.dtype).min)
    o = jnp_ref.einsum("bhts,bshd->bthd", jax.nn.softmax(s, -1), v).reshape(B, T, -1)
    return o @ p["o"]["w"]


@pytest.mark.parametrize("n_heads,n_kv", [(4, 4), (4, 2), (4, 1)])
def test_attention_causal_padding_gqa_against_reference(n_heads, n_kv):
    p = nn.attention_init(random.PRNGKey(0), 16, n_heads, n_kv)
    x = rand(RNG, (2, 5, 16))
    pad = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], bool)
    mask = np.tril(np.ones((5, 5), bool))[None, None] & pad[:, None, None, :]
    names = ("q", "k", "v", "o")
    # weights scaled to the size real initialisers give (the harness draws them in [-2, 2])
    as_params = lambda ws: {n: {"w": 0.25 * w} for n, w in zip(names, ws)}
    fg = lambda *a: nn.multi_head_attention(as_params(a[:4]), a[4], n_heads=n_heads,
                                            n_kv_heads=n_kv, padding_mask=jnp.asarray(pad))[0]
    ref = lambda *a: _attention_ref(as_params(a[:4]), a[4], n_heads, n_kv, mask)
    compare_transforms(fg, ref, [4 * np.asarray(p[n]["w"]) for n in names] + [x], RNG,
                       fused_ref=True)


# jax.nn.dot_product_attention's options, one by one and together (B=2, T=5, S=7, 4 query
# heads over 2 key/value heads, head size 8)
_B, _T, _S = 2, 5, 7
_ATTENTION_OPTIONS = {
    "plain": {}, "bias": {"bias": rand(RNG, (1, 4, _T, _S))},
    "mask": {"mask": RNG.random((_B, 1, _T, _S)) > 0.3}, "causal": {"is_causal": True},
    "scale": {"scale": 0.3}, "window": {"local_window_size": 1},
    "left_window": {"local_window_size": (2, 0)},
    "query_lengths": {"query_seq_lengths": np.array([3, 5], np.int32)},
    "key_lengths": {"key_value_seq_lengths": np.array([7, 2], np.int32)},
    "all": {"is_causal": True, "mask": RNG.random((_B, 1, _T, _S)) > 0.3,
            "bias": rand(RNG, (1, 4, _T, _S)), "key_value_seq_lengths": np.array([7, 2], np.int32)},
    "residual": {"return_residual": True, "is_causal": True},
}


@pytest.mark.parametrize("name", sorted(_ATTENTION_OPTIONS))
def test_dot_product_attention_matches_jax(name):
    kw = _ATTENTION_OPTIONS[name]
    qkv = [rand(RNG, (_B, _T, 4, 8)), rand(RNG, (_B, _S, 2, 8)), rand(RNG, (_B, _S, 2, 8))]
    fg = lambda q, k, v: nn.dot_product_attention(q, k, v, **kw)  # noqa: E731
    ref = lambda q, k, v: jax.nn.dot_product_attention(q, k, v, **kw)  # noqa: E731
    if name in ("bias", "all", "residual"):
        # values (eager and jitted, as compare checks them) and derivatives and vmap; jax's
        # references as one program
        compare_transforms(fg, ref, qkv, RNG, fused_ref=True)
    else:
        compare(fg, ref, *qkv)


def test_dot_product_attention_unbatched_bfloat16_and_errors():
    q, k, v = rand(RNG, (5, 4, 8)), rand(RNG, (7, 4, 8)), rand(RNG, (7, 4, 8))
    causal = lambda *a: jax.nn.dot_product_attention(*a, is_causal=True)  # noqa: E731
    halves = [x.astype(jnp_ref.bfloat16) for x in (q, k, v)]
    # jax's results as one program (one compilation instead of one per primitive)
    ref, ref_halves = jax.jit(lambda f32, bf16: (causal(*f32), jax.nn.dot_product_attention(*bf16)),
                              compiler_options=QUICK_COMPILE)(to_jax((q, k, v)), to_jax(halves))
    compare(lambda *a: nn.dot_product_attention(*a, is_causal=True), causal, q, k, v, ref_out=ref)
    compare(nn.dot_product_attention, jax.nn.dot_product_attention, *halves, ref_out=ref_halves)
    with pytest.raises(ValueError, match="implementation 'cudnn' is not available"):
        nn.dot_product_attention(q, k, v, implementation="cudnn")
    with pytest.raises(ValueError, match="4 query heads are not a multiple of 3"):
        nn.dot_product_attention(q, rand(RNG, (7, 3, 8)), rand(RNG, (7, 3, 8)))
    with pytest.raises(ValueError, match="mask must be boolean"):
        nn.dot_product_attention(q, k, v, mask=np.ones((5, 7), np.float32))


def test_kv_cache_decoding_equals_full_attention_under_jit():
    n_heads, n_kv, T = 4, 2, 6
    p = nn.attention_init(random.PRNGKey(2), 16, n_heads, n_kv)
    rope = nn.rope_frequencies(4, 16)
    x = jnp.asarray(rand(RNG, (2, T, 16)))
    full, _ = nn.multi_head_attention(p, x, n_heads=n_heads, n_kv_heads=n_kv, rope=rope)
    step = fungrad.jit(lambda p, x, c: nn.multi_head_attention(
        p, x, n_heads=n_heads, n_kv_heads=n_kv, rope=rope, cache=c))
    cache = nn.init_kv_cache(2, 16, n_kv, 4)
    out, cache = step(p, x[:, :3], cache)       # a 3-token prompt, then one token at a time
    outs = [out]
    for t in range(3, T):
        out, cache = step(p, x[:, t:t + 1], cache)
        outs.append(out)
    assert int(cache.pos) == T
    np.testing.assert_allclose(np.asarray(jnp.concatenate(outs, axis=1)), np.asarray(full),
                               rtol=1e-5, atol=1e-5)


def test_left_padded_batch_with_cache_equals_each_row_alone():
    """Prompts of different lengths, left-padded into one batch, prefilled and then decoded
    through the cache, give each row what the row alone (no padding) gives at the same
    positions: RoPE positions count only real tokens, padding slots are never attended."""
    n_heads, n_kv, d = 4, 2, 16
    p = nn.attention_init(random.PRNGKey(3), d, n_heads, n_kv)
    rope = nn.rope_frequencies(d // n_heads, 16)
    lengths, pad_to, extra = (5, 2), 5, 3
    xs = [jnp.asarray(rand(RNG, (1, n + extra, d))) for n in lengths]
    alone = [nn.multi_head_attention(p, x, n_heads=n_heads, n_kv_heads=n_kv, rope=rope)[0]
             for x in xs]
    prompt = jnp.concatenate([jnp.pad(x[:, :n], ((0, 0), (pad_to - n, 0), (0, 0)))
                              for x, n in zip(xs, lengths)], axis=0)
    mask = jnp.asarray(np.array([[i >= pad_to - n for i in range(pad_to)] for n in lengths]))
    step = fungrad.jit(lambda p, x, m, c: nn.multi_head_attention(
        p, x, n_heads=n_heads, n_kv_heads=n_kv, rope=rope, padding_mask=m, cache=c))
    out, cache = step(p, prompt, mask, nn.init_kv_cache(2, 16, n_kv, d // n_heads))
    for row, n in enumerate(lengths):
        np.testing.assert_allclose(np.asarray(out[row, pad_to - n:]), np.asarray(alone[row][0, :n]),
                                   rtol=1e-5, atol=1e-5)
    for t in range(extra):
        new = jnp.concatenate([x[:, n + t:n + t + 1] for x, n in zip(xs, lengths)], axis=0)
        out, cache = step(p, new, jnp.ones((2, 1), bool), cache)
        for row, n in enumerate(lengths):
            np.testing.assert_allclose(np.asarray(out[row, 0]), np.asarray(alone[row][0, n + t]),
                                       rtol=1e-5, atol=1e-5)
    assert step._cache_size() == 2  # one trace for the prompt, one for every decode step


def test_rope_rotates_pairs_and_preserves_norm():
    x = jnp.asarray(rand(RNG, (1, 3, 2, 8)))
    pos = jnp.asarray(np.array([[0, 1, 5]], np.int32))
    y = nn.apply_rope(x, pos, nn.rope_frequencies(8, 8))
    np.testing.assert_allclose(np.asarray(y[:, 0]), np.asarray(x[:, 0]), rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(y), axis=-1),
                               np.linalg.norm(np.asarray(x), axis=-1), rtol=1e-5)


def test_mlp_swiglu_and_sequential():
    k = random.PRNGKey(0)
    x = jnp.asarray(rand(RNG, (3, 8)))
    p = nn.swiglu_init(k, 8, 16)
    xn = np.asarray(x)
    hidden = jax.nn.silu(xn @ np.asarray(p["gate"]["w"])) * (xn @ np.asarray(p["up"]["w"]))
    ref = np.asarray(hidden) @ np.asarray(p["down"]["w"])
    np.testing.assert_allclose(np.asarray(nn.swiglu(p, x)), ref, rtol=1e-5, atol=1e-5)
    model = nn.sequential(nn.Layer(lambda k: nn.linear_init(k, 8, 4), nn.linear),
                          nn.Layer(lambda k: {}, lambda p, x: nn.relu(x)),
                          nn.Layer(lambda k: nn.linear_init(k, 4, 2), nn.linear))
    params = model.init(k)
    y = model.apply(params, x)
    assert y.shape == (3, 2)
    assert nn.count_params(params) == 8 * 4 + 4 + 4 * 2 + 2
    assert nn.mlp(nn.mlp_init(k, 8, 32), x).shape == (3, 8)


# --------------------------------------------------------------------------- losses

LOGITS = rand(RNG, (4, 5))
LABELS = np.array([0, 3, 4, 1], np.int32)
SOFT = np.asarray(jax.nn.softmax(rand(RNG, (4, 5))))


@pytest.mark.parametrize("fg,ox,args", [
    (nn.softmax_cross_entropy, optax.softmax_cross_entropy, (LOGITS, SOFT)),
    (nn.softmax_cross_entropy_with_integer_labels, optax.softmax_cross_entropy_with_integer_labels,
     (LOGITS, LABELS)),
    (nn.sigmoid_binary_cross_entropy, optax.sigmoid_binary_cross_entropy,
     (LOGITS, (SOFT > 0.2).astype(np.float32))),
    (nn.huber_loss, optax.huber_loss, (LOGITS, SOFT)),
    (nn.squared_error, optax.squared_error, (LOGITS, SOFT)),
    (nn.kl_divergence, optax.kl_divergence, (np.log(SOFT), np.asarray(jax.nn.softmax(LOGITS)))),
], ids=["softmax_ce", "integer_ce", "sigmoid_bce", "huber", "squared_error", "kl"])
def test_losses_match_optax(fg, ox, args):
    diff = [0] if args[1].dtype == np.int32 else [0, 1]
    # optax's value and gradient as one program (one compilation instead of one per primitive)
    value, gj = jax.jit(lambda *a: (ox(*a), jax.grad(lambda *a: jnp_ref.sum(ox(*a)),
                                                     argnums=tuple(diff))(*a)),
                        compiler_options=QUICK_COMPILE)(*to_jax(args))
    compare(fg, ox, *args, ref_out=value, check_weak=False)
    g = fungrad.grad(lambda *a: jnp.sum(fg(*a)), argnums=tuple(diff))(*to_fg(args))
    assert_same(g, gj, GRAD_TOL, check_weak=False)


def test_cross_entropy_options():
    logits, labels = jnp.asarray(LOGITS), jnp.asarray(LABELS)
    per = np.asarray(optax.softmax_cross_entropy_with_integer_labels(LOGITS, LABELS))
    np.testing.assert_allclose(float(nn.cross_entropy(logits, labels)), per.mean(), rtol=1e-6)
    np.testing.assert_allclose(float(nn.cross_entropy(logits, labels, reduction="sum")), per.sum(),
                               rtol=1e-6)
    ignored = jnp.asarray(np.array([0, -100, 4, -100], np.int32))
    np.testing.assert_allclose(float(nn.cross_entropy(logits, ignored, ignore_index=-100)),
                               (per[0] + per[2]) / 2, rtol=1e-6)
    mask = jnp.asarray(np.array([True, False, True, True]))
    np.testing.assert_allclose(float(nn.cross_entropy(logits, labels, mask=mask)),
                               per[[0, 2, 3]].mean(), rtol=1e-6)
    smoothed = optax.softmax_cross_entropy(LOGITS,
                                           optax.smooth_labels(jax.nn.one_hot(LABELS, 5), 0.1))
    np.testing.assert_allclose(float(nn.cross_entropy(logits, labels, label_smoothing=0.1)),
                               float(np.mean(smoothed)), rtol=1e-6)
    with pytest.raises(ValueError, match="reduction"):
        nn.cross_entropy(logits, labels, reduction="avg")


@pytest.mark.parametrize("scale", [1e4, -1e4])
def test_losses_stable_at_extreme_logits(scale):
    logits = jnp.asarray(np.array([[scale, 0.0, -scale], [0.0, scale, scale]], np.float32))
    labels = jnp.asarray(np.array([2, 0], np.int32))
    for f in [lambda l: nn.cross_entropy(l, labels),
              lambda l: jnp.sum(nn.sigmoid_binary_cross_entropy(l, jnp.ones_like(l))),
              lambda l: nn.cross_entropy(l, labels, label_smoothing=0.1)]:
        value, g = fungrad.value_and_grad(f)(logits)
        assert np.isfinite(float(value)) and np.all(np.isfinite(np.asarray(g)))
    value = nn.cross_entropy(logits, labels, reduction="none")
    ref = optax.softmax_cross_entropy_with_integer_labels(np.asarray(logits), np.asarray(labels))
    np.testing.assert_allclose(np.asarray(value), np.asarray(ref), rtol=1e-6)


# --------------------------------------------------------------------------- params utilities

def test_params_utilities_and_mixed_precision_step():
    rng = np.random.default_rng(1)  # its own data: whether 2**15 overflows must not depend
    params = {"w": jnp.asarray(rand(rng, (4, 3))), "step": jnp.asarray(3)}  # on test order
    half = nn.cast_floating(params, jnp.bfloat16)
    assert half["w"].dtype == jnp.bfloat16 and half["step"].dtype == jnp.int32
    np.testing.assert_allclose(float(nn.global_norm({"w": params["w"]})),
                               float(optax.tree.norm(np.asarray(params["w"]))), rtol=1e-6)
    assert bool(nn.all_finite(params))
    assert not bool(nn.all_finite({"x": jnp.asarray([1.0, np.inf])}))
    # float16 compute, float32 master weights, dynamic loss scaling
    scale = nn.DynamicLossScale.create(2.0 ** 20, period=2)
    master = {"w": params["w"]}
    x = jnp.asarray(rand(rng, (5, 4)))

    @fungrad.jit
    def step(master, scale, x):
        def loss(m):
            w16 = nn.cast_floating(m, jnp.float16)["w"]
            return jnp.mean((x.astype(jnp.float16) @ w16).astype(jnp.float32) ** 2)
        g = fungrad.grad(lambda m: loss(m) * scale.loss_scale)(master)
        g = scale.unscale(g)
        finite = nn.all_finite(g)
        new = fungrad.tree.map(lambda p, g: jnp.where(finite, p - 0.1 * g, p), master, g)
        return new, scale.adjust(finite), g
    # 2**20 overflows float16 (max 65504) for gradients of order one: the step is skipped
    # and the scale halves.
    skipped, halved, _ = step(master, scale, x)
    np.testing.assert_array_equal(np.asarray(skipped["w"]), np.asarray(master["w"]))
    assert float(halved.loss_scale) == 2.0 ** 19 and int(halved.counter) == 0
    # A scale that fits: gradients match float32 ones, the counter advances, then the scale grows.
    new, scale2, g = step(master, nn.DynamicLossScale.create(2.0 ** 6, period=2), x)
    ref = jax.grad(lambda w: jnp_ref.mean((np.asarray(x) @ w) ** 2))(np.asarray(master["w"]))
    np.testing.assert_allclose(np.asarray(g["w"]), np.asarray(ref), **FLOAT16_STEP_TOL)
    assert float(scale2.loss_scale) == 2.0 ** 6 and int(scale2.counter) == 1
    _, scale3, _ = step(new, scale2, x)
    assert float(scale3.loss_scale) == 2.0 ** 7 and int(scale3.counter) == 0


# float16 matmul inputs: the float16 row of the harness table.
FLOAT16_STEP_TOL = dict(zip(("rtol", "atol"), __import__("harness").TOL[np.dtype(np.float16)]))
