"""``fungrad.lax``: the primitives under their ``jax.lax`` names."""
from fungrad.lax.elementwise import (add, add_p, cos, cos_p, div, div_p, eq, eq_p, exp, exp_p, ge,
                                     ge_p, gt, gt_p, integer_pow, integer_pow_p, le, le_p, log,
                                     log_p, lt, lt_p, max, max_p, min, min_p, mul, mul_p, ne, ne_p,
                                     neg, neg_p, select, select_n, select_n_p, sin, sin_p, sqrt,
                                     sqrt_p, sub, sub_p, tanh, tanh_p)
from fungrad.lax.reductions import (reduce_max, reduce_max_p, reduce_min, reduce_min_p,
                                    reduce_sum, reduce_sum_p)
from fungrad.lax.shapes import (broadcast, broadcast_in_dim, broadcast_in_dim_p,
                                convert_element_type, convert_element_type_p, expand_dims, full,
                                full_like, reshape, reshape_p, rev, rev_p, squeeze, squeeze_p,
                                transpose, transpose_p)
