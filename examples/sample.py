"""Generate text from a run of ``examples/shakespeare_gpt.py``, streaming each character.

Loads the run's ``config.json``, tokenizer and latest checkpoint, then decodes with the
KV cache (``fungrad.text.stream``), one jitted step per character.

Run:  python examples/sample.py runs/<timestamp> --prompt "ROMEO:" --max-new-tokens 500
"""
from __future__ import annotations

import argparse
import json
import os

# the script beside this one
from shakespeare_gpt import CHECKPOINT_FILE, CONFIG_FILE, model_params, sample_chars

from fungrad import random, train
from fungrad.models import gpt2
from fungrad.text import CharTokenizer, Model


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("run_dir", help="a run directory written by shakespeare_gpt.py")
    ap.add_argument("--prompt", default="\n",
                    help="text to continue (characters of the training text)")
    ap.add_argument("--max-new-tokens", type=int, default=500, help="characters to generate")
    ap.add_argument("--temperature", type=float, default=0.8,
                    help="sampling temperature (0: greedy)")
    ap.add_argument("--top-k", type=int, default=None,
                    help="sample from the k likeliest characters")
    ap.add_argument("--seed", type=int, default=0, help="seed of the sampling key")
    return ap


def load_model(run_dir: str) -> tuple[Model, CharTokenizer]:
    """The trained model of ``run_dir`` (its latest checkpoint) and its tokenizer."""
    with open(os.path.join(run_dir, CONFIG_FILE)) as f:
        cfg = gpt2.Config(**json.load(f)["model"])
    params = model_params(train.load_checkpoint(os.path.join(run_dir, CHECKPOINT_FILE)))
    return Model(gpt2, params, cfg), CharTokenizer.load(run_dir)


def main(argv: list[str] | None = None) -> None:
    ap = parser()
    args = ap.parse_args(argv)
    if args.max_new_tokens < 1:
        ap.error(f"--max-new-tokens must be >= 1, got {args.max_new_tokens}")
    model, tok = load_model(args.run_dir)
    try:
        if not tok.encode(args.prompt):
            ap.error("--prompt is empty (a newline starts a fresh speech)")
    except ValueError as e:
        ap.error(f"--prompt: {e}")
    print(args.prompt, end="", flush=True)
    for ch in sample_chars(model, tok, args.prompt, args.max_new_tokens,
                           temperature=args.temperature, top_k=args.top_k,
                           key=random.PRNGKey(args.seed)):
        print(ch, end="", flush=True)
    print()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # Ctrl-C ends the stream quietly
        print()
