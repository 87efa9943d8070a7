"""GPT-2 against Hugging Face ``transformers`` (CPU torch): logits, cached and batched
decoding, greedy generation, config variants, checkpoint round trips both ways, weight
dtypes, shards, loading errors, in-place cache updates under jit, and training."""
import json
import os

import numpy as np
import pytest
import torch
import transformers

import fungrad
import fungrad.numpy as jnp
from fungrad import optim, random, tree
from fungrad.models import gpt2, hf
from fungrad.models.hf import PretrainedError

TOL = dict(rtol=1e-4, atol=1e-4)
TINY = dict(vocab_size=100, n_positions=64, n_embd=32, n_layer=2, n_head=4, bos_token_id=None,
            eos_token_id=None)


def hf_model(seed=0, dtype=torch.float32, **overrides):
    """A tiny random ``GPT2LMHeadModel`` whose every weight is jittered (no norm weight is
    1, no bias 0), in eval mode."""
    torch.manual_seed(seed)
    config = transformers.GPT2Config(**{**TINY, **overrides})
    model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return model.to(dtype).eval()


def saved(model, tmp_path, name="hf"):
    path = str(tmp_path / name)
    model.save_pretrained(path)
    return path


def hf_logits(model, tokens, **kwargs):
    with torch.no_grad():
        out = model(torch.as_tensor(np.asarray(tokens), dtype=torch.long), **kwargs)
        return out.logits.float().numpy()


def tokens(shape, seed=0, vocab=100):
    return np.random.default_rng(seed).integers(0, vocab, shape).astype(np.int32)


def logits_of(params, cfg, toks, **kwargs):
    return np.asarray(gpt2.apply(params, cfg, jnp.asarray(toks), **kwargs)[0])


def decode_step(cfg):
    """One jitted step for prefill and decode, the cache donated."""
    return fungrad.jit(lambda p, t, c, m: gpt2.apply(p, cfg, t, cache=c, attention_mask=m),
                       donate_argnums=2)


def address(x):
    return x._value.__array_interface__["data"][0]


@pytest.fixture(scope="module")
def tied(tmp_path_factory):
    model = hf_model()
    cfg, params = gpt2.from_pretrained(saved(model, tmp_path_factory.mktemp("tied")))
    return model, cfg, params


# --------------------------------------------------------------------------- forward

def test_logits_match_hugging_face(tied):
    model, cfg, params = tied
    assert cfg.tie_word_embeddings and "lm_head" not in params
    toks = tokens((2, 12))
    logits, cache = gpt2.apply(params, cfg, jnp.asarray(toks))
    assert cache is None and logits.shape == (2, 12, 100)
    np.testing.assert_allclose(np.asarray(logits), hf_logits(model, toks), **TOL)


@pytest.mark.parametrize("overrides", [
    dict(tie_word_embeddings=False),
    dict(layer_norm_epsilon=1e-3, n_inner=40),
    dict(n_embd=24, n_head=3, n_layer=3),            # odd head count, head_dim 8
    dict(activation_function="gelu", n_embd=20, n_head=5),
    dict(activation_function="relu"),
], ids=["untied", "eps-n_inner", "three-heads", "exact-gelu", "relu"])
def test_config_variants_match_hugging_face(tmp_path, overrides):
    model = hf_model(seed=1, **overrides)
    cfg, params = gpt2.from_pretrained(saved(model, tmp_path))
    for k, v in overrides.items():
        assert getattr(cfg, k) == v
    assert ("lm_head" in params) == (not cfg.tie_word_embeddings)
    toks = tokens((2, 9), seed=1)
    np.testing.assert_allclose(logits_of(params, cfg, toks), hf_logits(model, toks), **TOL)


def test_left_padded_forward_matches_hugging_face_positions(tied):
    """Without a cache, padding is masked and positions count real tokens (HF given the
    same ``position_ids = cumsum(mask) - 1``)."""
    model, cfg, params = tied
    toks = tokens((2, 7), seed=2)
    mask = np.array([[0, 0, 0, 1, 1, 1, 1], [1] * 7], bool)
    ours = logits_of(params, cfg, toks, attention_mask=jnp.asarray(mask))
    position_ids = torch.as_tensor(np.maximum(np.cumsum(mask, 1) - 1, 0))
    ref = hf_logits(model, toks, attention_mask=torch.as_tensor(mask, dtype=torch.long),
                    position_ids=position_ids)
    np.testing.assert_allclose(ours[mask], ref[mask], **TOL)


# --------------------------------------------------------------------------- cached decoding

