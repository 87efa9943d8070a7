"""Decoding: sampling filters against Hugging Face's logits processors, batched generation
against full forward passes and transformers' generate, beam search against brute force,
speculative sampling against the target distribution (chi-square)."""
import itertools

import numpy as np
import pytest
import torch
from scipy import stats
from transformers import GPT2LMHeadModel
from transformers.generation import logits_process as hf_lp

import fungrad.numpy as jnp
from fungrad import random
from fungrad.models import gpt2, mamba
from fungrad.text import (Model, Sampling, beam_search, decode_functions, generate, process_logits,
                          speculative_generate, stream)

RNG = np.random.default_rng(0)


def tiny_gpt2(seed: int, scale: float = 40.0, **overrides) -> Model:
    base = dict(vocab_size=40, n_positions=64, n_embd=32, n_layer=2, n_head=4)
    cfg = gpt2.Config(**{**base, **overrides})
    params = gpt2.init(random.PRNGKey(seed), cfg)
    # larger embeddings than GPT-2's initialisation: next-token distributions far from uniform
    params = {**params, "wte": {"embedding": params["wte"]["embedding"] * scale}}
    return Model(gpt2, params, cfg)


def full_forward_greedy(model: Model, prompt: list, n: int) -> list:
    seq = list(prompt)
    for _ in range(n):
        logits, _ = model.module.apply(model.params, model.cfg, jnp.asarray([seq], jnp.int32))
        seq.append(int(np.argmax(np.asarray(logits)[0, -1])))
    return seq[len(prompt):]


# --------------------------------------------------------------------------- sampling filters

@pytest.mark.parametrize("settings,hf", [
    (Sampling(temperature=0.7), [hf_lp.TemperatureLogitsWarper(0.7)]),
    (Sampling(top_k=5), [hf_lp.TopKLogitsWarper(5)]),
    (Sampling(top_p=0.8), [hf_lp.TopPLogitsWarper(0.8)]),
    (Sampling(min_p=0.1), [hf_lp.MinPLogitsWarper(0.1)]),
    (Sampling(temperature=1.3, top_k=10, top_p=0.9, min_p=0.05),
     [hf_lp.TemperatureLogitsWarper(1.3), hf_lp.TopKLogitsWarper(10), hf_lp.TopPLogitsWarper(0.9),
      hf_lp.MinPLogitsWarper(0.05)]),
])
def test_filters_equal_hugging_face_warpers(settings, hf):
    logits = RNG.standard_normal((3, 50)).astype(np.float32) * 3
    want = torch.from_numpy(logits.copy())
    for warper in hf:
        want = warper(None, want)
    got = np.asarray(process_logits(jnp.asarray(logits), settings))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want.numpy()))
    finite = ~np.isinf(got)
    np.testing.assert_allclose(got[finite], want.numpy()[finite], rtol=1e-6)


def test_repetition_penalty_equals_hugging_face():
    logits = RNG.standard_normal((2, 30)).astype(np.float32) * 3
    ids = np.array([[1, 4, 4, 7], [0, 2, 29, 3]])
    seen = np.zeros((2, 30), bool)
    np.put_along_axis(seen, ids, True, axis=1)
    want = hf_lp.RepetitionPenaltyLogitsProcessor(1.5)(torch.from_numpy(ids),
                                                       torch.from_numpy(logits.copy()))
    got = process_logits(jnp.asarray(logits), Sampling(repetition_penalty=1.5), jnp.asarray(seen))
    np.testing.assert_allclose(np.asarray(got), want.numpy(), rtol=1e-6)


