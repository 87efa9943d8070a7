"""Mamba against Hugging Face ``MambaForCausalLM`` (its pure-torch path) on tiny random
models with every weight jittered: logits, cached decoding (prefill, chunks, one token at
a time), left-padded batches, greedy generation, config variants, saving back to
``transformers``, float16/bfloat16 and sharded weights, loading errors, a jitted decode
step that never retraces and updates its donated cache in place, and a few training
steps."""
import json
import os

import ml_dtypes
import numpy as np
import pytest
import torch
import transformers

import fungrad
import fungrad.numpy as jnp
from fungrad import optim, random, tree
from fungrad.models import hf, mamba

TOL = dict(rtol=1e-4, atol=1e-4)
VOCAB = 96


def hf_model(**overrides):
    """A tiny random HF Mamba with every weight moved off its initial value (no norm
    weight is 1, no bias 0, ``A_log`` and ``D`` are not the textbook ones)."""
    kwargs = dict(vocab_size=VOCAB, hidden_size=32, state_size=8, num_hidden_layers=2, expand=2,
                  conv_kernel=4, time_step_rank=4, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    kwargs.update(overrides)
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(transformers.MambaConfig(**kwargs)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """``(hf_model, folder, cfg, params)`` for the default tiny config."""
    model = hf_model()
    folder = str(tmp_path_factory.mktemp("mamba"))
    model.save_pretrained(folder)
    cfg, params = mamba.from_pretrained(folder)
    return model, folder, cfg, params


def tokens(batch, length, seed=0):
    return np.random.default_rng(seed).integers(3, VOCAB, (batch, length)).astype(np.int32)


def hf_logits(model, toks, mask=None):
    with torch.no_grad():
        kw = {} if mask is None else {"attention_mask": torch.tensor(mask, dtype=torch.long)}
        return model(torch.tensor(toks, dtype=torch.long), **kw).logits.numpy()


def fg_logits(params, cfg, toks, **kw):
    return np.asarray(mamba.apply(params, cfg, jnp.asarray(toks), **kw)[0])


# --------------------------------------------------------------------------- forward

def test_logits_match_transformers(reference):
    model, _, cfg, params = reference
    toks = tokens(2, 11)
    np.testing.assert_allclose(fg_logits(params, cfg, toks), hf_logits(model, toks), **TOL)


@pytest.mark.parametrize("overrides", [
    dict(tie_word_embeddings=False, use_bias=True, use_conv_bias=False, layer_norm_epsilon=1e-3),
    dict(hidden_size=24, time_step_rank="auto", expand=3, conv_kernel=3, state_size=5,
         residual_in_fp32=False, num_hidden_layers=3),
], ids=["untied-biases-eps", "odd-sizes-auto-rank"])
def test_config_variants_match_transformers(tmp_path, overrides):
    model = hf_model(**overrides)
    model.save_pretrained(tmp_path)
    cfg, params = mamba.from_pretrained(tmp_path)
    if overrides.get("time_step_rank") == "auto":
        assert cfg.dt_rank == 2                       # ceil(24 / 16)
    assert cfg.tie_embeddings == overrides.get("tie_word_embeddings", True)
    toks = tokens(2, 7, seed=1)
    np.testing.assert_allclose(fg_logits(params, cfg, toks), hf_logits(model, toks), **TOL)


# --------------------------------------------------------------------------- cached decoding

def test_cached_decoding_equals_one_full_pass(reference):
    """Prefill, then a chunk, then one token at a time: every position's logits are those
    of one pass over the whole sequence (batch 2)."""
    _, _, cfg, params = reference
    toks = tokens(2, 12, seed=2)
    full = fg_logits(params, cfg, toks)
    cache = mamba.init_cache(cfg, 2, max_len=12)
    outs = []
    for start, stop in [(0, 5), (5, 8), *[(t, t + 1) for t in range(8, 12)]]:
        logits, cache = mamba.apply(params, cfg, jnp.asarray(toks[:, start:stop]), cache=cache)
        outs.append(np.asarray(logits))
    np.testing.assert_allclose(np.concatenate(outs, axis=1), full, **TOL)
    assert int(cache.pos) == 12


def test_left_padded_batch_with_cache_equals_each_row_alone(reference):
    """Rows of different lengths left-padded into one batch (prefilled, then decoded
    through the cache) give each row's own logits, and Hugging Face's on the real tokens."""
    model, _, cfg, params = reference
    lengths, pad_to, extra = (6, 3), 6, 3
    rows = [tokens(1, n + extra, seed=3 + i) for i, n in enumerate(lengths)]
    alone = [fg_logits(params, cfg, r) for r in rows]
    prompt = np.stack([np.pad(r[0, :n], (pad_to - n, 0)) for r, n in zip(rows, lengths)])
    mask = np.stack([np.arange(pad_to) >= pad_to - n for n in lengths])
    logits, cache = mamba.apply(params, cfg, jnp.asarray(prompt), attention_mask=jnp.asarray(mask),
                                cache=mamba.init_cache(cfg, 2, 16))
    reference_logits = hf_logits(model, prompt, mask)
    for i, n in enumerate(lengths):
        real = np.asarray(logits)[i, pad_to - n:]
        np.testing.assert_allclose(real, alone[i][0, :n], **TOL)
        np.testing.assert_allclose(real, reference_logits[i, pad_to - n:], **TOL)
    for t in range(extra):
        new = np.stack([r[0, n + t] for r, n in zip(rows, lengths)])[:, None]
        logits, cache = mamba.apply(params, cfg, jnp.asarray(new), cache=cache)
        for i, n in enumerate(lengths):
            np.testing.assert_allclose(np.asarray(logits)[i, 0], alone[i][0, n + t], **TOL)


def test_greedy_generation_matches_transformers_generate(reference):
    model, _, cfg, params = reference
    prompt, new_tokens = tokens(2, 5, seed=6), 8
    with torch.no_grad():
        expected = model.generate(torch.tensor(prompt, dtype=torch.long), do_sample=False,
                                  max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                  pad_token_id=0).numpy()[:, 5:]
    step = fungrad.jit(lambda p, t, c: mamba.apply(p, cfg, t, cache=c))
    logits, cache = step(params, jnp.asarray(prompt), mamba.init_cache(cfg, 2, 5 + new_tokens))
    generated = []
    for _ in range(new_tokens):
        nxt = jnp.argmax(logits[:, -1], axis=-1).astype(jnp.int32)[:, None]
        generated.append(np.asarray(nxt))
        logits, cache = step(params, nxt, cache)
    np.testing.assert_array_equal(np.concatenate(generated, axis=1), expected)


def _addresses(cache):
    return [np.asarray(x).__array_interface__["data"][0] for layer in cache.layers for x in layer]


def test_jitted_decode_step_never_retraces_and_updates_the_donated_cache_in_place(reference):
    """One trace serves every decode position, and each step writes the new convolution
    ring slot and SSM state into the donated cache's own buffers (no copy, no new
    allocation for the state)."""
    _, _, cfg, params = reference
    toks = tokens(2, 26, seed=7)
    full = fg_logits(params, cfg, toks)
    prefill = fungrad.jit(lambda p, t, c: mamba.apply(p, cfg, t, cache=c))
    step = fungrad.jit(lambda p, t, c: mamba.apply(p, cfg, t, cache=c), donate_argnums=2)
    logits, cache = prefill(params, jnp.asarray(toks[:, :6]), mamba.init_cache(cfg, 2, 26))
    addresses = None               # (the prefill returns views, which the first step copies)
    for t in range(6, 26):
        logits, cache = step(params, jnp.asarray(toks[:, t:t + 1]), cache)
        addresses = addresses or _addresses(cache)
        assert _addresses(cache) == addresses
        np.testing.assert_allclose(np.asarray(logits)[:, 0], full[:, t], **TOL)
    assert step._cache_size() == 1 and prefill._cache_size() == 1


# --------------------------------------------------------------------------- saving and loading

def test_save_pretrained_loads_in_transformers(tmp_path):
    cfg = mamba.PRESETS["tiny"]
    params = mamba.init(random.PRNGKey(0), cfg)
    mamba.save_pretrained(tmp_path, cfg, params)
    model = transformers.AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert type(model).__name__ == "MambaForCausalLM"
    toks = tokens(2, 7, seed=8)
    np.testing.assert_allclose(fg_logits(params, cfg, toks), hf_logits(model, toks), **TOL)
    assert mamba.Config.from_hf(json.load(open(tmp_path / "config.json"))) == cfg


def test_untied_save_roundtrip_in_transformers(tmp_path):
    cfg = mamba.Config(vocab_size=VOCAB, d_model=16, n_layers=1, d_state=4, dt_rank=2,
                       tie_embeddings=False, use_bias=True)
    params = tree.map(lambda x: x + 0.05, mamba.init(random.PRNGKey(1), cfg))
    mamba.save_pretrained(tmp_path, cfg, params)
    model = transformers.AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    toks = tokens(1, 6, seed=9)
    np.testing.assert_allclose(fg_logits(params, cfg, toks), hf_logits(model, toks), **TOL)


def test_init_matches_transformers_shapes_and_statistics(reference):
    model, _, _, _ = reference
    cfg = mamba.Config.from_hf(model.config.to_dict())
    params = mamba.init(random.PRNGKey(2), cfg)
    ours = hf.hf_from_params(mamba._table(cfg), params)
    theirs = {k: v for k, v in model.state_dict().items() if k != "lm_head.weight"}
    assert {k: v.shape for k, v in ours.items()} == {k: tuple(v.shape) for k, v in theirs.items()}
    A = -np.exp(ours["backbone.layers.0.mixer.A_log"])
    np.testing.assert_allclose(A[0], -np.arange(1, cfg.d_state + 1), rtol=1e-6)
    dt = np.log1p(np.exp(ours["backbone.layers.0.mixer.dt_proj.bias"]))          # softplus(bias)
    assert dt.min() >= cfg.dt_min * 0.999 and dt.max() <= cfg.dt_max * 1.001


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16], ids=["float16", "bfloat16"])
def test_half_precision_weights_load(reference, tmp_path, dtype):
    _, folder, cfg, params = reference
    config, tensors = hf.load_folder(folder)
    hf.save_folder(tmp_path, config, {k: v.astype(dtype) for k, v in tensors.items()})
    cfg16, params16 = mamba.from_pretrained(tmp_path)
    assert cfg16 == cfg
    for a, b in zip(tree.leaves(params16), tree.leaves(params)):
        assert a.dtype == np.float32
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b).astype(dtype).astype(np.float32))
    _, as_half = mamba.from_pretrained(tmp_path, dtype=dtype)
    assert all(x.dtype == dtype for x in tree.leaves(as_half))
    # Computing in half precision (the scan itself runs in float32): the logits stay
    # within a few half-precision roundings, relative to their scale, of float32 ones.
    toks = tokens(2, 6, seed=11)
    half, full = fg_logits(as_half, cfg, toks), fg_logits(params16, cfg, toks)
    assert half.dtype == dtype
    error = np.abs(half.astype(np.float32) - full).max()
    assert error < 8 * np.finfo(dtype).eps * np.abs(full).max()


