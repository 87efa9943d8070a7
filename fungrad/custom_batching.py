"""``fungrad.custom_batching``: the public names of ``jax.custom_batching`` (defined in
``fungrad/transforms/custom_batching.py``, beside ``custom_jvp`` and ``custom_vjp``)."""
from fungrad.transforms.custom_batching import custom_vmap, custom_vmap_call_p, sequential_vmap

__all__ = ["custom_vmap", "custom_vmap_call_p", "sequential_vmap"]
