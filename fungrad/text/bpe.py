"""Byte-level BPE as in GPT-2: training, encoding, decoding, and GPT-2/tiktoken files.

Text is first split into pieces by a regular expression (GPT-2's by default: words with
their leading space, numbers, punctuation runs, whitespace). Each piece is encoded as
UTF-8 bytes and merged pairwise: at every step the adjacent pair whose concatenation has
the lowest *rank* is merged, until no adjacent pair is a token. The ranks are tiktoken's
``mergeable_ranks`` (``{token bytes: rank}``) and the rank is the token's id, so given the
same ranks and pattern the ids equal tiktoken's. Decoding concatenates the bytes of the
ids and decodes UTF-8 with ``errors="replace"``, as GPT-2's decoder does, so ids that
split a character come back as U+FFFD.

Training counts the pieces of a text once, then repeatedly merges the most frequent
adjacent pair, updating only the words that contain it (a heap with lazy deletion finds
the best pair), so a 512-token vocabulary on the Shakespeare text trains in seconds.

Files: ``save(dir)`` writes GPT-2's ``encoder.json`` + ``vocab.bpe`` (loadable by Hugging
Face ``tokenizers``/``transformers``) and ``tokenizer.tiktoken`` (tiktoken's base64 rank
format), plus ``fungrad_bpe.json`` with the pattern and special tokens.
"""
from __future__ import annotations

import base64
import collections
import heapq
import json
import os
from typing import AbstractSet, Collection, Iterable, Literal

try:  # `regex` (for \p{L} and \p{N}) comes with the `text` extra
    import regex
except ImportError:  # pragma: no cover - exercised only without the extra
    regex = None

from fungrad.safetensors import atomic_write

__all__ = ["BPETokenizer", "GPT2_PATTERN"]

