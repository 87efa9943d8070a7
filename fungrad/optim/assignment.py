r"""``optax.assignment``: the linear assignment problem, solved by the Hungarian algorithm.

Given an :math:`n \times m` cost matrix :math:`C`, find :math:`\min(n, m)` pairs of rows and
columns, each row and column used at most once, of least total cost: the matching of
predictions to targets in set-prediction losses (DETR), of tracks to detections, ... Both
solvers are written with ``lax`` loops on arrays of static shapes, so they run under
``jit`` (and ``vmap``) as optax's do, and return optax's assignment.
"""
from __future__ import annotations

from typing import Any

import fungrad.numpy as jnp
from fungrad import lax
from fungrad import tree as _tree

__all__ = ["base_hungarian_algorithm", "hungarian_algorithm"]


def _check_cost_matrix(fname: str, cost_matrix: Any) -> None:
    if jnp.ndim(cost_matrix) != 2:
        raise ValueError(f"{fname}: `cost_matrix` must be a matrix, got shape "
                         f"{jnp.shape(cost_matrix)}.")


def _empty_assignment() -> tuple[Any, Any]:
    return jnp.zeros(0, int), jnp.zeros(0, int)


# --------------------------------------------------------------------------- Crouse (2016)

def _augpath_inner(it: Any, val: tuple) -> tuple:
    """One remaining column ``j`` of the shortest augmenting path search: its reduced cost
    from row ``i``, and the column of lowest cost so far (free columns win ties)."""
    remaining, min_value, costs, i, u, v, shortest_path_costs, path, lowest, row4col, index = val
    j = remaining[it]
    r = min_value + costs[i, j] - u[i] - v[j]
    path = path.at[j].set(jnp.where(r < shortest_path_costs[j], i, path[j]))
    shortest_path_costs = shortest_path_costs.at[j].min(r)
    index = jnp.where((shortest_path_costs[j] < lowest)
                      | ((shortest_path_costs[j] == lowest) & (row4col[j] == -1)), it, index)
    lowest = jnp.minimum(lowest, shortest_path_costs[j])
    return remaining, min_value, costs, i, u, v, shortest_path_costs, path, lowest, row4col, index


def _augpath_tail(val: tuple) -> tuple:
    """Take the chosen column out of the remaining ones: it is the sink if free, else the
    search goes on from the row it is assigned to."""
    remaining, index, row4col, sink, i, sc, num_remaining = val
    j = remaining[index]
    free = row4col[j] == -1
    sink = jnp.where(free, j, sink)
    i = jnp.where(free, i, row4col[j])
    sc = sc.at[j].set(True)
    num_remaining -= 1
    remaining = remaining.at[index].set(remaining[num_remaining])
    return remaining, sink, i, sc, num_remaining


def _augpath_body(val: tuple) -> tuple:
    """One step of the shortest augmenting path search from ``current_row``."""
    (costs, u, v, path, row4col, current_row, min_value, num_remaining, remaining, sr, sc,
     shortest_path_costs, sink) = val
    sr = sr.at[current_row].set(True)
    init = (remaining, min_value, costs, current_row, u, v, shortest_path_costs, path, jnp.inf,
            row4col, -1)
    (remaining, _, costs, current_row, u, v, shortest_path_costs, path, lowest, row4col,
     index) = lax.fori_loop(0, num_remaining, _augpath_inner, init)
    min_value = lowest
    sink = jnp.where(min_value == jnp.inf, -1, sink)  # an infeasible cost matrix
    state = remaining, index, row4col, sink, current_row, sc, num_remaining
    remaining, sink, current_row, sc, num_remaining = _tree.map(
        lambda new, old: jnp.where(sink == -1, new, old), _augpath_tail(state),
        (remaining, sink, current_row, sc, num_remaining))
    return (costs, u, v, path, row4col, current_row, min_value, num_remaining, remaining, sr,
            sc, shortest_path_costs, sink)


