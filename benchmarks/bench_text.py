"""Tokenizer speed: encoding MB/s of fungrad's BPETokenizer against tiktoken and Hugging
Face ``tokenizers`` with the same ranks, on the bundled Shakespeare text and on a mixed
Unicode corpus; and the time to train the vocabulary.

Every encoder runs single-threaded on the same text; fungrad is timed with a cold word
cache (a fresh tokenizer) and a warm one. ``--only NAME`` times one library in a process
of its own (the default runs all of them in one process, then each alone).
Run: python benchmarks/bench_text.py [--vocab 512] [--only fungrad|tiktoken|hf]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from importlib import resources

sys.path.insert(0, os.path.dirname(__file__))
from _timing import load_average  # noqa: E402

from fungrad.text import BPETokenizer  # noqa: E402

BLOCKS = [(0x41, 0x5A), (0x61, 0x7A), (0x410, 0x44F), (0x3B1, 0x3C9), (0x4E00, 0x4FFF),
          (0x3041, 0x3096), (0x0627, 0x064A), (0x05D0, 0x05EA), (0x0905, 0x0939), (0x0E01, 0x0E30),
          (0xAC00, 0xAD00)]
EMOJI = ["👋🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "❤️‍🔥", "🇫🇷", "✨", "🚀"]


def shakespeare() -> str:
    return resources.files("fungrad").joinpath("data/tinyshakespeare.txt").read_text()


def mixed_corpus(size: int = 1_000_000, seed: int = 0) -> str:
    """Words from many scripts, emoji with joiners, code, numbers and whitespace runs."""
    rng = random.Random(seed)
    words = ["".join(chr(rng.randint(*rng.choice(BLOCKS))) for _ in range(rng.randint(1, 8)))
             for _ in range(3000)]
    extras = EMOJI + ["def f(x):\n    return x ** 2", "  \t ", "\n\n", "12345", "3.14159", "0xFF",
                      "it's", "don't"]
    out, n = [], 0
    while n < size:
        piece = rng.choice(words) if rng.random() < 0.85 else rng.choice(extras)
        out.append(piece + rng.choice([" ", " ", " ", "\n", ", ", ". "]))
        n += len(out[-1])
    return "".join(out)


def encoders(tok: BPETokenizer, directory: str) -> dict:
    """``{name: (make, encode)}``: ``make()`` builds a fresh encoder."""
    import tiktoken
    from tokenizers import Tokenizer, models, pre_tokenizers
    tok.save(directory)

    def hf():
        t = Tokenizer(models.BPE.from_file(os.path.join(directory, "encoder.json"),
                                           os.path.join(directory, "vocab.bpe")))
        t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        return t
    return {
        "fungrad (cold)": (lambda: BPETokenizer.load(directory), lambda e, s: e.encode_ordinary(s)),
        "fungrad (warm)": (None, lambda e, s: e.encode_ordinary(s)),
        "tiktoken": (lambda: tiktoken.Encoding("bench", pat_str=tok.pattern,
                                               mergeable_ranks=tok.mergeable_ranks(),
                                               special_tokens={}),
                     lambda e, s: e.encode_ordinary(s)),
        "hf tokenizers": (hf, lambda e, s: e.encode(s).ids),
    }


def measure(only: str | None, vocab: int) -> dict:
    text = shakespeare()
    t0 = time.perf_counter()
    tok = BPETokenizer.train(text, vocab)
    train_s = time.perf_counter() - t0
    corpora = {"shakespeare": text, "mixed unicode": mixed_corpus()}
    results: dict = {"train_seconds": train_s, "mb_per_s": {}}
    with tempfile.TemporaryDirectory() as d:
        warm = None
        for name, (make, encode) in encoders(tok, d).items():
            if only and not name.startswith(only):
                continue
            for corpus, s in corpora.items():
                best = float("inf")
                for _ in range(3):
                    enc = make() if make is not None else warm
                    t0 = time.perf_counter()
                    encode(enc, s)
                    best = min(best, time.perf_counter() - t0)
                    if name == "fungrad (cold)":
                        warm = enc
                results["mb_per_s"][f"{name} | {corpus}"] = len(s.encode()) / best / 1e6
    return results


def report(results: dict, title: str) -> None:
    print(f"== {title}  (load average {load_average()})")
    print("BPE training, vocabulary as given, on the Shakespeare text: "
          f"{results['train_seconds']:.2f} s")
    rates = results["mb_per_s"]
    for key, rate in rates.items():
        name, corpus = key.split(" | ")
        ref = rates.get(f"tiktoken | {corpus}")
        ratio = f"{rate / ref:6.2f}x tiktoken" if ref else ""
        print(f"  {name:<16} {corpus:<14} {rate:8.2f} MB/s  {ratio}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vocab", type=int, default=512, help="BPE vocabulary size (default 512)")
    ap.add_argument("--only", choices=["fungrad", "tiktoken", "hf"],
                    help="time one library in this process")
    ap.add_argument("--json", action="store_true",
                    help="print the results as JSON (used for the separate runs)")
    args = ap.parse_args()
    if args.only:
        results = measure(args.only, args.vocab)
        print(json.dumps(results) if args.json else "", end="\n" if args.json else "")
        if not args.json:
            report(results, f"{args.only} alone")
        return
    report(measure(None, args.vocab), "all libraries in one process")
    merged: dict = {"train_seconds": 0.0, "mb_per_s": {}}
    for name in ("fungrad", "tiktoken", "hf"):
        cmd = [sys.executable, __file__, "--only", name, "--json", "--vocab", str(args.vocab)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        one = json.loads(out.strip().splitlines()[-1])
        merged["mb_per_s"].update(one["mb_per_s"])
        if name == "fungrad":
            merged["train_seconds"] = one["train_seconds"]
    report(merged, "each library in its own process")


if __name__ == "__main__":
    main()
