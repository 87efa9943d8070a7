"""Chat templates against the strings transformers renders with the official templates."""
import itertools

import pytest
from tokenizers import Tokenizer, models
from transformers import PreTrainedTokenizerFast

from fungrad.text import apply_chat_template

# The chat templates the models' Hugging Face tokenizer configs carry.
OFFICIAL = {
    "llama2": (
        "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
        "{% set system_message = messages[0]['content'] %}{% else %}"
        "{% set loop_messages = messages %}"
        "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
        "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
        "{{ raise_exception('Conversation roles must alternate "
        "user/assistant/user/assistant/...') }}"
        "{% endif %}"
        "{% if loop.index0 == 0 and system_message != false %}"
        "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n'"
        " + message['content'] %}"
        "{% else %}{% set content = message['content'] %}{% endif %}"
        "{% if message['role'] == 'user' %}"
        "{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
        "{% elif message['role'] == 'assistant' %}"
        "{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}",
        "<s>", "</s>"),
    "llama3": (
        "{% set loop_messages = messages %}{% for message in loop_messages %}"
        "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
        "+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
        "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
        "{% if add_generation_prompt %}"
        "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}",
        "<|begin_of_text|>", "<|end_of_text|>"),
    "chatml": (
        "{% for message in messages %}"
        "{{'<|im_start|>' + message['role'] + '\\n' + message['content']"
        " + '<|im_end|>' + '\\n'}}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
        "<|im_start|>", "<|im_end|>"),
}

SYSTEM = {"role": "system", "content": "You are a terse assistant.\nAnswer in verse. "}
TURNS = [{"role": "user", "content": " What light through yonder window breaks? "},
         {"role": "assistant", "content": "It is the east,\nand Juliet is the sun. "},
         {"role": "user", "content": "And then?"},
         {"role": "assistant", "content": "Arise, fair sun."}]
CONVERSATIONS = [TURNS[:1], TURNS[:2], TURNS[:3], TURNS, [SYSTEM] + TURNS[:1], [SYSTEM] + TURNS[:2],
                 [SYSTEM] + TURNS[:3], [SYSTEM] + TURNS]


def hf_render(template: str, messages: list, add_generation_prompt: bool) -> str:
    jinja, bos, eos = OFFICIAL[template]
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.BPE()), bos_token=bos,
                                  eos_token=eos)
    return tok.apply_chat_template(messages, chat_template=jinja, tokenize=False,
                                   add_generation_prompt=add_generation_prompt)


@pytest.mark.parametrize("template,messages,gen", [
    (t, m, g) for t, m, g in itertools.product(OFFICIAL, CONVERSATIONS, [True, False])])
def test_templates_equal_transformers(template, messages, gen):
    assert apply_chat_template(messages, template, add_generation_prompt=gen) \
        == hf_render(template, messages, gen)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="unknown template 'vicuna'"):
        apply_chat_template(TURNS, "vicuna")
    with pytest.raises(ValueError, match="must alternate"):
        apply_chat_template([TURNS[0], TURNS[0]], "llama2")
    with pytest.raises(ValueError, match="'role' and 'content'"):
        apply_chat_template([{"content": "x"}], "chatml")
    with pytest.raises(TypeError, match="content must be a str"):
        apply_chat_template([{"role": "user", "content": 3}], "chatml")
