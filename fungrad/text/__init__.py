"""``fungrad.text``: from text to token ids and back.

``CharTokenizer`` (one id per character), ``BPETokenizer`` (GPT-2's byte-level BPE:
training, tiktoken-identical encoding, GPT-2 and tiktoken files), ``SentencePieceTokenizer``
(LLaMA-style ``.model`` files, BPE and unigram), and ``apply_chat_template`` (Llama-2,
Llama-3 and ChatML prompts).
"""
from fungrad.text.bpe import GPT2_PATTERN, BPETokenizer
from fungrad.text.char import CharTokenizer
from fungrad.text.chat import apply_chat_template
from fungrad.text.sentencepiece import SentencePieceTokenizer

__all__ = ["BPETokenizer", "CharTokenizer", "GPT2_PATTERN", "SentencePieceTokenizer", "apply_chat_template"]
