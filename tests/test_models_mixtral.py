"""Mixtral against Hugging Face ``transformers``: logits for several expert/attention
configs, the router's load-balancing loss and the training loss (values and gradients),
cached and left-padded decoding, greedy generation, saving and loading, errors, jitted
decoding with a donated cache, ``vmap``, and training."""
import math

import numpy as np
import pytest
import torch
import transformers

import fungrad
import fungrad.numpy as jnp
from fungrad import optim, random, tree
from fungrad.models import hf, mixtral
from fungrad.models.hf import PretrainedError
from fungrad.nn import moe
from fungrad.text.generate import left_pad
from hf_testing import TOL, address, build, generate, logits

VOCAB = 100


def hf_config(**overrides) -> transformers.MixtralConfig:
    base = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=40, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                rms_norm_eps=1e-5, num_local_experts=4, num_experts_per_tok=2,
                tie_word_embeddings=False, router_aux_loss_coef=0.02,
                rope_parameters={"rope_type": "default", "rope_theta": 1e4})
    return transformers.MixtralConfig(**{**base, **overrides})


VARIANTS = {
    "top2-of-4-gqa": {},
    # one expert per token out of three, tied head, odd head count, explicit head_dim, linear RoPE
    "top1-of-3-tied-odd-heads": dict(
        num_local_experts=3, num_experts_per_tok=1, tie_word_embeddings=True,
        hidden_size=24, num_attention_heads=3, num_key_value_heads=1, head_dim=6,
        rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "linear", "rope_theta": 500.0, "factor": 2.0}),
    # three of five experts, multi-head attention
    "top3-of-5-mha": dict(num_local_experts=5, num_experts_per_tok=3, num_key_value_heads=4),
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    model = build(hf_config())
    path = tmp_path_factory.mktemp("mixtral")
    model.save_pretrained(path)
    cfg, params = mixtral.from_pretrained(path)
    return model, path, cfg, params


def tokens(shape, seed=0):
    return np.random.RandomState(seed).randint(0, VOCAB, shape).astype(np.int32)


def ours(params, cfg, toks, mask=None):
    return np.asarray(mixtral.apply(params, cfg, jnp.asarray(toks),
                                    attention_mask=None if mask is None else jnp.asarray(mask))[0])


def same_params(a, b):
    return tree.all(tree.map(lambda x, y: bool(jnp.all(x == y)), a, b))


# --------------------------------------------------------------------------- logits and losses

@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_logits_match_transformers(variant, tmp_path):
    model = build(hf_config(**VARIANTS[variant]), seed=1)
    model.save_pretrained(tmp_path)
    cfg, params = mixtral.from_pretrained(tmp_path)
    assert (cfg.n_experts, cfg.top_k) == (model.config.num_local_experts,
                                          model.config.num_experts_per_tok)
    toks = tokens((2, 9))
    np.testing.assert_allclose(ours(params, cfg, toks), logits(model, toks), **TOL)


def test_routing_weights_are_renormalised_top_k_of_the_softmax():
    logits_ = np.array([[2.0, 0.5, 1.0, -1.0]], np.float32)
    weights, experts = moe.route(jnp.asarray(logits_), 2)
    p = np.exp(logits_) / np.exp(logits_).sum()
    np.testing.assert_array_equal(np.asarray(experts), [[0, 2]])
    np.testing.assert_allclose(np.asarray(weights), [[p[0, 0], p[0, 2]]] / (p[0, 0] + p[0, 2]),
                               rtol=1e-6)


