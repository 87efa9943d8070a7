"""``fungrad.models``: language and vision models as params dicts plus pure functions.

One readable file per family, nanoGPT style: ``gpt2``, ``llama``, ``mixtral``, ``mamba``
(language models with explicit caches) and ``resnet`` (with explicit batch-norm state).
Import the family you need, e.g. ``from fungrad.models import gpt2``; ``hf`` reads and
writes Hugging Face checkpoint folders.
"""

__all__: list[str] = []  # the families are submodules, imported one at a time
