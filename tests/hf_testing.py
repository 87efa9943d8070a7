"""Helpers for comparing fungrad language models with Hugging Face ``transformers`` (CPU
torch): build a tiny random model with every weight jittered, run it, save it."""
from __future__ import annotations

import numpy as np
import torch
import transformers

TOL = dict(rtol=1e-4, atol=1e-4)


def build(config: transformers.PretrainedConfig, seed: int = 0, dtype: torch.dtype = torch.float32):
    """A causal LM from ``config`` whose every weight is random: linear weights ~ N(0, 0.2²),
    norm weights ~ 1 + N(0, 0.1²) (none is 1), so that logits are of order one."""
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    with torch.no_grad():
        for name, p in model.named_parameters():
            norm = "norm" in name
            p.copy_(torch.randn_like(p) * (0.1 if norm else 0.2) + (1.0 if norm else 0.0))
    return model.to(dtype).eval()


def logits(model, tokens: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Float32 logits of a full forward pass; with ``mask`` (left padding), positions
    count real tokens only (``cumsum(mask) - 1``), as in generation."""
    ids = torch.tensor(np.asarray(tokens), dtype=torch.long)
    kwargs = {}
    if mask is not None:
        m = torch.tensor(np.asarray(mask), dtype=torch.long)
        kwargs = dict(attention_mask=m, position_ids=(m.cumsum(-1) - 1).clamp(min=0))
    with torch.no_grad():
        return model(ids, **kwargs).logits.float().numpy()


def generate(model, tokens: np.ndarray, mask: np.ndarray, n_new: int) -> np.ndarray:
    """Greedy continuation (``do_sample=False``) of left-padded prompts: ``(B, n_new)``."""
    ids = torch.tensor(np.asarray(tokens), dtype=torch.long)
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.tensor(np.asarray(mask), dtype=torch.long),
                             max_new_tokens=n_new, do_sample=False,
                             eos_token_id=None, pad_token_id=0)
    return out[:, ids.shape[1]:].numpy()


def address(x) -> int:
    """The address of an array's buffer (to check that a donated cache is reused)."""
    return np.asarray(x).__array_interface__["data"][0]