def test_aux_loss_matches_transformers(folder):
    model, _, cfg, params = folder
    toks, mask = left_pad([tokens((8,), seed=1), tokens((5,), seed=2)])
    with torch.no_grad():
        ref = model(torch.tensor(toks, dtype=torch.long), output_router_logits=True).aux_loss
        ref_masked = model(torch.tensor(toks, dtype=torch.long), output_router_logits=True,
                           attention_mask=torch.tensor(mask, dtype=torch.long)).aux_loss
    _, _, aux = mixtral.apply(params, cfg, jnp.asarray(toks), return_aux=True)
    _, _, aux_masked = mixtral.apply(params, cfg, jnp.asarray(toks), return_aux=True,
                                     attention_mask=jnp.asarray(mask))
    np.testing.assert_allclose(float(aux), float(ref), **TOL)
    np.testing.assert_allclose(float(aux_masked), float(ref_masked), **TOL)
    assert abs(float(aux) - float(aux_masked)) > 1e-3   # the mask matters


def test_loss_and_gradients_match_torch_autograd(folder):
    """The training loss, cross-entropy + coef x aux, in value and in gradient through
    attention, router and experts."""
    model, _, cfg, params = folder
    toks = tokens((2, 7), seed=4)
    inputs, targets = jnp.asarray(toks[:, :-1]), jnp.asarray(toks[:, 1:])
    model.zero_grad()
    out = model(torch.tensor(toks[:, :-1], dtype=torch.long), output_router_logits=True)
    ce = torch.nn.functional.cross_entropy(out.logits.reshape(-1, VOCAB),
                                           torch.tensor(toks[:, 1:].reshape(-1)).long())
    ref = ce + cfg.router_aux_loss_coef * out.aux_loss
    ref.backward()
    value, grads = fungrad.value_and_grad(mixtral.loss)(params, cfg, inputs, targets)
    np.testing.assert_allclose(float(value), float(ref.detach()), **TOL)
    assert cfg.router_aux_loss_coef == 0.02 and float(out.aux_loss.detach()) > 1
    layer = model.model.layers[1]
    experts = layer.mlp.experts
    inter = cfg.d_ff
    g_expert = grads["layers"][1]["mlp"]["experts"][2]
    pairs = [(grads["layers"][1]["mlp"]["router"]["w"], layer.mlp.gate.weight.grad.T),
             (g_expert["gate"]["w"], experts.gate_up_proj.grad[2, :inter].T),
             (g_expert["up"]["w"], experts.gate_up_proj.grad[2, inter:].T),
             (g_expert["down"]["w"], experts.down_proj.grad[2].T),
             (grads["layers"][0]["attn"]["q"]["w"],
              model.model.layers[0].self_attn.q_proj.weight.grad.T),
             (grads["embed"]["embedding"], model.model.embed_tokens.weight.grad)]
    for ours_, theirs in pairs:
        np.testing.assert_allclose(np.asarray(ours_), theirs.numpy(), **TOL)


def test_config_and_presets():
    cfg = mixtral.Config.from_hf(hf_config(**VARIANTS["top1-of-3-tied-odd-heads"]).to_dict())
    assert (cfg.n_experts, cfg.top_k, cfg.head_dim, cfg.tie_embeddings) == (3, 1, 6, True)
    assert cfg.rope_scaling == mixtral.RopeScaling("linear", 2.0)
    assert cfg.router_aux_loss_coef == 0.02
    assert mixtral.Config.from_hf(cfg.to_hf()) == cfg
    hash(cfg)
    shapes = fungrad.eval_shape(
        lambda: mixtral.init(random.PRNGKey(0), mixtral.PRESETS["mixtral-8x7b"]))
    assert sum(math.prod(x.shape) for x in tree.leaves(shapes)) == 46_702_792_704   # Mixtral-8x7B
    tiny = mixtral.PRESETS["tiny"]
    out, _ = mixtral.apply(mixtral.init(random.PRNGKey(0), tiny), tiny,
                           jnp.zeros((1, 3), jnp.int32))
    assert out.shape == (1, 3, tiny.vocab_size)


# --------------------------------------------------------------------------- decoding