GPT2_PATTERN = (r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$"""
                r"""|\s+(?!\S)|\s""")
"""GPT-2's pre-tokenisation regex (tiktoken's ``r50k`` pattern)."""


def _gpt2_bytes() -> tuple[list[int], dict[int, str]]:
    """GPT-2's order of the 256 single bytes (printable ones first: ranks 0..187, then the
    rest) and the character GPT-2's files show for each byte (itself when printable, else
    ``chr(256 + n)`` for the n-th unprintable byte)."""
    printable = [b for b in range(256) if chr(b).isprintable() and chr(b) != " "]
    unprintable = [b for b in range(256) if b not in printable]
    chars = {b: chr(b) for b in printable} | {b: chr(256 + n) for n, b in enumerate(unprintable)}
    return printable + unprintable, chars


_BYTE_ORDER, _BYTE_CHARS = _gpt2_bytes()
_CHAR_BYTES = {c: b for b, c in _BYTE_CHARS.items()}

VOCAB_BPE, ENCODER_JSON = "vocab.bpe", "encoder.json"
TIKTOKEN_FILE, META = "tokenizer.tiktoken", "fungrad_bpe.json"


def _to_gpt2_str(token: bytes) -> str:
    return "".join(_BYTE_CHARS[b] for b in token)


def _from_gpt2_str(text: str) -> bytes:
    return bytes(_CHAR_BYTES[c] for c in text)


def _require_regex() -> None:
    if regex is None:
        raise ImportError("BPETokenizer needs the `regex` package: pip install 'fungrad[text]'")


class BPETokenizer:
    """A byte-level BPE tokenizer given tiktoken-style ``ranks`` ``{bytes: id}``.

    ``special_tokens`` maps strings such as ``"<|endoftext|>"`` to ids above the ranks.
    """

    def __init__(self, ranks: dict[bytes, int], pattern: str = GPT2_PATTERN,
                 special_tokens: dict[str, int] | None = None):
        _require_regex()
        self._ranks = dict(ranks)
        self._special = dict(special_tokens or {})
        self._pattern = pattern
        self._regex = regex.compile(pattern)
        missing = [b for b in range(256) if bytes([b]) not in self._ranks]
        if missing:
            raise ValueError(f"BPETokenizer: ranks must contain all 256 single bytes; "
                             f"missing {missing[:8]}")
        self._bytes = {i: t for t, i in self._ranks.items()}
        clash = set(self._special.values()) & set(self._bytes)
        if clash or len(self._bytes) != len(self._ranks):
            raise ValueError(f"BPETokenizer: ids must be distinct (special tokens reuse "
                             f"{sorted(clash)})")
        self._bytes.update((i, s.encode()) for s, i in self._special.items())
        self._special_regex = (regex.compile("|".join(regex.escape(s) for s in
                                                      sorted(self._special, key=len, reverse=True)))
                               if self._special else None)
        self._cache: dict[str, list[int]] = {}

    # ----------------------------------------------------------------------- properties

    @property
    def pattern(self) -> str:
        """The pre-tokenisation regular expression."""
        return self._pattern

    @property
    def special_tokens(self) -> dict[str, int]:
        """The special tokens (e.g. ``<|endoftext|>``) and their ids, a copy."""
        return dict(self._special)

    @property
    def vocab_size(self) -> int:
        """One more than the largest id (ranks and special tokens)."""
        return max(self._bytes) + 1

    def mergeable_ranks(self) -> dict[bytes, int]:
        """The ranks in tiktoken's form: ``{token bytes: rank}`` (``tiktoken.Encoding``'s
        ``mergeable_ranks``)."""
        return dict(self._ranks)

    # ----------------------------------------------------------------------- encoding

    def _encode_piece(self, piece: str) -> list[int]:
        ids = self._cache.get(piece)
        if ids is None:
            ids = self._cache[piece] = self._merge(piece.encode("utf-8"))
        return ids

    def _merge(self, data: bytes) -> list[int]:
        ranks = self._ranks
        rank = ranks.get(data)
        if rank is not None:
            return [rank]
        parts = [data[i:i + 1] for i in range(len(data))]
        while len(parts) > 1:
            best, best_rank = -1, None
            for i in range(len(parts) - 1):
                r = ranks.get(parts[i] + parts[i + 1])
                if r is not None and (best_rank is None or r < best_rank):
                    best, best_rank = i, r
            if best < 0:
                break
            parts[best:best + 2] = [parts[best] + parts[best + 1]]
        return [ranks[p] for p in parts]

    def encode_ordinary(self, text: str) -> list[int]:
        """Ids of ``text``, treating special-token strings as ordinary text."""
        out: list[int] = []
        encode_piece = self._encode_piece
        for piece in self._regex.findall(text):
            out += encode_piece(piece)
        return out

    def encode(self, text: str, *, allowed_special: Literal["all"] | AbstractSet[str] = frozenset(),
               disallowed_special: Literal["all"] | Collection[str] = "all") -> list[int]:
        """Ids of ``text``, as ``tiktoken.Encoding.encode``: special tokens in ``allowed_special``
        become their ids; one in ``disallowed_special`` (default: every other special
        token) raises ``ValueError``; the rest are encoded as ordinary text."""
        if not isinstance(text, str):
            raise TypeError(f"BPETokenizer.encode: text must be a str, got {type(text).__name__}")
        allowed = set(self._special) if allowed_special == "all" else set(allowed_special)
        unknown = allowed - set(self._special)
        if unknown:
            raise ValueError(f"BPETokenizer.encode: allowed_special names unknown special tokens "
                             f"{sorted(unknown)}")
        disallowed = (set(self._special) - allowed if disallowed_special == "all"
                      else set(disallowed_special))
        if self._special_regex is None:
            return self.encode_ordinary(text)
        out: list[int] = []
        start = 0
        for match in self._special_regex.finditer(text):
            token = match.group()
            if token in disallowed:
                raise ValueError(f"BPETokenizer.encode: the text contains the special token "
                                 f"{token!r}; pass allowed_special={{...}} to encode it as a "
                                 "special token, or "
                                 "disallowed_special=() to encode it as ordinary text")
            if token in allowed:
                out += self.encode_ordinary(text[start:match.start()])
                out.append(self._special[token])
                start = match.end()
        out += self.encode_ordinary(text[start:])
        return out

    # ----------------------------------------------------------------------- decoding

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """The bytes of ``ids``; an unknown id raises ``ValueError``."""
        try:
            return b"".join(self._bytes[int(i)] for i in ids)
        except KeyError as e:
            raise ValueError(f"BPETokenizer.decode: id {e.args[0]} is not in the vocabulary "
                             f"(size {self.vocab_size})") from None

    def decode(self, ids: Iterable[int], errors: str = "replace") -> str:
        """The text of ``ids``; bytes that are not valid UTF-8 become U+FFFD."""
        return self.decode_bytes(ids).decode("utf-8", errors=errors)

    # ----------------------------------------------------------------------- training

    @classmethod
    def train(cls, text: str, vocab_size: int, special_tokens: Iterable[str] = (),
              pattern: str = GPT2_PATTERN) -> "BPETokenizer":
        """Learn merges from ``text`` until the vocabulary (256 bytes + merges + special
        tokens) has ``vocab_size`` entries. Ties between equally frequent pairs go to the
        pair of lower ids, so training is deterministic."""
        _require_regex()
        special_tokens = list(special_tokens)
        n_merges = vocab_size - 256 - len(special_tokens)
        if n_merges < 0:
            raise ValueError(f"BPETokenizer.train: vocab_size {vocab_size} is below the 256 byte "
                             f"tokens plus {len(special_tokens)} special tokens")
        ranks = {bytes([b]): i for i, b in enumerate(_BYTE_ORDER)}
        vocab = {i: t for t, i in ranks.items()}
        counts = collections.Counter(regex.findall(pattern, text))
        words = [[ranks[bytes([b])] for b in piece.encode("utf-8")] for piece in counts]
        freqs = list(counts.values())
        for a, b in _learn_merges(words, freqs, n_merges):
            ranks[vocab[a] + vocab[b]] = len(ranks)
            vocab[len(vocab)] = vocab[a] + vocab[b]
        specials = {s: len(ranks) + i for i, s in enumerate(special_tokens)}
        return cls(ranks, pattern, specials)

    # ----------------------------------------------------------------------- files

    def merges(self) -> list[tuple[bytes, bytes]]:
        """The merges in rank order: the two tokens that form each multi-byte token (found
        by running BPE on the token's bytes with only lower ranks available)."""
        out = []
        for token, rank in sorted(self._ranks.items(), key=lambda kv: kv[1]):
            if len(token) > 1:
                out.append(_split_token(token, rank, self._ranks))
        return out

    def save(self, directory: str | os.PathLike) -> None:
        """Write GPT-2's ``encoder.json`` + ``vocab.bpe``, ``tokenizer.tiktoken`` and the
        pattern and special tokens (``fungrad_bpe.json``) into ``directory``."""
        os.makedirs(directory, exist_ok=True)
        encoder = {_to_gpt2_str(t): i for t, i in self._ranks.items()}
        encoder.update(self._special)
        merges = "".join(f"{_to_gpt2_str(a)} {_to_gpt2_str(b)}\n" for a, b in self.merges())
        tiktoken_lines = "".join(f"{base64.b64encode(t).decode()} {i}\n"
                                 for t, i in sorted(self._ranks.items(), key=lambda kv: kv[1]))
        meta = {"pattern": self._pattern, "special_tokens": self._special}
        write = lambda name, s: atomic_write(os.path.join(directory, name), s.encode("utf-8"))
        write(ENCODER_JSON, json.dumps(encoder, ensure_ascii=False))
        write(VOCAB_BPE, "#version: 0.2\n" + merges)
        write(TIKTOKEN_FILE, tiktoken_lines)
        write(META, json.dumps(meta))

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "BPETokenizer":
        """Read a tokenizer from GPT-2's ``encoder.json`` + ``vocab.bpe`` (GPT-2's own files
        included), or from ``tokenizer.tiktoken`` when those are absent. The pattern and
        special tokens come from ``fungrad_bpe.json`` when present; otherwise the pattern is
        GPT-2's and the special tokens are ``encoder.json``'s entries that are not byte
        sequences of the merges (``<|endoftext|>`` for GPT-2)."""
        path = lambda name: os.path.join(directory, name)
        meta = {}
        if os.path.exists(path(META)):
            with open(path(META), encoding="utf-8") as f:
                meta = json.load(f)
        if os.path.exists(path(ENCODER_JSON)):
            ranks, found_special = _read_gpt2_files(path(ENCODER_JSON), path(VOCAB_BPE))
        elif os.path.exists(path(TIKTOKEN_FILE)):
            ranks, found_special = load_tiktoken_ranks(path(TIKTOKEN_FILE)), {}
        else:
            raise FileNotFoundError(f"BPETokenizer.load: {directory} has neither {ENCODER_JSON} "
                                    f"nor {TIKTOKEN_FILE}")
        return cls(ranks, meta.get("pattern", GPT2_PATTERN),
                   meta.get("special_tokens", found_special))


def _learn_merges(words: list[list[int]], freqs: list[int], n_merges: int) -> list[tuple[int, int]]:
    """Merge the most frequent adjacent pair ``n_merges`` times, in place on ``words``.
    New ids are numbered from 256 on; returns the merged pairs in order."""
    pair_counts: collections.Counter = collections.Counter()
    where = collections.defaultdict(set)
    for w, (word, f) in enumerate(zip(words, freqs)):
        for pair in zip(word, word[1:]):
            pair_counts[pair] += f
            where[pair].add(w)
    heap = [(-c, pair) for pair, c in pair_counts.items()]
    heapq.heapify(heap)
    merges: list[tuple[int, int]] = []
    next_id = 256
    while len(merges) < n_merges and heap:
        neg, pair = heapq.heappop(heap)
        if -neg != pair_counts.get(pair, 0) or -neg <= 0:
            continue  # a stale heap entry
        merges.append(pair)
        changed = set()
        for w in sorted(where.pop(pair)):
            word, f = words[w], freqs[w]
            for p in zip(word, word[1:]):
                pair_counts[p] -= f
                changed.add(p)
            words[w] = word = _replace_pair(word, pair, next_id)
            for p in zip(word, word[1:]):
                pair_counts[p] += f
                where[p].add(w)
                changed.add(p)
        pair_counts.pop(pair, None)
        for p in changed:
            if pair_counts.get(p, 0) > 0 and p != pair:
                heapq.heappush(heap, (-pair_counts[p], p))
        next_id += 1
    return merges


def _replace_pair(word: list[int], pair: tuple[int, int], new: int) -> list[int]:
    out, i = [], 0
    while i < len(word):
        if i + 1 < len(word) and word[i] == pair[0] and word[i + 1] == pair[1]:
            out.append(new)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return out


def _split_token(token: bytes, rank: int, ranks: dict[bytes, int]) -> tuple[bytes, bytes]:
    """The pair of lower-ranked tokens that BPE merges last to form ``token``."""
    parts = [token[i:i + 1] for i in range(len(token))]
    while len(parts) > 2:
        candidates = [(ranks.get(parts[i] + parts[i + 1], rank), i) for i in range(len(parts) - 1)]
        r, i = min(candidates)
        if r >= rank:
            raise ValueError(f"BPETokenizer: token {token!r} (rank {rank}) cannot be formed from "
                             "lower ranks")
        parts[i:i + 2] = [parts[i] + parts[i + 1]]
    return parts[0], parts[1]


def _read_gpt2_files(encoder_path: str,
                     merges_path: str) -> tuple[dict[bytes, int], dict[str, int]]:
    with open(encoder_path, encoding="utf-8") as f:
        encoder = json.load(f)
    with open(merges_path, encoding="utf-8") as f:
        lines = [line for line in f.read().split("\n")[1:] if line]
    merged = {_from_gpt2_str(a) + _from_gpt2_str(b) for a, b in (line.split(" ") for line in lines)}
    ranks, special = {}, {}
    for text, i in encoder.items():
        if all(c in _CHAR_BYTES for c in text) and (len(text) == 1
                                                    or _from_gpt2_str(text) in merged):
            ranks[_from_gpt2_str(text)] = i
        else:
            special[text] = i
    return ranks, special


def load_tiktoken_ranks(path: str | os.PathLike) -> dict[bytes, int]:
    """Read tiktoken's rank file: one ``<base64 token> <rank>`` per line."""
    ranks = {}
    with open(path, "rb") as f:
        for line in f.read().splitlines():
            if line:
                token, rank = line.split()
                ranks[base64.b64decode(token)] = int(rank)
    return ranks
