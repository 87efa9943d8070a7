"""SentencePiece models (LLaMA-style tokenizers) read from their ``.model`` file.

A ``.model`` file is a protobuf ``ModelProto``: the pieces (string, score, type), the
trainer's settings (model type, byte fallback, special ids) and the normaliser's
(character map, dummy prefix, whitespace handling). A small protobuf reader below decodes
the few fields used; nothing else is needed.

Encoding is normalise, then segment:

* Normalise: replace each longest match of the precompiled character map (NFKC and
  friends, stored as a double-array trie; empty for the ``identity`` normaliser), drop
  leading, trailing and repeated spaces when ``remove_extra_whitespaces``, prepend a
  space when ``add_dummy_prefix``, and write spaces as ``▁`` (U+2581).
* Segment, by model type: BPE merges the adjacent pair of symbols whose concatenation is
  the highest-scoring piece until none is a piece; unigram takes the most likely split
  (Viterbi over all pieces that match, unknown characters scored below every piece).
  A symbol that is not a piece becomes its UTF-8 bytes (``<0x41>`` pieces) under
  ``byte_fallback``, else the unknown id.

Decoding joins the pieces, turns byte pieces back into UTF-8 (invalid bytes become U+FFFD),
turns ``▁`` into spaces and drops the dummy prefix's space.
"""
from __future__ import annotations

import heapq
import os
import struct
from typing import Iterable, NamedTuple

__all__ = ["SentencePieceTokenizer"]

NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
UNIGRAM, BPE = 1, 2
SPACE = "\u2581"
UNK_PENALTY = 10.0  # how far below the lowest piece score an unknown character scores


# --------------------------------------------------------------------------- protobuf

