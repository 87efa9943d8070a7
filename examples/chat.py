"""Chat with a tiny LLaMA trained on Shakespeare's dialogue, and speculative decoding with a
smaller draft model.

The corpus: the bundled tiny-Shakespeare text is cut into speeches (a ``NAME:`` line and the
lines spoken), and runs of consecutive speeches become conversations whose turns alternate
user/assistant, each rendered with the ChatML template (``fungrad.text.apply_chat_template``).
The tokenizer has one id per character plus one for each of the template's special tokens
``<|im_start|>`` and ``<|im_end|>``. Two LLaMA models (``fungrad.models.llama``: RMSNorm,
rotary positions, grouped-query attention, SwiGLU) learn the rendered text as a stream of
characters: the target (4 blocks of width 128) and a draft (1 block of width 64).

Then the target chats: each user message is added to the conversation, the history is
rendered with the generation prompt (its oldest exchanges left out where the prompt and a
reply would not fit the context, ``--block-size``), and the reply streams character by
character (``fungrad.text.stream``) until ``<|im_end|>``.

Last, speculative decoding (``fungrad.text.speculative_generate``): the draft proposes
``gamma`` characters, the target checks them in one call. On the first user turns of
held-out conversations it prints the acceptance rate and the speed-up over decoding with
the target alone, greedy (the text must be the target's own, character for character) and
sampled, for several ``gamma``; ``speculative.png`` plots them. Each timing is the fastest
of ``--repeat`` passes after one that compiles, and the target alone is timed again beside
each ``gamma``, as the load of a shared machine varies.

Run:  python examples/chat.py
      python examples/chat.py --quick
"""
from __future__ import annotations

import argparse
import functools
import re
import time
from collections.abc import Callable, Iterable, Sequence
from importlib import resources

import gallery  # the helper beside this script
import numpy as np

import fungrad
from fungrad import optim, random, train
from fungrad.models import llama
from fungrad.text import (
    CharTokenizer,
    Model,
    SpeculativeStats,
    apply_chat_template,
    generate,
    speculative_generate,
    stream,
)

TEMPLATE = "chatml"
START, END = "<|im_start|>", "<|im_end|>"
USER_MESSAGES = ["Good morrow, my lord. What news from the court?",
                 "Who comes here? Speak, and tell me thy name.",
                 "I pray thee, be gentle with the king."]

Message = dict[str, str]


# --------------------------------------------------------------------------- the corpus

def speeches(text: str) -> list[str | None]:
    """The speeches of a play text in order: the lines after each ``NAME:`` line, joined by
    newlines; ``None`` where a name stands with no lines (the text lost them), which breaks
    the dialogue there."""
    out: list[str | None] = []
    for block in text.split("\n\n"):
        lines = block.strip("\n").split("\n")
        if lines[0].endswith(":"):
            out.append("\n".join(lines[1:]) or None)
    return out


def conversations(spoken: Sequence[str | None], turns: int, max_chars: int) -> list[list[Message]]:
    """Runs of up to ``turns`` consecutive speeches as conversations of alternating user and
    assistant messages. A speech longer than ``max_chars`` (or a missing one) ends the run;
    runs of one speech are dropped (a conversation needs a reply)."""
    out, run = [], []
    for speech in [*spoken, None]:
        if speech is None or len(speech) > max_chars or len(run) == turns:
            if len(run) >= 2:
                roles = ["user", "assistant"] * turns
                out.append([{"role": role, "content": s} for role, s in zip(roles, run)])
            run = []
        if speech is not None and len(speech) <= max_chars:
            run.append(speech)
    return out