def test_cached_and_left_padded_decoding(folder):
    model, _, cfg, params = folder
    toks = tokens((2, 10), seed=5)
    full = ours(params, cfg, toks)
    step = fungrad.jit(lambda p, t, m, c: mixtral.apply(p, cfg, t, cache=c, attention_mask=m))
    out, cache = step(params, jnp.asarray(toks[:, :4]), jnp.ones((2, 4), bool),
                      mixtral.init_cache(cfg, 2, 16))
    got = [np.asarray(out)]
    for t in range(4, 10):
        out, cache = step(params, jnp.asarray(toks[:, t:t + 1]), jnp.ones((2, 1), bool), cache)
        got.append(np.asarray(out))
    np.testing.assert_allclose(np.concatenate(got, axis=1), full, **TOL)

    rows = [tokens((n,), seed=n) for n in (8, 4, 6)]
    padded, mask = left_pad([r[:-2] for r in rows])
    np.testing.assert_allclose(ours(params, cfg, padded, mask)[mask],
                               logits(model, padded, mask)[mask], **TOL)
    out, cache = step(params, jnp.asarray(padded), jnp.asarray(mask),
                      mixtral.init_cache(cfg, 3, 16))
    alone = [ours(params, cfg, r[None])[0] for r in rows]
    lengths = mask.sum(1)
    for i, n in enumerate(lengths):
        np.testing.assert_allclose(np.asarray(out)[i, padded.shape[1] - n:], alone[i][:n], **TOL)
    for t in range(2):
        new = np.array([[r[n + t]] for r, n in zip(rows, lengths)], np.int32)
        out, cache = step(params, jnp.asarray(new), jnp.ones((3, 1), bool), cache)
        for i, n in enumerate(lengths):
            np.testing.assert_allclose(np.asarray(out)[i, 0], alone[i][n + t], **TOL)


def test_greedy_generation_matches_transformers_generate(folder):
    model, _, cfg, params = folder
    toks, mask = left_pad([tokens((5,), seed=6), tokens((2,), seed=7)])
    step = fungrad.jit(lambda p, t, m, c: mixtral.apply(p, cfg, t, cache=c, attention_mask=m))
    out, cache = step(params, jnp.asarray(toks), jnp.asarray(mask), mixtral.init_cache(cfg, 2, 32))
    generated = []
    for _ in range(8):
        nxt = np.argmax(np.asarray(out)[:, -1], axis=-1).astype(np.int32)[:, None]
        generated.append(nxt)
        out, cache = step(params, jnp.asarray(nxt), jnp.ones(nxt.shape, bool), cache)
    np.testing.assert_array_equal(np.concatenate(generated, axis=1), generate(model, toks, mask, 8))


def test_jitted_decode_with_donated_cache_never_retraces_and_reuses_the_buffer(folder):
    _, _, cfg, params = folder
    step = fungrad.jit(lambda p, t, c: mixtral.apply(p, cfg, t, cache=c), donate_argnums=2)
    _, cache = mixtral.apply(params, cfg, jnp.asarray(tokens((2, 3))),
                             cache=mixtral.init_cache(cfg, 2, 32))
    # the first call may copy the eager cache
    _, cache = step(params, jnp.asarray(tokens((2, 1))), cache)
    first = address(cache.layers[1].v)
    for t in range(20):
        _, cache = step(params, jnp.asarray(tokens((2, 1), seed=t)), cache)
        assert address(cache.layers[1].v) == first
    assert step._cache_size() == 1 and int(cache.layers[1].pos) == 24


def test_vmap_over_sequences_equals_the_batched_call(folder):
    _, _, cfg, params = folder
    toks = jnp.asarray(tokens((3, 6), seed=8))
    per_row = fungrad.vmap(lambda t: mixtral.apply(params, cfg, t[None])[0][0])(toks)
    np.testing.assert_allclose(np.asarray(per_row), ours(params, cfg, np.asarray(toks)), **TOL)


# --------------------------------------------------------------------------- saving and loading

