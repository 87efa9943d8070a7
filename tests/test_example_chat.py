"""``examples/chat.py``: the dialogue corpus, its tokenizer and chat prompts, and the whole
example with ``--quick`` as a user runs it."""
import importlib
import re

import numpy as np
import pytest
from test_examples_gallery import EXAMPLES, NUMBER, check_run_dir, figure, run

from fungrad.text import apply_chat_template


@pytest.fixture
def chat(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    return importlib.import_module("chat")


PLAY = """First Citizen:
Before we proceed, hear me.

All:
Speak, speak.

TITUS:

First Citizen:
You are all resolved
rather to die?

All:
Resolved.

Second Citizen:
One word.
"""


def test_speeches_keep_lines_and_mark_lost_ones(chat):
    assert chat.speeches(PLAY) == ["Before we proceed, hear me.", "Speak, speak.", None,
                                   "You are all resolved\nrather to die?", "Resolved.", "One word."]


def test_conversations_alternate_and_break_at_lost_and_long_speeches(chat):
    spoken = chat.speeches(PLAY)
    chats = chat.conversations(spoken, turns=2, max_chars=200)
    assert [[m["content"] for m in c] for c in chats] == [
        ["Before we proceed, hear me.", "Speak, speak."],
        # "One word." alone is no conversation
        ["You are all resolved\nrather to die?", "Resolved."]]
    assert all([m["role"] for m in c] == ["user", "assistant"] for c in chats)
    chats = chat.conversations(spoken, turns=4, max_chars=20)      # the two-line speech is too long
    assert [[m["content"] for m in c] for c in chats] == [["Resolved.", "One word."]]
    assert [m["role"] for m in chats[0]] == ["user", "assistant"]


def test_tokenizer_gives_each_special_token_one_id(chat):
    text = apply_chat_template([{"role": "user", "content": "Speak, speak."}], "chatml")
    tok = chat.ChatTokenizer.train("Speak, user assistant\n" + text, [chat.START, chat.END])
    ids = tok.encode(text)
    start, end = tok.token_id(chat.START), tok.token_id(chat.END)
    assert tok.vocab_size == tok.chars.vocab_size + 2
    assert (start, end) == (tok.vocab_size - 2, tok.vocab_size - 1)
    assert ids.count(start) == 2 and ids.count(end) == 1 and len(ids) == len(text) - 2 * 11 - 9
    assert tok.decode(ids) == text
    assert "<" not in tok.chars.chars                            # the text's characters only
    with pytest.raises(ValueError, match="special tokens .* outside the text"):
        chat.ChatTokenizer(tok.chars, ["user"])
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tok.encode("<|im_sep|>")


def test_chat_prompt_drops_the_oldest_exchanges(chat):
    history = [{"role": "user", "content": "a" * 50}, {"role": "assistant", "content": "b" * 50},
               {"role": "user", "content": "c"}]
    tok = chat.ChatTokenizer.train("abc userassistant\n", [chat.START, chat.END])
    full = tok.encode(apply_chat_template(history, "chatml"))
    assert chat.chat_prompt(tok, history, len(full)) == (full, 0)
    short = tok.encode(apply_chat_template(history[2:], "chatml"))
    assert chat.chat_prompt(tok, history, len(full) - 1) == (short, 2)
    assert chat.chat_prompt(tok, history, 3) == (short, 2)   # the last message is always kept


def test_the_example_quick(tmp_path):
    out = run("chat.py", tmp_path)
    records = check_run_dir(tmp_path, ["speculative.png"],
                            ["target_loss", "draft_loss", "target_val_loss", "greedy_acceptance",
                             "sampled_speedup"])
    assert re.search(r"\d+ speeches -> \d+ conversations of 2 to 4 turns", out)
    assert "vocabulary 65 characters + <|im_start|>, <|im_end|>" in out
    assert f"{figure(rf'target validation loss {NUMBER}', out):.3f}" \
        == f"{records[19]['target_val_loss']:.3f}"
    replies = re.findall(r"^assistant: (.*)$", out, re.MULTILINE)
    assert len(replies) == 3 and all(len(r) <= 24 for r in replies)
    assert "(2 oldest messages left out: the prompt and a 24-token reply must fit the 128-token " \
           "context)\nuser: Who comes here?" in out
    table = re.findall(rf"^ +(greedy|T=0.8) +2 +(\d+) +{NUMBER} +{NUMBER} +(\d+)% +(\d+) "
                       rf"+{NUMBER}x$", out, re.MULTILINE)
    assert [row[0] for row in table] == ["greedy", "T=0.8"]
    for mode, tokens, target_ms, spec_ms, accepted, calls, speedup in table:
        assert 0 < int(tokens) <= 24 and 0 <= int(accepted) <= 100 and int(calls) >= 1
        # All printed to two decimals: the speed-up lies between the ratios of the times'
        # rounding intervals, give or take its own rounding (fast steps take ~0.1 ms).
        target, spec, half = float(target_ms), float(spec_ms), 0.005
        assert (target - half) / (spec + half) - half <= float(speedup) \
            <= (target + half) / max(spec - half, 1e-9) + half
    assert "greedy speculative text is the target's own: yes, for every gamma" in out
    np.testing.assert_allclose(records[1]["greedy_acceptance"], int(table[0][4]) / 100, atol=0.006)
