"""SentencePieceTokenizer against the `sentencepiece` package on models it trains here."""
import random as pyrandom

import pytest
import sentencepiece as spm

from fungrad.text import SentencePieceTokenizer
from test_text_tokenizers import TEXT, mixed_corpus

CONFIGS = [  # (model type, normaliser, byte fallback): the first is LLaMA's setting
    ("bpe", "identity", True), ("bpe", "nmt_nfkc", False),
    ("unigram", "nmt_nfkc", True), ("unigram", "identity", False),
]


def strings() -> list[str]:
    """Varied inputs: the mixed corpus's lines, Shakespeare lines, whitespace edge cases,
    characters the models never saw (byte fallback or unknown), random Unicode."""
    rng = pyrandom.Random(0)
    shakespeare = TEXT.split("\n")
    out = mixed_corpus().split("\n") + rng.sample(shakespeare, min(200, len(shakespeare)))
    out += ["", " ", "  leading and  double  spaces  ", "tab\there", "ROMEO: 12345 wherefore?",
            "a <tool> b<tool>", "ﬁ ① ｆｕｌｌ ｗｉｄｔｈ", "\u00a0nbsp\u3000ideographic space",
            "Ω≈ç√∫˜µ≤≥÷", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕏"]
    out += ["".join(chr(rng.randrange(0x20, 0x3000)) for _ in range(rng.randrange(1, 30)))
            for _ in range(100)]
    return out


@pytest.fixture(scope="module", params=CONFIGS, ids=lambda c: "-".join(map(str, c)))
def models(request, tmp_path_factory):
    model_type, normalizer, byte_fallback = request.param
    directory = tmp_path_factory.mktemp("sp")
    corpus = directory / "corpus.txt"
    corpus.write_text(TEXT[:150_000] + "\n" + mixed_corpus())
    prefix = str(directory / "m")
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=prefix, vocab_size=600,
                                   model_type=model_type, normalization_rule_name=normalizer,
                                   byte_fallback=byte_fallback, split_digits=True,
                                   user_defined_symbols=["<tool>"], minloglevel=2)
    return (spm.SentencePieceProcessor(model_file=prefix + ".model"),
            SentencePieceTokenizer.load(prefix + ".model"))


def test_ids_and_decoded_text_equal_sentencepiece(models):
    ref, tok = models
    assert tok.vocab_size == ref.get_piece_size()
    for s in strings():
        ids = ref.encode(s)
        assert tok.encode(s) == ids, s
        assert tok.decode(ids) == ref.decode(ids), s


def test_bos_eos_special_ids_and_pieces(models):
    ref, tok = models
    assert (tok.unk_id, tok.bos_id, tok.eos_id, tok.pad_id) \
        == (ref.unk_id(), ref.bos_id(), ref.eos_id(), ref.pad_id())
    assert tok.encode("hi there", add_bos=True, add_eos=True) \
        == ref.encode("hi there", add_bos=True, add_eos=True)
    ids = range(tok.vocab_size)
    assert [tok.id_to_piece(i) for i in ids] == [ref.id_to_piece(i) for i in ids]
    assert tok.decode([ref.bos_id(), *ref.encode("x y"), ref.eos_id()]) \
        == ref.decode(ref.encode("x y"))


def test_bad_input_raises(tmp_path, models):
    _, tok = models
    with pytest.raises(ValueError, match="outside"):
        tok.decode([tok.vocab_size])
    with pytest.raises(TypeError, match="must be a str"):
        tok.encode(b"bytes")
    (tmp_path / "bad.model").write_bytes(b"\x0a\xff\xff")
    with pytest.raises(ValueError, match="not a SentencePiece model"):
        SentencePieceTokenizer.load(tmp_path / "bad.model")
