"""A character-level tokenizer: one id per distinct character of a training text.

The vocabulary is the sorted set of characters, so the same text always gives the same
ids (the Shakespeare example's 65 characters). ``save``/``load`` keep it as JSON.
"""
from __future__ import annotations

import json
import os
from typing import Iterable, Sequence

from fungrad.safetensors import atomic_write

__all__ = ["CharTokenizer"]

FILENAME = "char_tokenizer.json"


class CharTokenizer:
    """Maps each character of ``chars`` to its index, and back.

    >>> tok = CharTokenizer.train("hello")
    >>> tok.encode("hole"), tok.decode([2, 3])
    ([1, 3, 2, 0], 'lo')
    """

    def __init__(self, chars: Sequence[str]):
        chars = list(chars)
        if len(set(chars)) != len(chars) or not all(isinstance(c, str) and len(c) == 1
                                                    for c in chars):
            raise ValueError("CharTokenizer: `chars` must be distinct single characters")
        self.chars = chars
        self._ids = {c: i for i, c in enumerate(chars)}

    @classmethod
    def train(cls, text: str) -> "CharTokenizer":
        """The tokenizer whose vocabulary is the sorted set of characters in ``text``."""
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        """The number of ids: one per distinct character."""
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        """The id of every character of ``text``; unknown characters raise ``ValueError``."""
        try:
            return [self._ids[c] for c in text]
        except KeyError as e:
            raise ValueError(f"CharTokenizer.encode: character {e.args[0]!r} is not in the "
                             f"vocabulary of {self.vocab_size} characters") from None

    def decode(self, ids: Iterable[int]) -> str:
        """The characters of ``ids``; ids outside ``[0, vocab_size)`` raise ``ValueError``."""
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < self.vocab_size:
                raise ValueError(f"CharTokenizer.decode: id {i} is outside [0, {self.vocab_size})")
            out.append(self.chars[i])
        return "".join(out)

    def save(self, directory: str | os.PathLike) -> None:
        """Write the vocabulary to ``directory/char_tokenizer.json``."""
        os.makedirs(directory, exist_ok=True)
        atomic_write(os.path.join(directory, FILENAME), json.dumps({"chars": self.chars}).encode())

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "CharTokenizer":
        """The tokenizer ``save(directory)`` wrote."""
        with open(os.path.join(directory, FILENAME)) as f:
            return cls(json.load(f)["chars"])