def test_sharded_weights_load(reference, tmp_path):
    _, folder, cfg, params = reference
    config, tensors = hf.load_folder(folder)
    hf.save_folder(tmp_path, config, tensors, max_shard_bytes=8_000)
    assert len([f for f in os.listdir(tmp_path) if f.endswith(".safetensors")]) > 2
    _, loaded = mamba.from_pretrained(tmp_path)
    toks = tokens(1, 5)
    np.testing.assert_array_equal(fg_logits(loaded, cfg, toks), fg_logits(params, cfg, toks))


def _write(folder, config, tensors):
    hf.save_folder(folder, config, tensors)
    return folder


@pytest.mark.parametrize("damage, message", [
    (lambda c, t: t.pop("backbone.layers.1.mixer.D"),
     r"missing tensors \['backbone.layers.1.mixer.D'\]"),
    (lambda c, t: t.update(extra=np.zeros(3, np.float32)), r"unexpected tensors \['extra'\]"),
    (lambda c, t: c.update(state_size=6), r"'backbone.layers.0.mixer.A_log' has shape \(64, 8\); "
                                          r"the config implies \(64, 6\)"),
    (lambda c, t: c.update(hidden_act="gelu"), "hidden_act='gelu' is not supported"),
    (lambda c, t: c.update(model_type="llama"), "model_type 'llama' is not a Mamba model"),
])
def test_loading_errors_name_the_problem(reference, tmp_path, damage, message):
    _, folder, _, _ = reference
    config, tensors = hf.load_folder(folder)
    damage(config, tensors)
    with pytest.raises(hf.PretrainedError, match=message):
        mamba.from_pretrained(_write(tmp_path, config, tensors))