class ChatTokenizer:
    """One id per character of a training text (a :class:`~fungrad.text.CharTokenizer`),
    then one id per special token, which the text splits on before the characters.

    >>> tok = ChatTokenizer.train("ab", ["<|x|>"])
    >>> tok.encode("b<|x|>a"), tok.decode([2, 0])
    ([1, 2, 0], '<|x|>a')
    """

    def __init__(self, chars: CharTokenizer, special: Sequence[str]):
        clashes = [s for s in special if set(s) <= set(chars.chars)]
        if clashes or not special:
            raise ValueError(f"ChatTokenizer: special tokens {list(special)} must be given and "
                             f"use a character outside the text's (these do not: {clashes})")
        self.chars, self.special = chars, list(special)
        self._split = re.compile("(" + "|".join(re.escape(s) for s in self.special) + ")")

    @classmethod
    def train(cls, text: str, special: Sequence[str]) -> ChatTokenizer:
        """The characters of ``text`` (its special tokens removed) and ``special``."""
        plain = re.sub("|".join(re.escape(s) for s in special), "", text)
        return cls(CharTokenizer.train(plain), special)

    @property
    def vocab_size(self) -> int:
        """Characters and special tokens."""
        return self.chars.vocab_size + len(self.special)

    def token_id(self, special: str) -> int:
        """The id of one special token."""
        return self.chars.vocab_size + self.special.index(special)

    def encode(self, text: str) -> list[int]:
        """Ids of ``text``: its special tokens one id each, every other character one id."""
        ids = []
        for i, piece in enumerate(self._split.split(text)):
            ids += [self.token_id(piece)] if i % 2 else self.chars.encode(piece)
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        """The text of ``ids``, special tokens spelled out."""
        n = self.chars.vocab_size
        return "".join(self.special[i - n] if i >= n else self.chars.decode([i])
                       for i in map(int, ids))


def build_corpus(args: argparse.Namespace
                 ) -> tuple[ChatTokenizer, list[list[Message]], np.ndarray, np.ndarray]:
    """The tokenizer, the held-out conversations, and the training and validation ids (the
    last ``--val-frac`` of the conversations, rendered one after another)."""
    text = resources.files("fungrad").joinpath("data/tinyshakespeare.txt").read_text()
    spoken = speeches(text)
    chats = conversations(spoken, args.turns, args.max_chars)
    cut = int(len(chats) * (1 - args.val_frac))
    rendered = [apply_chat_template(c, TEMPLATE, add_generation_prompt=False) for c in chats]
    tok = ChatTokenizer.train(text, [START, END])
    train_ids = np.array(tok.encode("".join(rendered[:cut])), np.int32)
    val_ids = np.array(tok.encode("".join(rendered[cut:])), np.int32)
    print(f"{sum(s is not None for s in spoken)} speeches -> {len(chats)} conversations of 2 "
          f"to {args.turns} turns ({cut} for training, {len(chats) - cut} held out); "
          f"{len(train_ids):,} training and {len(val_ids):,} validation tokens; vocabulary "
          f"{tok.chars.vocab_size} characters + {START}, {END}")
    print(f"a conversation as the model reads it:\n{rendered[0]}")
    return tok, chats[cut:], train_ids, val_ids


# --------------------------------------------------------------------------- training

def windows(rng: np.random.Generator, ids: np.ndarray, batch: int,
            length: int) -> tuple[np.ndarray, np.ndarray]:
    """A batch of random windows of ``ids`` and the same windows one token later."""
    rows = rng.integers(0, len(ids) - length - 1, batch)[:, None] + np.arange(length)
    return ids[rows], ids[rows + 1]