def _find_augmenting_path(costs: Any, u: Any, v: Any, path: Any, row4col: Any,
                          current_row: Any) -> tuple:
    """The sink of a shortest augmenting path from ``current_row``, with the search's rows
    and columns visited and path costs (for the dual update)."""
    n_rows, n_cols = costs.shape
    init = (costs, u, v, path, row4col, current_row, 0, n_cols, jnp.arange(n_cols)[::-1],
            jnp.zeros(n_rows, bool), jnp.zeros(n_cols, bool), jnp.full(n_cols, jnp.inf), -1)
    (_, _, _, path, _, _, min_value, _, _, sr, sc, shortest_path_costs,
     sink) = lax.while_loop(lambda val: val[-1] == -1, _augpath_body, init)
    return sink, min_value, sr, sc, shortest_path_costs, path


def _lsa_body(current_row: Any, val: tuple) -> tuple:
    """Assign ``current_row``: find an augmenting path, update the dual variables ``u`` and
    ``v``, and flip the assignments along the path."""
    costs, u, v, path, row4col, col4row = val
    sink, min_value, sr, sc, shortest_path_costs, path = _find_augmenting_path(
        costs, u, v, path, row4col, current_row)
    u = u.at[current_row].add(min_value)
    mask = sr & (jnp.arange(costs.shape[0]) != current_row)
    u = jnp.where(mask, u + min_value - shortest_path_costs[col4row], u)
    v = jnp.where(sc, v + shortest_path_costs - min_value, v)

    def augment(carry):
        sink, row4col, col4row, _ = carry
        i = path[sink]
        row4col = row4col.at[sink].set(i)
        col4row, sink = col4row.at[i].set(sink), col4row[i]
        return sink, row4col, col4row, i == current_row

    _, row4col, col4row, _ = lax.while_loop(lambda val: ~val[-1], augment,
                                            (sink, row4col, col4row, False))
    return costs, u, v, path, row4col, col4row


def base_hungarian_algorithm(cost_matrix: Any) -> tuple[Any, Any]:
    r"""The Hungarian algorithm for the linear assignment problem, after Crouse's
    pseudocode (2016), in :math:`O(n^2 m)`.

    Finds :math:`\min(n, m)` pairs ``(i[k], j[k])`` of distinct rows and distinct columns
    of least total cost ``cost_matrix[i, j].sum()``. ``hungarian_algorithm`` solves the
    same problem with a simpler program, and is usually faster.

    Args:
        cost_matrix: the ``(n, m)`` matrix of costs.

    Returns:
        The row indices ``i`` (increasing) and the column indices ``j`` of the assignment.

    Raises:
        ValueError: if ``cost_matrix`` is not a matrix.

    Example:
        >>> import fungrad.numpy as jnp
        >>> from fungrad.optim import assignment
        >>> cost = jnp.array([[8, 4, 7], [5, 2, 3], [9, 6, 7], [9, 4, 8]])
        >>> i, j = assignment.base_hungarian_algorithm(cost)
        >>> print("cost:", cost[i, j].sum(), "i:", i, "j:", j)
        cost: 15 i: [0 1 3] j: [0 2 1]
    """
    _check_cost_matrix("base_hungarian_algorithm", cost_matrix)
    if cost_matrix.shape[0] == 0 or cost_matrix.shape[1] == 0:
        return _empty_assignment()
    transpose = cost_matrix.shape[1] < cost_matrix.shape[0]
    costs = (cost_matrix.T if transpose else cost_matrix).astype(float)
    n_rows, n_cols = costs.shape
    init = (costs, jnp.zeros(n_rows, costs.dtype), jnp.zeros(n_cols, costs.dtype),
            jnp.full(n_cols, -1), jnp.full(n_cols, -1), jnp.full(n_rows, -1))
    col4row = lax.fori_loop(0, n_rows, _lsa_body, init)[-1]
    if transpose:
        i = col4row.argsort()
        return col4row[i], i
    return jnp.arange(n_rows), col4row


# --------------------------------------------------------------------------- Scenic's version

