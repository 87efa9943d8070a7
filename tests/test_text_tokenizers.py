"""Character and byte-level BPE tokenizers against tiktoken and Hugging Face tokenizers."""
import functools
from importlib import resources

import pytest
import tiktoken
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from fungrad.text import BPETokenizer, CharTokenizer

TEXT = resources.files("fungrad").joinpath("data/tinyshakespeare.txt").read_text()  # bundled


def mixed_corpus() -> str:
    """Many scripts, emoji with joiners and modifiers, code, whitespace runs and digits."""
    parts = [
        "Hello, world! It's a test: don't, won't, they'll, we've, I'm, she'd.",
        "Привет, мир! Съешь же ещё этих мягких французских булок.",
        "Γειά σου Κόσμε· ξεσκεπάζω την ψυχοφθόρα βδελυγμία.",
        "こんにちは世界。日本語のテキスト、漢字とカタカナ。",
        "你好，世界！我们在测试分词器。",
        "안녕하세요 세계", "مرحبا بالعالم، هذا اختبار.", "שלום עולם", "नमस्ते दुनिया", "สวัสดีชาวโลก",
        "emoji: 👋🏽 👨‍👩‍👧‍👦 🏳️‍🌈 ❤️‍🔥 🇫🇷🇯🇵 ✨🚀",
        "def f(x):\n    return {'a': [1, 2, 3], \"b\": x ** 2}  # comment\n"
        "\tif x != 0:\n\t\tpass\n",
        "numbers 0 1 12 123 1234 12345 3.14159 -42 1e-10 2026-12-06 0xDEADBEEF",
        "whitespace   runs\n\n\n  and\t\ttabs   \r\n trailing   ",
        "combining: e\u0301 n\u0303 a\u030a; zero-width\u200bspace; nbsp\u00a0here; "
        "soft\u00adhyphen",
        "ﬁ ligature, Ⅻ roman, ① circled, ½ fraction, ｆｕｌｌｗｉｄｔｈ",
    ]
    return "\n".join(parts * 3)


@functools.lru_cache(maxsize=None)
def trained(vocab_size: int = 512) -> BPETokenizer:
    text = TEXT[:200_000] + mixed_corpus()
    return BPETokenizer.train(text, vocab_size, special_tokens=["<|endoftext|>", "<|pad|>"])


def tiktoken_of(tok: BPETokenizer) -> tiktoken.Encoding:
    return tiktoken.Encoding("fungrad-test", pat_str=tok.pattern,
                             mergeable_ranks=tok.mergeable_ranks(),
                             special_tokens=tok.special_tokens)


# --------------------------------------------------------------------------- char

def test_char_tokenizer_roundtrip_save_load_and_errors(tmp_path):
    tok = CharTokenizer.train("to be or not to be\n")
    assert tok.chars == sorted(set("to be or not to be\n"))
    assert tok.decode(tok.encode("not to be")) == "not to be"
    tok.save(tmp_path)
    assert CharTokenizer.load(tmp_path).chars == tok.chars
    with pytest.raises(ValueError, match="'z' is not in the vocabulary"):
        tok.encode("z")
    with pytest.raises(ValueError, match="id 99 is outside"):
        tok.decode([99])


# --------------------------------------------------------------------------- bpe vs tiktoken

@pytest.mark.parametrize("name,text", [("mixed", mixed_corpus()), ("shakespeare", TEXT[-100_000:])])
def test_ids_equal_tiktoken_given_the_same_ranks(name, text):
    tok = trained()
    assert tok.encode(text) == tiktoken_of(tok).encode(text)
    assert tok.decode(tok.encode(text)) == text


def test_special_tokens_follow_tiktoken_rules():
    tok, ref = trained(), tiktoken_of(trained())
    text = "a<|endoftext|>b<|pad|>"
    assert tok.encode(text, allowed_special="all") == ref.encode(text, allowed_special="all")
    assert tok.encode(text, allowed_special={"<|pad|>"}, disallowed_special=()) == \
        ref.encode(text, allowed_special={"<|pad|>"}, disallowed_special=())
    assert tok.encode(text, disallowed_special=()) == ref.encode(text, disallowed_special=())
    with pytest.raises(ValueError, match="special token '<\\|endoftext\\|>'"):
        tok.encode(text)


def test_decoding_split_utf8_replaces_like_gpt2():
    tok = trained()
    ids = tok.encode("👋")
    assert len(ids) > 1  # a 4-byte emoji is not one token in a 512 vocabulary
    assert tok.decode(ids[:1]) == tiktoken_of(tok).decode(ids[:1]) == "\ufffd"
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tok.decode([10**6])


def test_training_compresses_like_hf_tokenizers():
    text = TEXT[:300_000]
    tok = BPETokenizer.train(text, 512)
    hf = Tokenizer(models.BPE())
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.train_from_iterator([text], trainers.BpeTrainer(
        vocab_size=512, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    ours, theirs = len(tok.encode(text)), len(hf.encode(text).ids)
    assert ours <= 1.03 * theirs, (ours, theirs)


# --------------------------------------------------------------------------- files

def test_gpt2_files_load_in_hugging_face_with_the_same_ids(tmp_path):
    tok = trained()
    tok.save(tmp_path)
    hf = Tokenizer(models.BPE.from_file(str(tmp_path / "encoder.json"),
                                        str(tmp_path / "vocab.bpe")))
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.decoder = decoders.ByteLevel()
    text = mixed_corpus()
    assert hf.encode(text).ids == tok.encode(text)
    assert hf.decode(tok.encode(text)) == text


def test_save_load_roundtrip_in_both_formats(tmp_path):
    tok = trained()
    tok.save(tmp_path)
    again = BPETokenizer.load(tmp_path)
    assert again.mergeable_ranks() == tok.mergeable_ranks()
    assert again.special_tokens == tok.special_tokens and again.pattern == tok.pattern
    for name in ("encoder.json", "vocab.bpe", "fungrad_bpe.json"):
        (tmp_path / name).unlink()
    from_tiktoken = BPETokenizer.load(tmp_path)
    assert from_tiktoken.mergeable_ranks() == tok.mergeable_ranks()


def test_gpt2_style_files_without_metadata_find_their_special_tokens(tmp_path):
    tok = BPETokenizer.train("low lower lowest newer wider " * 50, 300,
                             special_tokens=["<|endoftext|>"])
    tok.save(tmp_path)
    (tmp_path / "fungrad_bpe.json").unlink()
    again = BPETokenizer.load(tmp_path)
    assert again.special_tokens == {"<|endoftext|>": tok.special_tokens["<|endoftext|>"]}
    assert again.encode("lowest wider") == tok.encode("lowest wider")


def test_bad_arguments_raise_clearly():
    with pytest.raises(ValueError, match="vocab_size 100 is below"):
        BPETokenizer.train("abc", 100)
    with pytest.raises(ValueError, match="all 256 single bytes"):
        BPETokenizer({b"a": 0})
    with pytest.raises(TypeError, match="must be a str"):
        trained().encode(b"bytes")
    with pytest.raises(ValueError, match="unknown special tokens"):
        trained().encode("x", allowed_special={"<|nope|>"})
