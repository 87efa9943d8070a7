"""LLaMA against Hugging Face ``transformers``: logits for several configs, cached and
left-padded decoding, greedy generation, saving for and loading from ``transformers``
(float32/float16/bfloat16, sharded), loading errors, jitted decoding with a donated
cache, and training."""
import math
import os

import numpy as np
import pytest
import torch
import transformers

import fungrad
import fungrad.numpy as jnp
from fungrad import optim, random, tree
from fungrad.models import hf, llama
from fungrad.models.hf import PretrainedError
from fungrad.text.generate import left_pad
from hf_testing import TOL, address, build, generate, logits

VOCAB = 100


def hf_config(**overrides) -> transformers.LlamaConfig:
    base = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                rms_norm_eps=1e-5, tie_word_embeddings=False,
                rope_parameters={"rope_type": "default", "rope_theta": 500.0})
    return transformers.LlamaConfig(**{**base, **overrides})


LLAMA3 = {"rope_type": "llama3", "rope_theta": 500.0, "factor": 8.0, "low_freq_factor": 1.0,
          "high_freq_factor": 4.0, "original_max_position_embeddings": 32}
VARIANTS = {
    # GQA, Llama 3.1 RoPE scaling (head_dim 8 at theta 500: one low, one medium, two high
    # frequencies)
    "gqa-llama3": dict(rope_parameters=LLAMA3),
    # tied head, odd head count with one kv head, head_dim != hidden/heads, linear scaling
    "tied-odd-heads-linear": dict(
        hidden_size=24, num_attention_heads=3, num_key_value_heads=1, head_dim=10,
        tie_word_embeddings=True, rms_norm_eps=3e-6,
        rope_parameters={"rope_type": "linear", "rope_theta": 1000.0, "factor": 2.0}),
    # plain multi-head attention at the default theta, three layers
    "mha-default": dict(num_key_value_heads=4, num_hidden_layers=3, rms_norm_eps=1e-6,
                        rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """The default HF model, saved; and the fungrad model loaded from it."""
    model = build(hf_config(rope_parameters=LLAMA3))
    path = tmp_path_factory.mktemp("llama")
    model.save_pretrained(path)
    cfg, params = llama.from_pretrained(path)
    return model, path, cfg, params


def tokens(shape, seed=0):
    return np.random.RandomState(seed).randint(0, VOCAB, shape).astype(np.int32)


def ours(params, cfg, toks, mask=None):
    out, cache = llama.apply(params, cfg, jnp.asarray(toks),
                             attention_mask=None if mask is None else jnp.asarray(mask))
    assert cache is None
    return np.asarray(out)


# --------------------------------------------------------------------------- logits

@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_logits_match_transformers(variant, tmp_path):
    model = build(hf_config(**VARIANTS[variant]), seed=1)
    model.save_pretrained(tmp_path)
    cfg, params = llama.from_pretrained(tmp_path)
    assert cfg.tie_embeddings == model.config.tie_word_embeddings
    assert ("head" in params) != cfg.tie_embeddings
    toks = tokens((2, 11))
    np.testing.assert_allclose(ours(params, cfg, toks), logits(model, toks), **TOL)


def test_config_from_hf_reads_every_option():
    cfg = llama.Config.from_hf(hf_config(**VARIANTS["tied-odd-heads-linear"]).to_dict())
    assert (cfg.d_model, cfg.n_heads, cfg.n_kv_heads, cfg.head_dim, cfg.norm_eps) \
        == (24, 3, 1, 10, 3e-6)
    assert cfg.rope_theta == 1000.0 and cfg.rope_scaling == llama.RopeScaling("linear", 2.0)
    # the keys of transformers 4.x: rope_theta and rope_scaling with "type"
    old = {**hf_config().to_dict(), "rope_theta": 2e5,
           "rope_scaling": {"type": "linear", "factor": 4.0}}
    del old["rope_parameters"]
    cfg = llama.Config.from_hf(old)
    assert cfg.rope_theta == 2e5 and cfg.rope_scaling == llama.RopeScaling("linear", 4.0)
    assert llama.Config.from_hf(cfg.to_hf()) == cfg
    hash(cfg)


def test_presets():
    shapes = fungrad.eval_shape(lambda: llama.init(random.PRNGKey(0), llama.PRESETS["llama-7b"]))
    assert sum(math.prod(x.shape) for x in tree.leaves(shapes)) == 6_738_415_616   # LLaMA-7B
    cfg = llama.PRESETS["tiny"]
    params = llama.init(random.PRNGKey(0), cfg)
    out, _ = llama.apply(params, cfg, jnp.zeros((1, 3), jnp.int32))
    assert out.shape == (1, 3, cfg.vocab_size)


# --------------------------------------------------------------------------- decoding

def decode_step(cfg):
    return fungrad.jit(lambda p, t, c: llama.apply(p, cfg, t, cache=c), donate_argnums=2)


def test_cached_decoding_equals_full_forward(folder):
    model, _, cfg, params = folder
    toks = tokens((2, 12), seed=2)
    full = ours(params, cfg, toks)
    np.testing.assert_allclose(full, logits(model, toks), **TOL)
    step = decode_step(cfg)
    out, cache = step(params, jnp.asarray(toks[:, :5]), llama.init_cache(cfg, 2, 16))
    got = [np.asarray(out)]
    for t in range(5, 12):
        out, cache = step(params, jnp.asarray(toks[:, t:t + 1]), cache)
        got.append(np.asarray(out))
    np.testing.assert_allclose(np.concatenate(got, axis=1), full, **TOL)
    assert int(cache.layers[0].pos) == 12


def test_left_padded_batch_equals_each_row_alone(folder):
    model, _, cfg, params = folder
    rows = [tokens((n,), seed=n) for n in (9, 5, 7)]
    toks, mask = left_pad([r[:-3] for r in rows])         # prompts of 6, 2 and 4 tokens
    prompt_lengths = mask.sum(1)
    np.testing.assert_allclose(ours(params, cfg, toks, mask)[mask],
                               logits(model, toks, mask)[mask], **TOL)
    step = fungrad.jit(lambda p, t, m, c: llama.apply(p, cfg, t, cache=c, attention_mask=m))
    out, cache = step(params, jnp.asarray(toks), jnp.asarray(mask), llama.init_cache(cfg, 3, 16))
    alone = [ours(params, cfg, r[None])[0] for r in rows]
    for i, n in enumerate(prompt_lengths):
        np.testing.assert_allclose(np.asarray(out)[i, toks.shape[1] - n:], alone[i][:n], **TOL)
    for t in range(3):
        new = np.array([[r[n + t]] for r, n in zip(rows, prompt_lengths)], np.int32)
        out, cache = step(params, jnp.asarray(new), jnp.ones((3, 1), bool), cache)
        for i, n in enumerate(prompt_lengths):
            np.testing.assert_allclose(np.asarray(out)[i, 0], alone[i][n + t], **TOL)


def greedy(params, cfg, toks, mask, n_new):
    """Greedy decoding token by token through the cache."""
    step = fungrad.jit(lambda p, t, m, c: llama.apply(p, cfg, t, cache=c, attention_mask=m))
    out, cache = step(params, jnp.asarray(toks), jnp.asarray(mask),
                      llama.init_cache(cfg, len(toks), 32))
    generated = []
    for _ in range(n_new):
        nxt = np.argmax(np.asarray(out)[:, -1], axis=-1).astype(np.int32)[:, None]
        generated.append(nxt)
        out, cache = step(params, jnp.asarray(nxt), jnp.ones(nxt.shape, bool), cache)
    return np.concatenate(generated, axis=1)


def test_greedy_generation_matches_transformers_generate(folder):
    model, _, cfg, params = folder
    toks, mask = left_pad([tokens((6,), seed=3), tokens((3,), seed=4)])
    np.testing.assert_array_equal(greedy(params, cfg, toks, mask, 10),
                                  generate(model, toks, mask, 10))


def test_jitted_decode_with_donated_cache_never_retraces_and_reuses_the_buffer(folder):
    _, _, cfg, params = folder
    prefill, step = decode_step(cfg), decode_step(cfg)
    _, cache = prefill(params, jnp.asarray(tokens((2, 4))), llama.init_cache(cfg, 2, 32))
    addresses = set()
    for t in range(20):
        old = address(cache.layers[0].k)
        out, cache = step(params, jnp.asarray(tokens((2, 1), seed=t)), cache)
        assert address(cache.layers[0].k) == old              # written in place, not copied
        addresses.add(old)
    assert len(addresses) == 1 and step._cache_size() == 1     # one trace serves every position
    assert int(cache.layers[0].pos) == 24


# --------------------------------------------------------------------------- saving and loading

def test_save_pretrained_loads_in_transformers(folder, tmp_path):
    _, _, cfg, params = folder
    cfg = llama.Config(**{**cfg.__dict__, "tie_embeddings": True,
                          "rope_scaling": llama.RopeScaling("linear", 3.0)})
    params = llama.init(random.PRNGKey(1), cfg)
    # norms != 1
    params = tree.map(lambda x: x + 0.1 * random.normal(random.PRNGKey(2), x.shape), params)
    llama.save_pretrained(tmp_path, cfg, params)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        tmp_path, attn_implementation="eager").eval()
    assert model.config.tie_word_embeddings
    assert model.config.rope_parameters["rope_type"] == "linear"
    toks = tokens((2, 9))
    np.testing.assert_allclose(logits(model, toks), ours(params, cfg, toks), **TOL)
    cfg2, params2 = llama.from_pretrained(tmp_path)
    assert cfg2 == cfg and tree.all(tree.map(lambda a, b: bool(jnp.all(a == b)), params, params2))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_weights_load(folder, tmp_path, dtype):
    build(hf_config(), seed=5, dtype=dtype).save_pretrained(tmp_path)
    model = build(hf_config(), seed=5)   # the same weights rounded to dtype, computing in float32
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(dtype).float())
    cfg, params = llama.from_pretrained(tmp_path)
    assert params["embed"]["embedding"].dtype == jnp.float32
    toks = tokens((2, 8))
    np.testing.assert_allclose(ours(params, cfg, toks), logits(model, toks), **TOL)
    _, half = llama.from_pretrained(tmp_path, dtype=jnp.bfloat16)
    assert half["layers"][0]["attn"]["q"]["w"].dtype == jnp.bfloat16