def test_cached_decoding_equals_full_forward_without_retracing_and_in_place(tied):
    """Prefill 4 tokens, then decode 20 one at a time through one jitted step with the
    cache donated: every position's logits equal the full forward pass, the decode shape
    is traced once, and every layer's cache buffers are reused in place."""
    _, cfg, params = tied
    B, prompt, steps = 2, 4, 20
    toks = tokens((B, prompt + steps), seed=3)
    full = logits_of(params, cfg, toks)
    step = decode_step(cfg)
    cache = gpt2.init_cache(cfg, B, 32)
    ones = lambda t: jnp.ones((B, t), bool)  # noqa: E731
    logits, cache = step(params, jnp.asarray(toks[:, :prompt]), cache, ones(prompt))
    np.testing.assert_allclose(np.asarray(logits), full[:, :prompt], **TOL)
    assert step._cache_size() == 1
    for t in range(prompt, prompt + steps):
        before = [(address(c.k), address(c.v)) for c in cache.layers]
        logits, cache = step(params, jnp.asarray(toks[:, t:t + 1]), cache, ones(1))
        np.testing.assert_allclose(np.asarray(logits[:, 0]), full[:, t], **TOL)
        assert [(address(c.k), address(c.v)) for c in cache.layers] == before
    assert step._cache_size() == 2  # the prefill's trace and one for every decode step
    assert int(cache.layers[0].pos) == prompt + steps


def test_left_padded_batch_with_cache_equals_each_row_alone(tied):
    _, cfg, params = tied
    lengths, pad_to, extra = (6, 3), 6, 4
    rows = [tokens((1, n + extra), seed=10 + n) for n in lengths]
    alone = [logits_of(params, cfg, r)[0] for r in rows]
    prompt = np.concatenate([np.pad(r[:, :n], ((0, 0), (pad_to - n, 0)))
                             for r, n in zip(rows, lengths)])
    mask = np.array([[i >= pad_to - n for i in range(pad_to)] for n in lengths])
    step = decode_step(cfg)
    logits, cache = step(params, jnp.asarray(prompt), gpt2.init_cache(cfg, 2, 16),
                         jnp.asarray(mask))
    for i, n in enumerate(lengths):
        np.testing.assert_allclose(np.asarray(logits[i, pad_to - n:]), alone[i][:n], **TOL)
    for t in range(extra):
        new = np.concatenate([r[:, n + t:n + t + 1] for r, n in zip(rows, lengths)])
        logits, cache = step(params, jnp.asarray(new), cache, jnp.ones((2, 1), bool))
        for i, n in enumerate(lengths):
            np.testing.assert_allclose(np.asarray(logits[i, 0]), alone[i][n + t], **TOL)


def greedy(params, cfg, prompt, mask, new_tokens):
    step = decode_step(cfg)
    B, T = prompt.shape
    logits, cache = step(params, jnp.asarray(prompt), gpt2.init_cache(cfg, B, T + new_tokens),
                         jnp.asarray(mask))
    out = []
    for _ in range(new_tokens):
        nxt = np.argmax(np.asarray(logits[:, -1]), axis=-1).astype(np.int32)[:, None]
        out.append(nxt)
        logits, cache = step(params, jnp.asarray(nxt), cache, jnp.ones((B, 1), bool))
    return np.concatenate(out, axis=1)


def test_greedy_generation_matches_hugging_face_generate(tied):
    """Token by token, for one prompt and for a left-padded batch of two."""
    model, cfg, params = tied
    prompt = tokens((2, 5), seed=4)
    mask = np.array([[0, 0, 1, 1, 1], [1] * 5], bool)
    prompt[0, :2] = 0
    for p, m in ((prompt[1:], mask[1:]), (prompt, mask)):
        with torch.no_grad():
            ref = model.generate(torch.as_tensor(p, dtype=torch.long),
                                 attention_mask=torch.as_tensor(m, dtype=torch.long),
                                 max_new_tokens=12, do_sample=False,
                                 pad_token_id=0)[:, p.shape[1]:].numpy()
        np.testing.assert_array_equal(greedy(params, cfg, p, m, 12), ref)


# --------------------------------------------------------------------------- checkpoints