@pytest.mark.parametrize("kwargs,fragment", [
    (dict(temperature=-1.0), "temperature"), (dict(top_p=0.0), "top_p"), (dict(top_p=1.5), "top_p"),
    (dict(top_k=0), "top_k"), (dict(min_p=2.0), "min_p"),
    (dict(repetition_penalty=0.0), "repetition_penalty"),
])
def test_invalid_sampling_parameters_name_the_argument(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        generate(tiny_gpt2(0), [[1, 2]], max_new_tokens=2, key=random.PRNGKey(0), **kwargs)


# --------------------------------------------------------------------------- generate

def test_batched_left_padded_greedy_equals_each_prompt_alone_and_never_retraces():
    model = tiny_gpt2(1)
    prompts = [[5, 6, 7, 8, 9], [3], [10, 11, 12]]
    out = generate(model, prompts, max_new_tokens=20, temperature=0)
    for prompt, got in zip(prompts, out):
        assert got == full_forward_greedy(model, prompt, 20)
    _, _, advance = decode_functions(gpt2, model.cfg, Sampling(temperature=0))
    assert advance._cache_size() == 1


def test_greedy_generation_equals_transformers_generate(tmp_path):
    model = tiny_gpt2(2, bos_token_id=0, eos_token_id=0)
    gpt2.save_pretrained(tmp_path, model.cfg, model.params)
    hf = GPT2LMHeadModel.from_pretrained(tmp_path, attn_implementation="eager").eval()
    prompts = [[5, 6, 7, 8], [9, 10]]
    ids = torch.tensor([[5, 6, 7, 8], [0, 0, 9, 10]])
    mask = torch.tensor([[1, 1, 1, 1], [0, 0, 1, 1]])
    with torch.no_grad():
        want = hf.generate(ids, attention_mask=mask, max_new_tokens=12, do_sample=False,
                           min_new_tokens=12, pad_token_id=0)[:, 4:].tolist()
    assert generate(model, prompts, max_new_tokens=12, temperature=0) == want


def test_each_row_stops_on_its_own_stop_token_and_string():
    model = tiny_gpt2(3)
    prompts = [[1, 2, 3], [4, 5]]
    free = generate(model, prompts, max_new_tokens=15, temperature=0)
    stop = free[0][4]
    out = generate(model, prompts, max_new_tokens=15, temperature=0, stop_tokens=[stop])
    assert out[0] == free[0][:free[0].index(stop) + 1]
    assert out[1] == (free[1][:free[1].index(stop) + 1] if stop in free[1] else free[1])
    decode = lambda ids: "".join(chr(65 + i) for i in ids)
    target = decode(free[1][3:5])
    out = generate(model, prompts, max_new_tokens=15, temperature=0, stop_strings=[target],
                   decode=decode)
    assert target in decode(out[1]) and target not in decode(out[1][:-1])


def test_stream_yields_what_generate_returns():
    model, key = tiny_gpt2(4), random.PRNGKey(7)
    kwargs = dict(max_new_tokens=12, temperature=0.9, top_k=8, top_p=0.95, key=key)
    assert list(stream(model, [1, 2, 3], **kwargs)) == generate(model, [[1, 2, 3]], **kwargs)[0]


def test_sampling_is_reproducible_and_respects_top_k():
    model = tiny_gpt2(5)
    a = generate(model, [[1, 2]] * 4, max_new_tokens=10, temperature=1.0, top_k=1,
                 key=random.PRNGKey(1))
    assert a == [full_forward_greedy(model, [1, 2], 10)] * 4  # top_k=1 is greedy
    b = generate(model, [[1, 2]], max_new_tokens=10, key=random.PRNGKey(3))
    assert b == generate(model, [[1, 2]], max_new_tokens=10, key=random.PRNGKey(3))


def test_recurrent_models_generate_too():
    cfg = mamba.PRESETS["tiny"]
    model = Model(mamba, mamba.init(random.PRNGKey(0), cfg), cfg)
    assert generate(model, [[1, 2, 3]], max_new_tokens=6, temperature=0)[0] \
        == full_forward_greedy(model, [1, 2, 3], 6)


@pytest.mark.parametrize("prompts,kwargs,fragment", [
    ([[]], {}, "prompt 0 is empty"), ([], {}, "non-empty list"),
    ([[1, 99]], {}, "outside \\[0, 40\\)"),
    ([[1] * 10], dict(max_len=8), "the cache holds 8"),
    ([[1]], dict(max_new_tokens=0), "max_new_tokens"),
    ([[1]], dict(temperature=1.0, key=None), "needs a PRNG"),
    ([[1]], dict(stop_strings=["x"]), "needs `decode`"),
])
def test_bad_requests_raise_clearly(prompts, kwargs, fragment):
    kwargs = {"max_new_tokens": 3, "temperature": 0, **kwargs}
    with pytest.raises(ValueError, match=fragment):
        generate(tiny_gpt2(0), prompts, **kwargs)


# --------------------------------------------------------------------------- beam search

def sequence_logprob(model: Model, prompt: list, tokens: list) -> float:
    logits, _ = model.module.apply(model.params, model.cfg,
                                   jnp.asarray([prompt + tokens], jnp.int32))
    logp = np.asarray(logits, np.float64)[0, len(prompt) - 1:-1]
    top = logp.max(-1, keepdims=True)
    logp = logp - np.log(np.exp(logp - top).sum(-1, keepdims=True)) - top
    return float(sum(logp[i, t] for i, t in enumerate(tokens)))


@pytest.mark.parametrize("length_penalty", [1.0, 0.0, 2.0])
def test_beam_search_finds_the_brute_force_optimum(length_penalty):
    model = tiny_gpt2(6, vocab_size=6)
    prompt, eos, n = [1, 2], 0, 3
    candidates = [list(s) for k in range(1, n + 1) for s in itertools.product(range(6), repeat=k)
                  if (eos not in s[:-1]) and (s[-1] == eos or k == n)]
    scored = sorted(((sequence_logprob(model, prompt, c) / len(c) ** length_penalty, c)
                     for c in candidates), reverse=True)
    hyps = beam_search(model, prompt, num_beams=36, max_new_tokens=n, eos_id=eos,
                       length_penalty=length_penalty, early_stopping="never")
    assert hyps[0].tokens == scored[0][1]
    assert [h.tokens for h in hyps[:5]] == [c for _, c in scored[:5]]
    np.testing.assert_allclose([h.score for h in hyps[:5]], [s for s, _ in scored[:5]], rtol=1e-4)


def test_one_beam_is_greedy_and_more_beams_never_score_worse():
    model = tiny_gpt2(7)
    greedy = generate(model, [[3, 4]], max_new_tokens=6, temperature=0)[0]
    assert beam_search(model, [3, 4], num_beams=1, max_new_tokens=6)[0].tokens == greedy
    scores = [beam_search(model, [3, 4], num_beams=b, max_new_tokens=6,
                          early_stopping="never")[0].score
              for b in (1, 4, 16)]
    assert scores[0] <= scores[1] + 1e-9 and scores[1] <= scores[2] + 1e-9


# --------------------------------------------------------------------------- speculative

def exact_two_token_distribution(model: Model, prompt: list, settings: Sampling) -> np.ndarray:
    """P(x1, x2 | prompt) of the target after the same filters, by full forward passes."""
    V = model.cfg.vocab_size

    def probs(seq: list) -> np.ndarray:
        logits = model.module.apply(model.params, model.cfg, jnp.asarray([seq], jnp.int32))[0]
        processed = np.asarray(process_logits(logits[:, -1], settings))
        return np.asarray(jnp.exp(jnp.asarray(processed, np.float64)))[0]
    p1 = probs(prompt) / probs(prompt).sum()
    table = np.zeros((V, V))
    for x1 in range(V):
        if p1[x1] > 0:
            p2 = probs(prompt + [x1])
            table[x1] = p1[x1] * p2 / p2.sum()
    return table.ravel()


def chi_square_p(counts: np.ndarray, expected_probs: np.ndarray) -> float:
    """Goodness of fit, pooling cells expected below 5 draws into one."""
    n = counts.sum()
    expected_probs = expected_probs / expected_probs.sum()
    small = expected_probs * n < 5
    obs = np.append(counts[~small], counts[small].sum())
    exp = np.append(expected_probs[~small], expected_probs[small].sum()) * n
    keep = exp > 0
    if obs[~keep].sum():          # a draw the distribution gives probability zero
        return 0.0
    return float(stats.chisquare(obs[keep], exp[keep] * obs[keep].sum() / exp[keep].sum()).pvalue)


def test_speculative_sampling_draws_from_the_target_distribution():
    target, draft = tiny_gpt2(8, 4.0, vocab_size=8), tiny_gpt2(9, 4.0, vocab_size=8, n_layer=1)
    settings, prompt, n = Sampling(temperature=1.0), [1, 2, 3], 800
    exact = exact_two_token_distribution(target, prompt, settings)
    counts, accepted, proposed = np.zeros(64), 0, 0
    for i in range(n):
        out, s = speculative_generate(target, draft, prompt, max_new_tokens=2, gamma=2,
                                      key=random.PRNGKey(i))
        counts[out[0] * 8 + out[1]] += 1
        accepted, proposed = accepted + s.accepted, proposed + s.proposed
    assert chi_square_p(counts, exact) > 1e-3
    assert 0 < accepted < proposed          # the draft differs from the target but is often right
    # the same test rejects the draft's own distribution: it has the power to fail
    assert chi_square_p(counts, exact_two_token_distribution(draft, prompt, settings)) < 1e-3


def test_greedy_speculative_decoding_equals_greedy_target_decoding():
    target, draft = tiny_gpt2(10), tiny_gpt2(11, n_layer=1)
    out, s = speculative_generate(target, draft, [4, 5, 6], max_new_tokens=16, gamma=3,
                                  temperature=0)
    assert out == generate(target, [[4, 5, 6]], max_new_tokens=16, temperature=0)[0]
    assert s.target_calls < 16 or s.accepted == 0
    same, s = speculative_generate(target, target, [4, 5, 6], max_new_tokens=16, gamma=3,
                                   temperature=0)
    assert same == out and s.acceptance_rate == 1.0 and s.target_calls == 4


def test_speculative_decoding_ends_when_the_cache_is_full():
    """A ``max_len`` below prompt + ``max_new_tokens`` ends decoding as ``generate`` does
    (it wrote past the caches and returned garbage)."""
    target, draft = tiny_gpt2(10), tiny_gpt2(11, n_layer=1)
    for max_len in (9, 12):
        out, _ = speculative_generate(target, draft, [4, 5, 6], max_new_tokens=16, gamma=4,
                                      temperature=0, max_len=max_len)
        expected = generate(target, [[4, 5, 6]], max_new_tokens=16, temperature=0)[0][:max_len - 3]
        assert out == expected and generate(target, [[4, 5, 6]], max_new_tokens=16, temperature=0,
                                            max_len=max_len)[0] == expected


def test_speculative_decoding_needs_attention_caches():
    cfg = mamba.PRESETS["tiny"]
    recurrent = Model(mamba, mamba.init(random.PRNGKey(0), cfg), cfg)
    with pytest.raises(ValueError, match="no attention KV cache"):
        speculative_generate(recurrent, recurrent, [1, 2], max_new_tokens=2, temperature=0)