def test_sharded_weights_load(folder, tmp_path):
    _, path, cfg, params = folder
    config, tensors = hf.load_folder(path)
    hf.save_folder(tmp_path, config, tensors, max_shard_bytes=20_000)
    assert len([f for f in os.listdir(tmp_path) if f.endswith(".safetensors")]) > 2
    _, again = llama.from_pretrained(tmp_path)
    assert tree.all(tree.map(lambda a, b: bool(jnp.all(a == b)), params, again))


def test_loading_errors_name_the_problem(folder, tmp_path):
    _, path, cfg, params = folder
    config, tensors = hf.load_folder(path)

    def write(name, config=config, tensors=tensors):
        hf.save_folder(tmp_path / name, config, tensors)
        return tmp_path / name

    missing = {k: v for k, v in tensors.items() if k != "model.layers.1.mlp.up_proj.weight"}
    with pytest.raises(PretrainedError,
                       match=r"missing tensors \['model.layers.1.mlp.up_proj.weight'\]"):
        llama.from_pretrained(write("missing", tensors=missing))
    extra = {**tensors, "model.layers.0.self_attn.q_proj.bias": np.zeros(32, np.float32)}
    with pytest.raises(PretrainedError,
                       match=r"unexpected tensors \['model.layers.0.self_attn.q_proj.bias'\]"):
        llama.from_pretrained(write("extra", tensors=extra))
    with pytest.raises(PretrainedError, match="k_proj.weight' has shape"):
        llama.from_pretrained(write("shape", config={**config, "num_key_value_heads": 4}))
    for option, value, message in [
            ("rope_parameters", {"rope_type": "yarn", "rope_theta": 1e4, "factor": 2.0},
             "rope scaling type 'yarn'"),
            ("attention_bias", True, "attention_bias=True"),
            ("mlp_bias", True, "mlp_bias=True"),
            ("hidden_act", "gelu", "hidden_act='gelu'"),
            ("model_type", "mistral", "model_type 'mistral'"),
            ("architectures", ["LlamaForSequenceClassification"], "architectures")]:
        with pytest.raises(PretrainedError, match=message):
            llama.Config.from_hf({**config, option: value})
    with pytest.raises(PretrainedError, match=r"lacks \['hidden_size'\]"):
        llama.Config.from_hf({k: v for k, v in config.items() if k != "hidden_size"})
    truncated = write("truncated")
    data = (truncated / "model.safetensors").read_bytes()
    (truncated / "model.safetensors").write_bytes(data[:len(data) // 2])
    with pytest.raises(PretrainedError, match="model.safetensors"):
        llama.from_pretrained(truncated)


# --------------------------------------------------------------------------- training

def test_loss_matches_transformers_and_training_reduces_it(folder):
    model, _, cfg, params = folder
    toks = tokens((4, 10), seed=6)
    with torch.no_grad():
        ids = torch.tensor(toks, dtype=torch.long)
        ref = float(model(ids, labels=ids).loss)
    inputs, targets = jnp.asarray(toks[:, :-1]), jnp.asarray(toks[:, 1:])
    np.testing.assert_allclose(float(llama.loss(params, cfg, inputs, targets)), ref, **TOL)
    opt = optim.adamw(3e-3)

    @fungrad.jit
    def train_step(params, opt_state):
        value, grads = fungrad.value_and_grad(llama.loss)(params, cfg, inputs, targets)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optim.apply_updates(params, updates), opt_state, value

    state, losses = opt.init(params), []
    for _ in range(6):
        params, state, value = train_step(params, state)
        losses.append(float(value))
    assert losses[-1] < losses[0] - 0.1 and train_step._cache_size() == 1


def test_attention_dropout_only_when_training_with_a_key():
    cfg = llama.Config(**{**llama.PRESETS["tiny"].__dict__, "attention_dropout": 0.5})
    params = llama.init(random.PRNGKey(0), cfg)
    toks = jnp.asarray(tokens((1, 6)))
    plain = np.asarray(llama.apply(params, cfg, toks)[0])
    dropped = np.asarray(llama.apply(params, cfg, toks, train=True, key=random.PRNGKey(1))[0])
    assert not np.allclose(plain, dropped)
    evaluated = llama.apply(params, cfg, toks, train=False, key=random.PRNGKey(1))[0]
    np.testing.assert_array_equal(np.asarray(evaluated), plain)
    with pytest.raises(ValueError, match="needs a PRNG key"):
        llama.apply(params, cfg, toks, train=True)