def _masked_argmin(array: Any, mask: Any) -> Any:
    return jnp.argmin(jnp.where(mask, array, jnp.inf))


def _assign_row(cost_matrix: Any, state: tuple, row: Any) -> tuple:
    """Add ``row`` to the assignment: a Dijkstra-like search over the columns (1-based,
    column 0 standing for the new row) for an augmenting path, then the path flipped."""
    u, v, parent = state
    rows, cols = cost_matrix.shape
    parent = parent.at[0].set(row + 1)

    def search_body(state):
        u, v, used, minv, path, col = state
        used = used.at[col].set(True)
        unused = ~used[1:]
        cur = cost_matrix[parent[col] - 1, :] - u[parent[col]] - v[1:]
        cur = jnp.where(unused, cur, jnp.inf)
        path = jnp.where(cur < minv, col, path)
        minv = jnp.where(cur < minv, cur, minv)
        col = _masked_argmin(minv, unused) + 1
        delta = minv.min(where=unused, initial=jnp.inf)
        # the potentials of the rows on the tree (u's spare last slot for the others)
        u = u.at[jnp.where(used, parent, rows + 1)].add(delta)
        v = jnp.where(used, v - delta, v)
        minv = jnp.where(unused, minv - delta, minv)
        return u, v, used, minv, path, col

    init = (u, v, jnp.zeros(cols + 1, bool), jnp.full(cols, jnp.inf), jnp.zeros(cols, int), 0)
    u, v, _, _, path, col = lax.while_loop(lambda s: parent[s[-1]] != 0, search_body, init)

    def back_body(state):  # walk the path back, shifting each column's row along it
        parent, col = state
        prev_col = path[col - 1]
        return parent.at[col].set(parent[prev_col]), prev_col

    parent, _ = lax.while_loop(lambda s: s[1] != 0, back_body, (parent, col))
    return (u, v, parent), None


def hungarian_algorithm(cost_matrix: Any) -> tuple[Any, Any]:
    r"""The Hungarian algorithm for the linear assignment problem, as the Scenic library
    writes it (Dehghani et al., 2022): one shortest augmenting path per row, in a
    ``lax.scan``.

    Finds :math:`\min(n, m)` pairs ``(i[k], j[k])`` of distinct rows and distinct columns
    of least total cost ``cost_matrix[i, j].sum()``. It gives the same assignment as
    ``base_hungarian_algorithm`` when the optimum is unique, with a simpler program.

    Args:
        cost_matrix: the ``(n, m)`` matrix of costs.

    Returns:
        The row indices ``i`` and the column indices ``j`` of the assignment.

    Raises:
        ValueError: if ``cost_matrix`` is not a matrix.

    Example:
        >>> import fungrad.numpy as jnp
        >>> from fungrad.optim import assignment
        >>> cost = jnp.array([[90, 80, 75, 70], [35, 85, 55, 65], [125, 95, 90, 95],
        ...                   [45, 110, 95, 115], [50, 100, 90, 100]])
        >>> i, j = assignment.hungarian_algorithm(cost)
        >>> print("cost:", cost[i, j].sum())
        cost: 265
    """
    _check_cost_matrix("hungarian_algorithm", cost_matrix)
    if cost_matrix.shape[0] == 0 or cost_matrix.shape[1] == 0:
        return _empty_assignment()
    transpose = cost_matrix.shape[0] > cost_matrix.shape[1]
    costs = cost_matrix.T if transpose else cost_matrix
    rows, cols = costs.shape
    init = (jnp.zeros(rows + 2), jnp.zeros(cols + 1), jnp.zeros(cols + 1, int))
    (_, _, parent), _ = lax.scan(lambda s, r: _assign_row(costs, s, r), init, jnp.arange(rows))
    # top_k is costly: a square matrix has every column assigned, in order
    if rows == cols:
        parent, indices = parent[1:], jnp.arange(rows)
    else:
        parent, indices = lax.top_k(parent[1:], rows)
    parent = parent - 1  # back to 0-based rows
    return (indices, parent) if transpose else (parent, indices)