def train_model(name: str, cfg: llama.Config, steps: int, data: tuple[np.ndarray, np.ndarray],
                args: argparse.Namespace, log: train.MetricsWriter) -> Model:
    """A LLaMA of ``cfg`` trained with AdamW for ``steps`` steps on random windows of the
    training ids; logs ``{name}_loss`` and, at the end, ``{name}_val_loss`` (the mean over
    a fixed set of validation windows)."""
    params = llama.init(random.PRNGKey(args.seed), cfg)
    n_params = sum(x.size for x in fungrad.tree.leaves(params))
    schedule = optim.warmup_cosine_decay_schedule(0.0, args.lr, max(1, steps // 10), steps,
                                                  args.lr / 10)
    opt = optim.adamw(schedule, b2=0.99, weight_decay=0.1)
    opt_state = opt.init(params)

    @fungrad.jit
    def step(params, opt_state, x, y):
        loss, grads = fungrad.value_and_grad(llama.loss)(params, cfg, x, y)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optim.apply_updates(params, updates), opt_state, loss

    print(f"\n{name}: LLaMA with {cfg.n_layers} blocks of width {cfg.d_model} ({cfg.n_heads} "
          f"query and {cfg.n_kv_heads} key/value heads), {n_params:,} parameters; {steps} steps "
          f"of {args.batch_size}x{args.block_size} tokens", flush=True)
    rng, t0 = np.random.default_rng(args.seed), time.perf_counter()
    for i in range(1, steps + 1):
        x, y = windows(rng, data[0], args.batch_size, args.block_size)
        params, opt_state, loss = step(params, opt_state, x, y)
        log.write(i, **{f"{name}_loss": loss})
        if i % 100 == 0 or i == steps:
            seconds = time.perf_counter() - t0
            print(f"{name} step {i}: loss {float(loss):.3f} ({seconds:.0f} s)", flush=True)
    val_loss = fungrad.jit(lambda params, x, y: llama.loss(params, cfg, x, y))
    val_rng = np.random.default_rng(1234)
    val = float(np.mean([val_loss(params, *windows(val_rng, data[1], args.batch_size,
                                                   args.block_size)) for _ in range(8)]))
    log.write(steps, **{f"{name}_val_loss": val})
    print(f"{name} validation loss {val:.3f}")
    return Model(llama, params, cfg)


# --------------------------------------------------------------------------- chatting

def chat_prompt(tok: ChatTokenizer, history: list[Message], budget: int) -> tuple[list[int], int]:
    """The ids of ``history`` rendered with the generation prompt, the oldest exchanges
    dropped until at most ``budget`` ids remain, and how many messages were dropped."""
    dropped = 0
    while True:
        ids = tok.encode(apply_chat_template(history[dropped:], TEMPLATE))
        if len(ids) <= budget or len(history) - dropped <= 1:
            return ids, dropped
        dropped += 2


def chat(model: Model, tok: ChatTokenizer, args: argparse.Namespace) -> list[Message]:
    """A conversation: each of ``USER_MESSAGES`` in turn, the reply streamed as it is made."""
    history: list[Message] = []
    end = tok.token_id(END)
    key = random.PRNGKey(args.seed)
    print(f"\nchat (temperature {args.temperature}, top-p 0.9; each reply streamed until {END}):")
    for turn, message in enumerate(USER_MESSAGES):
        history.append({"role": "user", "content": message})
        prompt, dropped = chat_prompt(tok, history, model.cfg.max_len - args.max_new_tokens)
        if dropped:
            print(f"({dropped} oldest messages left out: the prompt and a "
                  f"{args.max_new_tokens}-token reply must fit the {model.cfg.max_len}-token "
                  "context)")
        print(f"user: {message}\nassistant: ", end="", flush=True)
        reply = []
        for token in stream(model, prompt, max_new_tokens=args.max_new_tokens,
                            temperature=args.temperature, top_p=0.9, stop_tokens=[end],
                            key=random.fold_in(key, turn), max_len=model.cfg.max_len):
            if token != end:
                reply.append(token)
                print(tok.decode([token]), end="", flush=True)
        print()
        history.append({"role": "assistant", "content": tok.decode(reply)})
    return history


# --------------------------------------------------------------------------- speculative decoding

def timed(decode: Callable[[list[int], int], list[int]], prompts: list[list[int]],
          repeat: int) -> tuple[list[list[int]], float]:
    """Every prompt's new tokens (``decode(prompt, index)``), and the seconds of the fastest
    of ``repeat`` passes over the prompts, after a first pass that compiles each shape the
    decoding meets (same prompts and keys, so the same shapes)."""
    out = [decode(p, i) for i, p in enumerate(prompts)]
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        again = [decode(p, i) for i, p in enumerate(prompts)]
        best = min(best, time.perf_counter() - t0)
        if again != out:
            raise RuntimeError("timed: the same prompts and keys gave other tokens")
    return out, best


def decode_plain(target: Model, prompt: list[int], i: int, *, temperature: float,
                 args: argparse.Namespace, end: int) -> list[int]:
    """The target's reply to ``prompt`` on its own, one cached decode step per token."""
    return generate(target, [prompt], max_new_tokens=args.max_new_tokens, temperature=temperature,
                    stop_tokens=[end], key=random.fold_in(random.PRNGKey(args.seed), i),
                    max_len=target.cfg.max_len)[0]


def decode_speculative(target: Model, draft: Model, prompt: list[int], i: int, *, gamma: int,
                       temperature: float, args: argparse.Namespace, end: int,
                       stats: list[SpeculativeStats]) -> list[int]:
    """The target's reply to ``prompt`` with ``draft`` proposing ``gamma`` tokens at a time;
    appends the run's statistics to ``stats``."""
    out, s = speculative_generate(target, draft, prompt, max_new_tokens=args.max_new_tokens,
                                  gamma=gamma, temperature=temperature, stop_tokens=[end],
                                  key=random.fold_in(random.PRNGKey(args.seed), i),
                                  max_len=target.cfg.max_len)
    stats.append(s)
    return out


def compare_speculative(target: Model, draft: Model, tok: ChatTokenizer,
                        held_out: list[list[Message]], args: argparse.Namespace,
                        log: train.MetricsWriter) -> list[dict]:
    """Target-only decoding against speculative decoding on the first user turns of the
    held-out conversations (those that leave room for a full reply in the context), greedy
    and sampled, for each ``gamma`` of ``args.gammas``."""
    room = target.cfg.max_len - args.max_new_tokens
    firsts = (tok.encode(apply_chat_template(c[:1], TEMPLATE)) for c in held_out)
    prompts = [p for p in firsts if len(p) <= room][:args.prompts]
    end = tok.token_id(END)
    rows = []
    print(f"\nspeculative decoding on the first user turn of {len(prompts)} held-out "
          f"conversation{'s' * (len(prompts) != 1)} (up to {args.max_new_tokens} new tokens each):")
    print(f"{'sampling':>9} {'gamma':>5} {'tokens':>6} {'target ms/token':>15} {'speculative':>11} "
          f"{'accepted':>8} {'target calls':>12} {'speed-up':>8}")
    for temperature in (0.0, args.temperature):
        plain = functools.partial(decode_plain, target, temperature=temperature, args=args,
                                  end=end)
        for gamma in args.gammas:  # the target alone is timed beside each gamma: the load varies
            base, base_s = timed(plain, prompts, args.repeat)
            base_ms = 1e3 * base_s / sum(map(len, base))
            stats: list[SpeculativeStats] = []
            speculative = functools.partial(decode_speculative, target, draft, gamma=gamma,
                                            temperature=temperature, args=args, end=end,
                                            stats=stats)
            out, spec_s = timed(speculative, prompts, args.repeat)
            one_pass = stats[-len(prompts):]                   # every pass is the same
            tokens = sum(map(len, out))
            accepted = sum(s.accepted for s in one_pass)
            proposed = sum(s.proposed for s in one_pass)
            r = {"temperature": temperature, "gamma": gamma, "tokens": tokens,
                 "target_ms": base_ms, "speculative_ms": 1e3 * spec_s / tokens,
                 "acceptance": accepted / proposed,
                 "target_calls": sum(s.target_calls for s in one_pass),
                 "same_as_target": out == base}
            r["speedup"] = r["target_ms"] / r["speculative_ms"]
            rows.append(r)
            metric = "greedy" if temperature == 0 else "sampled"
            mode = "greedy" if temperature == 0 else f"T={temperature:g}"
            log.write(gamma, **{f"{metric}_acceptance": r["acceptance"],
                                f"{metric}_speedup": r["speedup"]})
            print(f"{mode:>9} {gamma:>5} {tokens:>6} {base_ms:>15.2f} {r['speculative_ms']:>11.2f} "
                  f"{r['acceptance']:>8.0%} {r['target_calls']:>12} {r['speedup']:>7.2f}x",
                  flush=True)
    greedy = [r for r in rows if r["temperature"] == 0]
    print("greedy speculative text is the target's own: "
          f"{'yes, for every gamma' if all(r['same_as_target'] for r in greedy) else 'NO'}")
    return rows


def plot_speculative(rows: list[dict]):
    def draw(plt):
        fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
        for temperature in sorted({r["temperature"] for r in rows}):
            mine = [r for r in rows if r["temperature"] == temperature]
            label = "greedy" if temperature == 0 else f"sampled, T={temperature:g}"
            gammas = [r["gamma"] for r in mine]
            left.plot(gammas, [r["acceptance"] for r in mine], "o-", label=label)
            right.plot(gammas, [r["speedup"] for r in mine], "o-", label=label)
        left.set_ylabel("draft tokens accepted")
        right.set_ylabel("speed-up over the target alone")
        right.axhline(1.0, color="gray", lw=0.8)
        for ax in (left, right):
            ax.set_xticks(sorted({r["gamma"] for r in rows}))
            ax.set_xlabel("gamma (draft tokens per target call)")
            ax.legend()
        fig.tight_layout()
        return fig
    return draw


# --------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> None:
    ap = gallery.parser(__doc__)
    ap.add_argument("--steps", type=int, default=600, help="training steps of the target model")
    ap.add_argument("--draft-steps", type=int, default=600, help="training steps of the draft")
    ap.add_argument("--d-model", type=int, default=128, help="width of the target model")
    ap.add_argument("--n-layers", type=int, default=4, help="blocks of the target model")
    ap.add_argument("--draft-d-model", type=int, default=64, help="width of the draft model")
    ap.add_argument("--draft-n-layers", type=int, default=1, help="blocks of the draft model")
    ap.add_argument("--batch-size", type=int, default=8, help="windows per training step")
    ap.add_argument("--block-size", type=int, default=256,
                    help="tokens per training window, and the context length of the models")
    ap.add_argument("--lr", type=float, default=3e-3, help="peak learning rate")
    ap.add_argument("--turns", type=int, default=4, help="most speeches per conversation")
    ap.add_argument("--max-chars", type=int, default=300, help="longest speech kept, in characters")
    ap.add_argument("--val-frac", type=float, default=0.05, help="conversations held out")
    ap.add_argument("--max-new-tokens", type=int, default=120, help="longest reply, in characters")
    ap.add_argument("--temperature", type=float, default=0.8,
                    help="temperature of the chat and of sampled speculative decoding")
    ap.add_argument("--prompts", type=int, default=4,
                    help="held-out prompts of the speculative comparison")
    ap.add_argument("--repeat", type=int, default=2,
                    help="timed passes over the prompts (the fastest is kept)")
    ap.add_argument("--gammas", type=int, nargs="+", default=[1, 2, 3, 4],
                    help="draft tokens per target call")
    args = ap.parse_args(argv)
    if args.quick:
        args.steps, args.draft_steps, args.d_model, args.n_layers = 20, 10, 32, 1
        args.draft_d_model, args.block_size, args.max_new_tokens = 16, 128, 24
        args.prompts, args.repeat, args.gammas = 1, 1, [2]
    counts = (args.steps, args.draft_steps, args.n_layers, args.draft_n_layers, args.max_new_tokens,
              args.prompts, args.repeat, *args.gammas)
    if min(counts) < 1 or args.turns < 2 or args.d_model % 4 or args.draft_d_model % 4:
        ap.error("--steps, --draft-steps, --n-layers, --draft-n-layers, --max-new-tokens, "
                 "--prompts, --repeat and --gammas must be >= 1, --turns >= 2, the widths "
                 "multiples of 4")
    if args.max_new_tokens >= args.block_size:
        ap.error(f"--max-new-tokens ({args.max_new_tokens}) must leave room for a prompt in "
                 f"--block-size ({args.block_size})")
    if not 0 < args.temperature:
        ap.error(f"--temperature must be > 0 (greedy decoding is compared anyway), "
                 f"got {args.temperature}")
    run_dir = gallery.start_run("chat", args)
    tok, held_out, train_ids, val_ids = build_corpus(args)

    def config(d_model: int, n_layers: int) -> llama.Config:
        return llama.Config(vocab_size=tok.vocab_size, d_model=d_model, n_layers=n_layers,
                            n_heads=4, n_kv_heads=2, d_ff=3 * d_model, max_len=args.block_size)
    with train.MetricsWriter(run_dir) as log:
        data = (train_ids, val_ids)
        target = train_model("target", config(args.d_model, args.n_layers), args.steps, data,
                             args, log)
        draft = train_model("draft", config(args.draft_d_model, args.draft_n_layers),
                            args.draft_steps, data, args, log)
        chat(target, tok, args)
        rows = compare_speculative(target, draft, tok, held_out, args, log)
    gallery.save_picture(run_dir, "speculative.png", plot_speculative(rows))
    gallery.finish(run_dir)


if __name__ == "__main__":
    main()