@pytest.mark.parametrize("tie", [True, False], ids=["tied", "untied"])
def test_save_pretrained_loads_in_transformers(tmp_path, tie):
    cfg = gpt2.Config(**{**TINY, "tie_word_embeddings": tie, "n_embd": 24, "n_head": 3})
    params = gpt2.init(random.PRNGKey(0), cfg)
    gpt2.save_pretrained(tmp_path / "ours", cfg, params)
    model = transformers.AutoModelForCausalLM.from_pretrained(str(tmp_path / "ours"),
                                                              attn_implementation="eager").eval()
    assert type(model).__name__ == "GPT2LMHeadModel"
    toks = tokens((2, 8), seed=5)
    np.testing.assert_allclose(hf_logits(model, toks), logits_of(params, cfg, toks), **TOL)
    again_cfg, again = gpt2.from_pretrained(tmp_path / "ours")
    assert again_cfg == cfg
    for a, b in zip(tree.leaves(params), tree.leaves(again)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_sharded_weights_load_in_both(tmp_path, tied):
    model, cfg, params = tied
    gpt2.save_pretrained(tmp_path / "sharded", cfg, params, max_shard_bytes=20_000)
    files = os.listdir(tmp_path / "sharded")
    assert hf.INDEX in files and sum(f.endswith(".safetensors") for f in files) > 2
    toks = tokens((1, 6), seed=6)
    _, reloaded = gpt2.from_pretrained(tmp_path / "sharded")
    np.testing.assert_allclose(logits_of(reloaded, cfg, toks), hf_logits(model, toks), **TOL)
    theirs = transformers.AutoModelForCausalLM.from_pretrained(str(tmp_path / "sharded"),
                                                               attn_implementation="eager").eval()
    np.testing.assert_allclose(hf_logits(theirs, toks), hf_logits(model, toks), **TOL)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["float16", "bfloat16"])
def test_half_precision_weights_load(tmp_path, dtype):
    """Weights stored in 16 bits load exactly (widened to float32) and give the logits of
    the same rounded weights in float32."""
    model = hf_model(seed=2, dtype=dtype)
    cfg, params = gpt2.from_pretrained(saved(model, tmp_path))
    widened = model.float()
    np.testing.assert_array_equal(np.asarray(params["wte"]["embedding"]),
                                  widened.transformer.wte.weight.detach().numpy())
    assert np.asarray(params["blocks"][0]["ln_1"]["scale"]).dtype == np.float32
    toks = tokens((1, 8), seed=7)
    np.testing.assert_allclose(logits_of(params, cfg, toks), hf_logits(widened, toks), **TOL)


