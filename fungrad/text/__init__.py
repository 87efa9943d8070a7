"""``fungrad.text``: from text to token ids and back.

``CharTokenizer`` (one id per character), ``BPETokenizer`` (GPT-2's byte-level BPE:
training, tiktoken-identical encoding, GPT-2 and tiktoken files), ``SentencePieceTokenizer``
(LLaMA-style ``.model`` files, BPE and unigram), and ``apply_chat_template`` (Llama-2,
Llama-3 and ChatML prompts). Decoding with any model of ``fungrad.models``: ``generate``
(batched, left-padded, greedy/temperature/top-k/top-p/min-p/repetition penalty, stop
tokens and strings), ``stream``, ``beam_search`` and ``speculative_generate``.
"""
from fungrad.text.beam_search import Hypothesis, beam_search
from fungrad.text.bpe import GPT2_PATTERN, BPETokenizer
from fungrad.text.char import CharTokenizer
from fungrad.text.chat import apply_chat_template
from fungrad.text.generate import Model, decode_functions, generate, stream
from fungrad.text.sampling import Sampling, choose, process_logits
from fungrad.text.sentencepiece import SentencePieceTokenizer
from fungrad.text.speculative import SpeculativeStats, speculative_generate

__all__ = ["BPETokenizer", "CharTokenizer", "GPT2_PATTERN", "Hypothesis", "Model", "Sampling",
           "SentencePieceTokenizer", "SpeculativeStats", "apply_chat_template", "beam_search",
           "choose", "decode_functions", "generate", "process_logits", "speculative_generate",
           "stream"]