def test_save_pretrained_loads_in_transformers(tmp_path):
    cfg = mixtral.Config(**{**mixtral.PRESETS["tiny"].__dict__, "vocab_size": VOCAB, "n_layers": 1})
    params = mixtral.init(random.PRNGKey(1), cfg)
    # norms != 1
    params = tree.map(lambda x: x + 0.1 * random.normal(random.PRNGKey(2), x.shape), params)
    mixtral.save_pretrained(tmp_path, cfg, params, max_shard_bytes=50_000)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        tmp_path, attn_implementation="eager").eval()
    toks = tokens((2, 7))
    np.testing.assert_allclose(logits(model, toks), ours(params, cfg, toks), **TOL)
    cfg2, params2 = mixtral.from_pretrained(tmp_path)   # sharded
    assert cfg2 == cfg and same_params(params, params2)


def test_bfloat16_weights_load(folder, tmp_path):
    model, _, cfg, params = folder
    model.to(torch.bfloat16).save_pretrained(tmp_path)
    model.float()
    _, loaded = mixtral.from_pretrained(tmp_path)
    rounded = tree.map(lambda x: jnp.asarray(x).astype(jnp.bfloat16).astype(jnp.float32), params)
    assert same_params(loaded, rounded)


def test_loading_errors_name_the_problem(folder, tmp_path):
    _, path, cfg, params = folder
    config, tensors = hf.load_folder(path)
    gone = "model.layers.1.block_sparse_moe.experts.3.w2.weight"
    hf.save_folder(tmp_path / "missing", config, {k: v for k, v in tensors.items() if k != gone})
    with pytest.raises(PretrainedError, match=rf"missing tensors \['{gone}'\]"):
        mixtral.from_pretrained(tmp_path / "missing")
    hf.save_folder(tmp_path / "experts", {**config, "num_local_experts": 3}, tensors)
    with pytest.raises(PretrainedError, match=r"unexpected tensors \[.*experts\.3\.w1\.weight"):
        mixtral.from_pretrained(tmp_path / "experts")
    hf.save_folder(tmp_path / "shape", {**config, "intermediate_size": 48}, tensors)
    with pytest.raises(PretrainedError, match="w1.weight' has shape"):
        mixtral.from_pretrained(tmp_path / "shape")
    for option, value, message in [("sliding_window", 16, "sliding_window=16"),
                                   ("model_type", "llama", "model_type 'llama'"),
                                   ("hidden_act", "gelu", "hidden_act='gelu'")]:
        with pytest.raises(PretrainedError, match=message):
            mixtral.Config.from_hf({**config, option: value})


# --------------------------------------------------------------------------- training

def test_training_with_router_jitter_reduces_the_loss(folder):
    _, _, cfg, params = folder
    cfg = mixtral.Config(**{**cfg.__dict__, "router_jitter_noise": 0.01})
    toks = tokens((4, 10), seed=9)
    inputs, targets = jnp.asarray(toks[:, :-1]), jnp.asarray(toks[:, 1:])
    opt = optim.adamw(3e-3)

    @fungrad.jit
    def train_step(params, opt_state, key):
        value, grads = fungrad.value_and_grad(mixtral.loss)(params, cfg, inputs, targets,
                                                            train=True, key=key)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optim.apply_updates(params, updates), opt_state, value

    state, losses = opt.init(params), []
    for i in range(6):
        params, state, value = train_step(params, state, random.PRNGKey(i))
        losses.append(float(value))
    assert losses[-1] < losses[0] - 0.1 and train_step._cache_size() == 1
    jittered = mixtral.apply(params, cfg, inputs, train=True, key=random.PRNGKey(0))[0]
    assert not np.allclose(np.asarray(jittered), np.asarray(mixtral.apply(params, cfg, inputs)[0]))
    with pytest.raises(ValueError, match="needs a PRNG key"):
        mixtral.loss(params, cfg, inputs, targets, train=True)