def _varint(data: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if i >= len(data):
            raise ValueError("truncated varint")
        b = data[i]
        result |= (b & 0x7F) << shift
        i += 1
        if not b & 0x80:
            return result, i
        shift += 7


def _fields(data: bytes) -> dict[int, list]:
    """Decode one protobuf message into ``{field number: [raw values]}``: ints for varints
    and fixed-width fields, bytes for length-delimited ones."""
    out: dict[int, list] = {}
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(data, i)
        elif wire == 1:
            value, i = data[i:i + 8], i + 8
        elif wire == 2:
            n, i = _varint(data, i)
            value, i = data[i:i + n], i + n
        elif wire == 5:
            value, i = data[i:i + 4], i + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        if i > len(data):
            raise ValueError("truncated field")
        out.setdefault(number, []).append(value)
    return out


def _last(fields: dict[int, list], number: int, default):
    return fields[number][-1] if number in fields else default


class Piece(NamedTuple):
    text: str
    score: float
    type: int


class Normalizer(NamedTuple):
    charsmap: bytes
    add_dummy_prefix: bool
    remove_extra_whitespaces: bool
    escape_whitespaces: bool


# --------------------------------------------------------------------------- normaliser

class _CharsMap:
    """The precompiled character map: a double-array trie over UTF-8 bytes whose leaves
    point into a blob of NUL-terminated replacement strings."""

    def __init__(self, blob: bytes):
        (trie_size,) = struct.unpack("<I", blob[:4])
        self.units = struct.unpack(f"<{trie_size // 4}I", blob[4:4 + trie_size])
        self.strings = blob[4 + trie_size:]

    def longest_match(self, key: bytes) -> tuple[int, bytes] | None:
        """``(length, replacement)`` for the longest prefix of ``key`` in the map, or None."""
        units, pos, best = self.units, 0, None
        pos ^= (units[0] >> 10) << ((units[0] & (1 << 9)) >> 6)
        for length, c in enumerate(key, 1):
            pos ^= c
            unit = units[pos]
            if unit & ((1 << 31) | 0xFF) != c:
                break
            pos ^= (unit >> 10) << ((unit & (1 << 9)) >> 6)
            if (unit >> 8) & 1:
                offset = units[pos] & ((1 << 31) - 1)
                best = (length, self.strings[offset:self.strings.index(b"\0", offset)])
        return best


def _normalize(text: str, spec: Normalizer, charsmap: _CharsMap | None) -> str:
    mapped = text
    if charsmap is not None:
        data, i, parts = text.encode("utf-8"), 0, []
        while i < len(data):
            match = charsmap.longest_match(data[i:i + 64])
            if match is None:
                n = _utf8_length(data[i])
                parts.append(data[i:i + n])
                i += n
            else:
                parts.append(match[1])
                i += match[0]
        mapped = b"".join(parts).decode("utf-8", errors="replace")
    if spec.remove_extra_whitespaces:  # no leading, trailing or repeated spaces
        mapped = " ".join(word for word in mapped.split(" ") if word)
    if spec.add_dummy_prefix and mapped:
        mapped = " " + mapped
    return mapped.replace(" ", SPACE) if spec.escape_whitespaces else mapped


def _utf8_length(first_byte: int) -> int:
    return 1 if first_byte < 0x80 else 2 if first_byte < 0xE0 else 3 if first_byte < 0xF0 else 4


# --------------------------------------------------------------------------- the tokenizer

class SentencePieceTokenizer:
    """A SentencePiece model (BPE or unigram) read from a ``.model`` file.

    ``encode(text)`` gives the ids ``sentencepiece.SentencePieceProcessor.encode`` gives;
    ``decode(ids)`` the text it decodes to.
    """

    def __init__(self, pieces: list[Piece], model_type: int, normalizer: Normalizer, *,
                 byte_fallback: bool, unk_id: int, bos_id: int, eos_id: int, pad_id: int,
                 unk_surface: str = " \u2047 "):
        if model_type not in (UNIGRAM, BPE):
            raise ValueError(f"SentencePieceTokenizer: model type {model_type} is not supported "
                             "(only unigram (1) and BPE (2))")
        self.pieces, self.model_type, self.normalizer = pieces, model_type, normalizer
        self.byte_fallback, self.unk_surface = byte_fallback, unk_surface
        self.unk_id, self.bos_id, self.eos_id, self.pad_id = unk_id, bos_id, eos_id, pad_id
        self._ids = {p.text: i for i, p in enumerate(pieces)
                     if p.type in (NORMAL, USER_DEFINED, UNKNOWN, CONTROL)}
        self._matchable = {p.text: i for i, p in enumerate(pieces)
                           if p.type in (NORMAL, USER_DEFINED)}
        self._bytes = {int(p.text[3:5], 16): i for i, p in enumerate(pieces) if p.type == BYTE}
        self._user_defined = sorted((p.text for p in pieces if p.type == USER_DEFINED), key=len,
                                    reverse=True)
        self._max_len = max((len(t) for t in self._matchable), default=1)
        scores = [p.score for p in pieces if p.type == NORMAL]
        self._min_score = min(scores, default=0.0)
        self._max_score = max(scores, default=0.0)
        self._charsmap = _CharsMap(normalizer.charsmap) if normalizer.charsmap else None

    @classmethod
    def load(cls, model_path: str | os.PathLike) -> "SentencePieceTokenizer":
        """Read a SentencePiece ``.model`` file."""
        with open(model_path, "rb") as f:
            data = f.read()
        try:
            model = _fields(data)
            pieces = []
            for raw in model.get(1, []):
                p = _fields(raw)
                score = struct.unpack("<f", _last(p, 2, b"\0\0\0\0"))[0]
                pieces.append(Piece(_last(p, 1, b"").decode("utf-8"), score, _last(p, 3, NORMAL)))
            trainer, norm = _fields(_last(model, 2, b"")), _fields(_last(model, 3, b""))
        except (ValueError, UnicodeDecodeError, struct.error) as e:
            raise ValueError(f"SentencePieceTokenizer.load: {model_path} is not a SentencePiece "
                             f"model ({e})") from None
        if not pieces:
            raise ValueError(f"SentencePieceTokenizer.load: {model_path} holds no pieces")
        normalizer = Normalizer(_last(norm, 2, b""), bool(_last(norm, 3, 1)),
                                bool(_last(norm, 4, 1)), bool(_last(norm, 5, 1)))
        signed = lambda v: v - (1 << 64) if v >= 1 << 63 else v  # protobuf int32 -1 is 10 bytes
        return cls(pieces, _last(trainer, 3, UNIGRAM), normalizer,
                   byte_fallback=bool(_last(trainer, 35, 0)),
                   unk_id=signed(_last(trainer, 40, 0)), bos_id=signed(_last(trainer, 41, 1)),
                   eos_id=signed(_last(trainer, 42, 2)), pad_id=signed(_last(trainer, 43, -1)),
                   unk_surface=_last(trainer, 44, " \u2047 ".encode()).decode("utf-8"))

    @property
    def vocab_size(self) -> int:
        """The number of pieces in the model."""
        return len(self.pieces)

    def id_to_piece(self, i: int) -> str:
        """The text of piece ``i`` (``▁`` marks a leading space), as SentencePiece."""
        return self.pieces[i].text

    def piece_to_id(self, piece: str) -> int:
        """The id of ``piece``; the unknown id for a string that is not a piece."""
        return self._ids.get(piece, self.unk_id)

    # ----------------------------------------------------------------------- encoding

    def encode(self, text: str, *, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        """The ids of ``text`` (optionally with the BOS/EOS ids around them)."""
        if not isinstance(text, str):
            raise TypeError(f"SentencePieceTokenizer.encode: text must be a str, "
                            f"got {type(text).__name__}")
        normalized = _normalize(text, self.normalizer, self._charsmap)
        ids = [self.bos_id] if add_bos else []
        symbols = self._bpe(normalized) if self.model_type == BPE else self._viterbi(normalized)
        for symbol in self._merge_unknowns(symbols):
            ids += self._symbol_ids(symbol)
        return ids + ([self.eos_id] if add_eos else [])

    def _symbol_ids(self, symbol: str) -> list[int]:
        i = self._matchable.get(symbol)
        if i is not None:
            return [i]
        if self.byte_fallback:
            return [self._bytes[b] for b in symbol.encode("utf-8")]
        return [self.unk_id]

    def _initial_symbols(self, text: str) -> list[str]:
        """Characters, with user-defined pieces kept whole."""
        out, i = [], 0
        while i < len(text):
            match = next((u for u in self._user_defined if text.startswith(u, i)), None)
            out.append(match or text[i])
            i += len(match) if match else 1
        return out

    def _bpe(self, text: str) -> list[str]:
        """Merge the best-scoring adjacent pair until no pair forms a piece (a heap over
        candidate pairs and a linked list of symbols; ties go to the leftmost pair)."""
        symbols = self._initial_symbols(text)
        if len(symbols) < 2:
            return symbols
        prev = list(range(-1, len(symbols) - 1))
        nxt = list(range(1, len(symbols) + 1))
        nxt[-1] = -1
        heap: list[tuple[float, int, int, str]] = []

        def push(left: int) -> None:
            right = nxt[left]
            if right == -1:
                return
            merged = symbols[left] + symbols[right]
            i = self._matchable.get(merged)
            if i is not None and self.pieces[i].type == NORMAL:
                heapq.heappush(heap, (-self.pieces[i].score, left, right, merged))

        for left in range(len(symbols) - 1):
            push(left)
        while heap:
            _, left, right, merged = heapq.heappop(heap)
            if nxt[left] != right or symbols[left] + symbols[right] != merged:
                continue  # stale: one side has merged since
            symbols[left], symbols[right] = merged, ""
            nxt[left] = nxt[right]
            if nxt[right] != -1:
                prev[nxt[right]] = left
            if prev[left] != -1:
                push(prev[left])
            push(left)
        return [s for s in symbols if s]

    def _viterbi(self, text: str) -> list[str]:
        """The most likely split of ``text`` under the unigram model."""
        n = len(text)
        best = [(-float("inf"), -1)] * (n + 1)
        best[0] = (0.0, 0)
        unk_score = self._min_score - UNK_PENALTY
        for start in range(n):
            score_here = best[start][0]
            if score_here == -float("inf"):
                continue
            matched_single = False
            for end in range(start + 1, min(n, start + self._max_len) + 1):
                i = self._matchable.get(text[start:end])
                if i is None:
                    continue
                piece = self.pieces[i]
                score = ((end - start) * self._max_score - 0.1 if piece.type == USER_DEFINED
                         else piece.score)
                matched_single |= end == start + 1
                if score_here + score > best[end][0]:
                    best[end] = (score_here + score, start)
            if not matched_single and score_here + unk_score > best[start + 1][0]:
                best[start + 1] = (score_here + unk_score, start)
        pieces, end = [], n
        while end > 0:
            start = best[end][1]
            pieces.append(text[start:end])
            end = start
        return pieces[::-1]

    def _merge_unknowns(self, pieces: list[str]) -> list[str]:
        """Adjacent unknown characters form one unknown symbol (one unk id), as SentencePiece
        does without byte fallback."""
        if self.byte_fallback:
            return pieces
        out: list[str] = []
        for p in pieces:
            if out and p not in self._matchable and out[-1] not in self._matchable:
                out[-1] += p
            else:
                out.append(p)
        return out

    # ----------------------------------------------------------------------- decoding

    def decode(self, ids: Iterable[int]) -> str:
        """The text of ``ids``: control ids vanish, byte pieces are joined into UTF-8."""
        parts: list[str] = []
        pending = bytearray()
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self.pieces):
                raise ValueError(f"SentencePieceTokenizer.decode: id {i} is outside "
                                 f"[0, {len(self.pieces)})")
            piece = self.pieces[i]
            if piece.type == BYTE:
                pending.append(int(piece.text[3:5], 16))
                continue
            if pending:
                parts.append(pending.decode("utf-8", errors="replace"))
                pending.clear()
            if piece.type == CONTROL:
                continue
            parts.append(self.unk_surface if piece.type == UNKNOWN else piece.text)
        if pending:
            parts.append(pending.decode("utf-8", errors="replace"))
        text = "".join(parts)
        if self.normalizer.escape_whitespaces:
            text = text.replace(SPACE, " ")
        if self.normalizer.add_dummy_prefix and text.startswith(" "):
            text = text[1:]
        return text