def test_released_checkpoint_names_load(tmp_path, tied):
    """The released GPT-2 files use bare ``GPT2Model`` names plus causal-mask buffers."""
    model, cfg, params = tied
    tensors = {k.removeprefix("transformer."): v.numpy() for k, v in model.state_dict().items()
               if k != "lm_head.weight"}
    for i in range(cfg.n_layer):
        tensors[f"h.{i}.attn.bias"] = np.tril(np.ones((1, 1, 64, 64), np.uint8))
        tensors[f"h.{i}.attn.masked_bias"] = np.array(-1e4, np.float32)
    hf.save_folder(tmp_path / "released", model.config.to_dict(), tensors)
    _, loaded = gpt2.from_pretrained(tmp_path / "released")
    for a, b in zip(tree.leaves(params), tree.leaves(loaded)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def _edit_folder(path, config=None, drop=(), add=None, resize=None):
    config_dict, tensors = hf.load_folder(path)
    config_dict.update(config or {})
    for name in drop:
        del tensors[name]
    tensors.update(add or {})
    for name, shape in (resize or {}).items():
        tensors[name] = np.zeros(shape, np.float32)
    hf.save_folder(path, config_dict, tensors)


@pytest.mark.parametrize("edit, message", [
    (dict(drop=["transformer.h.1.mlp.c_fc.bias"]),
     r"missing tensors \['transformer.h.1.mlp.c_fc.bias'\]"),
    (dict(add={"transformer.h.0.extra": np.zeros(3, np.float32)}),
     r"unexpected tensors \['transformer.h.0.extra'\]"),
    (dict(config={"n_embd": 40}),
     r"'transformer.wte.weight' has shape \(100, 32\); the config implies \(100, 40\)"),
    (dict(resize={"transformer.h.0.attn.c_attn.weight": (32, 95)}),
     r"c_attn.weight'.*multiple of 3"),
    (dict(config={"n_layer": 3}), r"missing tensors \[.*transformer.h.2.attn.c_attn.bias\[k\]"),
    (dict(config={"scale_attn_by_inverse_layer_idx": True}),
     "scale_attn_by_inverse_layer_idx=True is not supported"),
    (dict(config={"add_cross_attention": True}), "add_cross_attention=True is not supported"),
    (dict(config={"reorder_and_upcast_attn": True}),
     "reorder_and_upcast_attn=True is not supported"),
    (dict(config={"activation_function": "swish"}),
     "activation_function='swish' is not supported"),
    (dict(config={"model_type": "llama"}), "model_type 'llama' is not 'gpt2'"),
    (dict(config={"architectures": ["GPT2ForSequenceClassification"]}),
     "do not include GPT2LMHeadModel"),
], ids=["missing", "unexpected", "n_embd", "c_attn", "n_layer", "inverse-layer", "cross", "upcast",
        "act", "model_type", "architecture"])
def test_loading_errors_name_the_problem(tmp_path, tied, edit, message):
    model = tied[0]
    path = saved(model, tmp_path)
    _edit_folder(path, **edit)
    with pytest.raises(PretrainedError, match=message):
        gpt2.from_pretrained(path)


def test_truncated_weights_and_missing_folder_raise(tmp_path, tied):
    path = saved(tied[0], tmp_path)
    weights = os.path.join(path, hf.WEIGHTS)
    with open(weights, "r+b") as f:
        f.truncate(os.path.getsize(weights) - 100)
    with pytest.raises(PretrainedError, match="model.safetensors"):
        gpt2.from_pretrained(path)
    with pytest.raises(PretrainedError, match="not a local folder"):
        gpt2.from_pretrained(tmp_path / "nowhere")


def test_config_round_trip_and_presets():
    cfg = gpt2.PRESETS["tiny"]
    assert gpt2.Config.from_hf(json.loads(json.dumps(cfg.to_hf()))) == cfg
    assert hash(cfg) == hash(gpt2.Config.from_hf(cfg.to_hf()))
    sizes = {"gpt2": 124_439_808, "gpt2-medium": 354_823_168, "gpt2-large": 774_030_080,
             "gpt2-xl": 1_557_611_200}
    for name, size in sizes.items():
        shapes = fungrad.eval_shape(lambda: gpt2.init(random.PRNGKey(0), gpt2.PRESETS[name]))
        assert sum(int(np.prod(s.shape)) for s in tree.leaves(shapes)) == size, name
    with pytest.raises(ValueError, match="not divisible by n_head"):
        gpt2.Config(n_embd=30, n_head=4)


# --------------------------------------------------------------------------- training

def test_dropout_only_when_training_with_a_key():
    cfg = gpt2.PRESETS["tiny"]
    params = gpt2.init(random.PRNGKey(1), cfg)
    toks = jnp.asarray(tokens((2, 8), seed=8))
    ev = logits_of(params, cfg, toks)
    a = logits_of(params, cfg, toks, train=True, key=random.PRNGKey(2))
    b = logits_of(params, cfg, toks, train=True, key=random.PRNGKey(2))
    c = logits_of(params, cfg, toks, train=True, key=random.PRNGKey(3))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, ev) and not np.allclose(a, c)
    no_dropout = gpt2.Config(**{**TINY, "embd_pdrop": 0.0, "attn_pdrop": 0.0, "resid_pdrop": 0.0})
    np.testing.assert_allclose(
        logits_of(params, no_dropout, toks, train=True, key=random.PRNGKey(2)),
        logits_of(params, no_dropout, toks), **TOL)
    with pytest.raises(ValueError, match="PRNG key"):
        gpt2.apply(params, cfg, toks, train=True)


def test_more_tokens_than_positions_raise():
    """Learned positions end at n_positions: longer inputs or caches are refused, not
    silently given clamped positions."""
    cfg = gpt2.PRESETS["tiny"]
    params = gpt2.init(random.PRNGKey(1), cfg)
    n = cfg.n_positions
    assert gpt2.apply(params, cfg, jnp.zeros((1, n), jnp.int32))[0].shape == (1, n, cfg.vocab_size)
    with pytest.raises(ValueError, match=f"gpt2.apply: {n + 1} tokens .* n_positions \\({n}\\)"):
        gpt2.apply(params, cfg, jnp.zeros((1, n + 1), jnp.int32))
    with pytest.raises(ValueError, match=f"max_len {n + 1} .* n_positions"):
        gpt2.init_cache(cfg, 1, n + 1)


def test_jitted_adamw_training_lowers_the_loss():
    cfg = gpt2.PRESETS["tiny"]
    params = gpt2.init(random.PRNGKey(0), cfg)
    opt = optim.adamw(3e-3)
    state = opt.init(params)
    data = tokens((4, 17), seed=9, vocab=cfg.vocab_size)
    x, y = jnp.asarray(data[:, :-1]), jnp.asarray(data[:, 1:])

    @fungrad.jit
    def step(params, state, key):
        value, grads = fungrad.value_and_grad(gpt2.loss)(params, cfg, x, y, train=True, key=key)
        updates, state = opt.update(grads, state, params)
        return optim.apply_updates(params, updates), state, value

    first = float(gpt2.loss(params, cfg, x, y))
    for key in random.split(random.PRNGKey(5), 8):
        params, state, _ = step(params, state, key)
    assert float(gpt2.loss(params, cfg, x, y)) < first - 0.1