def test_truncated_weights_are_rejected(reference, tmp_path):
    _, folder, _, _ = reference
    config, tensors = hf.load_folder(folder)
    _write(tmp_path, config, tensors)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(hf.PretrainedError, match="model.safetensors"):
        mamba.from_pretrained(tmp_path)


# --------------------------------------------------------------------------- training

def test_jitted_training_reduces_the_loss():
    cfg = mamba.PRESETS["tiny"]
    params = mamba.init(random.PRNGKey(3), cfg)
    opt = optim.adamw(3e-3)
    state = opt.init(params)
    data = tokens(4, 13, seed=10)
    x, y = jnp.asarray(data[:, :-1]), jnp.asarray(data[:, 1:])

    @fungrad.jit
    def train_step(params, state):
        value, grads = fungrad.value_and_grad(mamba.loss)(params, cfg, x, y, train=True)
        updates, state = opt.update(grads, state, params)
        return optim.apply_updates(params, updates), state, value

    losses = []
    for _ in range(8):
        params, state, value = train_step(params, state)
        losses.append(float(value))
    assert losses[-1] < losses[0] - 0.1, losses
    assert all(np.isfinite(losses))


def test_mamba_130m_preset_has_the_published_size():
    params = fungrad.eval_shape(lambda: mamba.init(random.PRNGKey(0), mamba.PRESETS["mamba-130m"]))
    assert sum(int(np.prod(x.shape)) for x in tree.leaves(params)) == 129_135_360
    cache = mamba.init_cache(mamba.PRESETS["mamba-130m"], 1, 2048)
    assert cache.layers[0].conv.shape == (1, 1536, 4) and cache.layers[0].ssm.shape == (1, 1536, 16)
