"""``fungrad.nn``: the ``jax.nn`` functional API (activations), initialisers, stateless
layers over params dicts, attention with explicit KV caches, a mixture of experts (``moe``),
losses, params utilities and block-scaled matmuls (``scaled_matmul``)."""
from fungrad._core.namespace import public_dir
from fungrad.nn.functions import *  # noqa: F401,F403
from fungrad.nn import functions, initializers, moe  # noqa: F401
from fungrad.nn.attention import (KVCache, apply_rope, attention_init, attention_mask,
                                  cached_attention, dot_product_attention, init_kv_cache,
                                  multi_head_attention, rope_frequencies, token_positions,
                                  write_cache)
from fungrad.nn.layers import (BatchNormState, Layer, avg_pool, batch_norm, batch_norm_state,
                               causal_conv1d, conv, conv_init, dropout, embedding, embedding_attend,
                               embedding_init, global_avg_pool, global_max_pool, group_norm,
                               layer_norm, linear, linear_init, max_pool, mlp, mlp_init, norm_init,
                               rms_norm, sequential, swiglu, swiglu_init)
from fungrad.nn.losses import (cross_entropy, huber_loss, kl_divergence, l1_loss, mse,
                               sigmoid_binary_cross_entropy, smooth_labels, softmax_cross_entropy,
                               softmax_cross_entropy_with_integer_labels, squared_error)
from fungrad.nn.params import (DynamicLossScale, all_finite, cast_floating, count_params,
                               global_norm)
from fungrad.nn.scaled import (get_scaled_dot_general_config, scaled_dot_general,
                               scaled_matmul)

__all__ = functions.__all__ + [
    "initializers", "moe",
    # attention
    "KVCache", "apply_rope", "attention_init", "attention_mask", "cached_attention",
    "dot_product_attention", "init_kv_cache", "multi_head_attention", "rope_frequencies",
    "token_positions", "write_cache",
    # layers
    "BatchNormState", "Layer", "avg_pool", "batch_norm", "batch_norm_state", "causal_conv1d",
    "conv", "conv_init", "dropout", "embedding", "embedding_attend", "embedding_init",
    "global_avg_pool", "global_max_pool", "group_norm", "layer_norm", "linear", "linear_init",
    "max_pool", "mlp", "mlp_init", "norm_init", "rms_norm", "sequential", "swiglu", "swiglu_init",
    # losses
    "cross_entropy", "huber_loss", "kl_divergence", "l1_loss", "mse",
    "sigmoid_binary_cross_entropy", "smooth_labels", "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels", "squared_error",
    # params
    "DynamicLossScale", "all_finite", "cast_floating", "count_params", "global_norm",
    # block-scaled matmuls
    "get_scaled_dot_general_config", "scaled_dot_general", "scaled_matmul"]
__dir__ = public_dir(__all__)
