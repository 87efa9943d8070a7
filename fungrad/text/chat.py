"""Chat templates: a list of ``{"role", "content"}`` messages rendered as one prompt string.

Three formats, producing exactly the strings the models' official Hugging Face templates
render (``transformers``' ``apply_chat_template`` with ``tokenize=False``):

* ``"llama2"``: ``<s>[INST] <<SYS>>\\n{system}\\n<</SYS>>\\n\\n{user} [/INST] {assistant} </s>``;
  the system prompt joins the first user turn, contents are stripped, roles must alternate
  user/assistant, and (as in the official template) no generation prompt is added.
* ``"llama3"``: ``<|begin_of_text|>`` then ``<|start_header_id|>{role}<|end_header_id|>\\n\\n``
  ``{content}<|eot_id|>`` per message (contents stripped), and the assistant header as the
  generation prompt.
* ``"chatml"``: ``<|im_start|>{role}\\n{content}<|im_end|>\\n`` per message and
  ``<|im_start|>assistant\\n`` as the generation prompt.
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

__all__ = ["TEMPLATES", "apply_chat_template"]

Message = Mapping[str, str]


def _check_messages(messages: Sequence[Message]) -> None:
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping) or not {"role", "content"} <= set(m):
            raise ValueError(f"apply_chat_template: message {i} must be a mapping with 'role' "
                             f"and 'content', got {m!r}")
        if not isinstance(m["content"], str):
            raise TypeError(f"apply_chat_template: message {i} content must be a str, "
                            f"got {type(m['content']).__name__}")


def _llama2(messages: Sequence[Message], add_generation_prompt: bool) -> str:
    system = None
    if messages and messages[0]["role"] == "system":
        system, messages = messages[0]["content"], messages[1:]
    out = []
    for i, m in enumerate(messages):
        if (m["role"] == "user") != (i % 2 == 0):
            raise ValueError("apply_chat_template('llama2'): conversation roles must alternate "
                             "user/assistant/user/assistant/...")
        content = m["content"]
        if i == 0 and system is not None:
            content = f"<<SYS>>\n{system}\n<</SYS>>\n\n{content}"
        if m["role"] == "user":
            out.append(f"<s>[INST] {content.strip()} [/INST]")
        elif m["role"] == "assistant":
            out.append(f" {content.strip()} </s>")
    return "".join(out)  # the official template adds no generation prompt


def _llama3(messages: Sequence[Message], add_generation_prompt: bool) -> str:
    out = [f"<|start_header_id|>{m['role']}<|end_header_id|>\n\n{m['content'].strip()}<|eot_id|>"
           for m in messages]
    if out:
        out[0] = "<|begin_of_text|>" + out[0]
    if add_generation_prompt:
        out.append("<|start_header_id|>assistant<|end_header_id|>\n\n")
    return "".join(out)


def _chatml(messages: Sequence[Message], add_generation_prompt: bool) -> str:
    out = [f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages]
    if add_generation_prompt:
        out.append("<|im_start|>assistant\n")
    return "".join(out)


TEMPLATES: dict[str, Callable[[Sequence[Message], bool], str]] = {
    "llama2": _llama2, "llama3": _llama3, "chatml": _chatml}


def apply_chat_template(messages: Sequence[Message], template: str,
                        add_generation_prompt: bool = True) -> str:
    """Render ``messages`` in the chat format ``template`` (``"llama2"``, ``"llama3"`` or
    ``"chatml"``); with ``add_generation_prompt`` the string ends where the assistant's
    reply begins.

    >>> apply_chat_template([{"role": "user", "content": "Hi"}], "chatml")
    '<|im_start|>user\\nHi<|im_end|>\\n<|im_start|>assistant\\n'
    """
    render = TEMPLATES.get(template)
    if render is None:
        raise ValueError(f"apply_chat_template: unknown template {template!r}; choose one of "
                         f"{sorted(TEMPLATES)}")
    _check_messages(messages)
    return render(list(messages), add_generation_prompt)
