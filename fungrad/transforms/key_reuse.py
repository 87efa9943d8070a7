"""PRNG key reuse checking (``jax.experimental.key_reuse``), on while ``debug_key_reuse`` is set.

A typed key may be *consumed* once: by a sampler, by ``split``, or by indexing a key array
(which consumes the keys it picks and returns fresh ones). ``fold_in``, ``key_data`` and
``clone`` do not consume; ``clone`` returns a fresh key. Raw ``uint32`` keys are not
tracked, as in JAX. With the flag off, nothing here runs and the primitives below are never
bound.

Two primitives record key use in programs: ``key_consume_p`` (the identity on a key's
``uint32`` data, which consumes the elements its ``mask`` selects, all by default) and
``key_clone_p`` (a copy that is a fresh key). Typed keys hold their data as an ordinary
``uint32`` array, so a jaxpr cannot tell key data from other integers; instead, consumption
is explicit, and the checker follows the data from a consume back to where it came from
(through reshapes, slices, transposes, broadcasts, dynamic slices and gathers, and through
calls) to find which elements of which variable it consumes.

Two checks, as JAX's:

* **static**, on a jaxpr (``jaxpr_signature``): a variable consumed twice raises
  ``KeyReuseError`` ("In normal, argument 0 is already consumed."). ``jit`` checks every
  function it traces; ``cond`` consumes what either branch consumes; a ``scan`` or
  ``while_loop`` body may consume a carried key only if it returns a fresh one in its
  place, and never a key it closes over. The result is the jaxpr's *signature*: which
  inputs it consumes (and which elements), which outputs are inputs passed through, which
  outputs are consumed keys.
* **eager**, on arrays (``process_primitive``, installed on the eager trace while the flag
  is set): each buffer of key data has a consumed mask; a consume of a consumed buffer, or a
  call (``jit``, ``cond``, ``scan``, ...) whose signature consumes one, raises
  ``KeyReuseError`` ("Previously-consumed key passed to normal at index 0").

Differentiating checkpointed code (``checkpoint``) recomputes its forward pass, consuming
the same keys again, which is no reuse (JAX marks that recomputation; fungrad's partial
evaluation does not). So the results of ``optimization_barrier``, through which the
recomputation reads its inputs, count as new values, and a ``checkpoint`` call's
consumption of its operands never raises (its body is checked inside as any function).
"""
from __future__ import annotations

import weakref
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from fungrad._core import core
from fungrad._core.array import Array
from fungrad._core.core import ClosedJaxpr, Jaxpr, Literal, Primitive, Var
from fungrad._core.lowering import def_compiler_traits
from fungrad.errors import KeyReuseError
from fungrad.interpreters import ad, batching
from fungrad.lax.control_flow.conditionals import cond_p
from fungrad.lax.control_flow.loops import scan_p
from fungrad.lax.control_flow.while_loops import while_p
from fungrad.transforms.checkpoint import remat_p
from fungrad.transforms.jit_primitive import jit_p

__all__ = ["KeyMask", "key_consume_p", "key_clone_p", "consume", "clone", "Signature",
           "jaxpr_signature", "check_jaxpr", "process_primitive", "forget"]


# --------------------------------------------------------------------------- the primitives

class KeyMask:
    """A static boolean mask over a key's ``uint32`` data (hashable, so it can be a param):
    which elements a consume takes. ``None`` in its place means all of them."""
    __slots__ = ("array", "_hash")

    def __init__(self, array: np.ndarray) -> None:
        self.array = np.array(array, dtype=bool)
        self.array.flags.writeable = False
        self._hash = hash((self.array.shape, self.array.tobytes()))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KeyMask) and self.array.shape == other.array.shape and \
            bool((self.array == other.array).all())

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return f"KeyMask({np.flatnonzero(self.array).tolist()} of {self.array.shape})"


def consume(data: Any, name: str, mask: np.ndarray | None = None) -> Any:
    """Record that ``name`` consumes the typed key whose data is ``data`` (only the elements
    of ``mask``, a boolean array of ``data``'s shape, when given); returns ``data``, to be
    used in its place so that the record stays in the program."""
    if mask is not None and mask.all():
        mask = None
    return key_consume_p.bind(data, name=name, mask=None if mask is None else KeyMask(mask))


def clone(data: Any) -> Any:
    """A copy of key data that is a fresh, unconsumed key (``random.clone`` while checking)."""
    return key_clone_p.bind(data)


def _key_consume_batch(axis_size: int, vals: Sequence[Any], dims: Sequence[Any], *,
                       name: str, mask: KeyMask | None) -> tuple[Any, Any]:
    """The mask gains the batch dimension: every member consumes the same elements."""
    x, d = vals[0], dims[0]
    if mask is not None:
        shape = core.get_aval(x).shape
        mask = KeyMask(np.broadcast_to(np.expand_dims(mask.array, d), shape))
    return key_consume_p.bind(x, name=name, mask=mask), d


key_consume_p = Primitive("key_consume")
key_consume_p.def_impl(lambda xp, x, *, name, mask: x)
key_consume_p.def_abstract_eval(lambda x, *, name, mask: x)
ad.def_nondiff(key_consume_p)
batching.def_batch(key_consume_p, _key_consume_batch)
def_compiler_traits(key_consume_p, identity=True)

# Not an identity for the compiler: its result must be a new buffer, a key of its own.
key_clone_p = Primitive("key_clone")
key_clone_p.def_impl(lambda xp, x: x.copy())
key_clone_p.def_abstract_eval(lambda x: x)
ad.def_nondiff(key_clone_p)
batching.defvectorized(key_clone_p)


# --------------------------------------------------------------------------- signatures

class Signature(NamedTuple):
    """What a jaxpr (or a call of one) does to keys, by position.

    ``sinks``: input index -> the elements it consumes (a boolean array of the input's
    shape); ``forwards``: output index -> the input it passes through; ``consumed``: the
    outputs that are keys consumed inside. Inputs are the invars, then the constvars.
    ``alternatives``: for a call that runs one of several functions (``cond``), each one's
    sinks, which must not clash with what was consumed before but may with each other."""
    sinks: dict
    forwards: dict
    consumed: frozenset
    alternatives: tuple = ()


EMPTY = Signature({}, {}, frozenset())


def _shape(v: Any) -> tuple:
    return tuple(v.aval.shape)


def _positional(forward: Callable[[np.ndarray], np.ndarray]) -> Callable:
    """A link of an output whose elements are input elements moved by ``forward`` (which
    moves an array of the input's shape to the output's): maps a mask of the output to the
    mask of the input elements it selects."""
    def link(eqn: core.JaxprEqn, i: int) -> Callable[[np.ndarray], np.ndarray]:
        shape = _shape(eqn.invars[i])
        positions = forward(np.arange(int(np.prod(shape))).reshape(shape), eqn)

        def back(mask: np.ndarray) -> np.ndarray:
            picked = np.zeros(int(np.prod(shape)), bool)
            picked[positions[mask]] = True
            return picked.reshape(shape)
        return back
    return link


def _whole(eqn: core.JaxprEqn, i: int) -> Callable[[np.ndarray], np.ndarray]:
    """A link to an input the output's elements may come from anywhere in (indices known
    at run time, or values mixed): any selected output element selects all of it."""
    shape = _shape(eqn.invars[i])
    return lambda mask: np.full(shape, bool(mask.any()))


def _concatenated(eqn: core.JaxprEqn, i: int) -> Callable[[np.ndarray], np.ndarray]:
    """The link of ``concatenate``'s output to its input ``i``: a block of the output."""
    d = eqn.params["dimension"]
    start = sum(v.aval.shape[d] for v in eqn.invars[:i])
    block = (slice(None),) * d + (slice(start, start + eqn.invars[i].aval.shape[d]),)
    return lambda mask: mask[block]


def _broadcast(p: np.ndarray, eqn: core.JaxprEqn) -> np.ndarray:
    shape, dims = eqn.params["shape"], eqn.params["broadcast_dimensions"]
    expanded = [1] * len(shape)
    for i, d in enumerate(dims):
        expanded[d] = p.shape[i]
    return np.broadcast_to(p.reshape(expanded), shape)


def _slice(p: np.ndarray, eqn: core.JaxprEqn) -> np.ndarray:
    params = eqn.params
    strides = params["strides"] or (1,) * p.ndim
    return p[tuple(map(slice, params["start_indices"], params["limit_indices"], strides))]


_same = _positional(lambda p, eqn: p)
_reshaped = _positional(lambda p, eqn: p.reshape(_shape(eqn.outvars[0])))

# How the output of a data-moving primitive is made of its inputs' elements: primitive
# name -> [(input index, link)] (``"each"``: output i is input i). A link, given the
# equation and the input index, maps a mask of the output to a mask of the input.
_LINKS: dict[str, Any] = {
    "reshape": [(0, _reshaped)], "squeeze": [(0, _reshaped)], "expand_dims": [(0, _reshaped)],
    "transpose": [(0, _positional(lambda p, eqn: p.transpose(eqn.params["permutation"])))],
    "rev": [(0, _positional(lambda p, eqn: np.flip(p, eqn.params["dimensions"])))],
    "slice": [(0, _positional(_slice))],
    "broadcast_in_dim": [(0, _positional(_broadcast))],
    "convert_element_type": [(0, _same)], "copy": [(0, _same)], "copy_p": [(0, _same)],
    "name": [(0, _same)], "stop_gradient": [(0, _same)],
    "device_put": "each",
    "dynamic_slice": [(0, _whole)], "gather": [(0, _whole)], "pad": [(0, _whole)],
    "dynamic_update_slice": [(0, _whole), (1, _whole)],
    "select_n": "values", "concatenate": "blocks",
}
_U32 = np.dtype(np.uint32)


class _Checker:
    """One pass over a jaxpr: which elements of which variables are consumed, and how
    variables are made of other variables' elements (``links``)."""

    def __init__(self) -> None:
        self.consumed: dict[Var, np.ndarray] = {}  # variable -> its consumed elements
        self.links: dict[Var, list] = {}  # variable -> [(parent atom, mask map)]

    def sink(self, v: Any, mask: np.ndarray, mark: bool = True) -> bool:
        """Consume the elements ``mask`` selects of ``v`` (and of the variables they come
        from); True if one already was. With ``mark=False`` only look."""
        if type(v) is Literal or not mask.any():
            return False
        links = self.links.get(v)
        if links is None:
            state = self.consumed.get(v)
            reused = state is not None and bool((state & mask).any())
            if mark:
                if state is None:
                    state = self.consumed[v] = np.zeros(_shape(v), bool)
                state |= mask
            return reused
        reused = False
        for parent, back in links:
            reused = self.sink(parent, back(mask), mark) or reused
        return reused

    def roots(self, v: Any) -> list[Var]:
        """The variables no equation links ``v``'s elements further back to."""
        if type(v) is Literal:
            return []
        links = self.links.get(v)
        return [v] if links is None else [r for parent, _ in links for r in self.roots(parent)]

    def equation(self, eqn: core.JaxprEqn) -> None:
        prim = eqn.primitive
        if prim is key_consume_p:
            mask = eqn.params["mask"]
            mask = np.ones(_shape(eqn.invars[0]), bool) if mask is None else mask.array
            if self.sink(eqn.invars[0], mask):
                raise KeyReuseError(f"In {eqn.params['name']}, argument 0 is already consumed.")
            return
        rule = _CALL_RULES.get(prim)
        if rule is None and any(isinstance(p, (ClosedJaxpr, Jaxpr)) for p in eqn.params.values()):
            rule = _generic_call_rule
        if rule is not None:
            self.call(eqn, rule(eqn.params, len(eqn.invars)))
            return
        spec = _LINKS.get(prim.name)
        if spec is None:
            return
        if spec == "each":
            for i, (v_in, v_out) in enumerate(zip(eqn.invars, eqn.outvars)):
                if v_out.aval.dtype == _U32:
                    self.links[v_out] = [(v_in, _same(eqn, i))]
            return
        if eqn.outvars[0].aval.dtype != _U32:
            return
        if spec == "values":
            spec = [(i, _whole) for i in range(1, len(eqn.invars))]
        elif spec == "blocks":
            spec = [(i, _concatenated) for i in range(len(eqn.invars))]
        self.links[eqn.outvars[0]] = [(eqn.invars[i], link(eqn, i)) for i, link in spec]

    def call(self, eqn: core.JaxprEqn, sig: Signature) -> None:
        """Apply the signature of a call-like equation to its operands and results."""
        label = _label(eqn.primitive, eqn.params)
        lenient = eqn.primitive is remat_p
        for j, i in sig.forwards.items():
            same = _shape(eqn.outvars[j]) == _shape(eqn.invars[i])
            link = _same if same else _whole
            self.links[eqn.outvars[j]] = [(eqn.invars[i], link(eqn, i))]
        if sig.alternatives:  # each against the state before the call, then all recorded
            for sinks in sig.alternatives:
                for i, mask in sinks.items():
                    if self.sink(eqn.invars[i], mask, mark=False) and not lenient:
                        raise KeyReuseError(f"In {label}, argument {i} is already consumed.")
            for i, mask in sig.sinks.items():
                self.sink(eqn.invars[i], mask)
        else:
            for i, mask in sig.sinks.items():
                if self.sink(eqn.invars[i], mask) and not lenient:
                    raise KeyReuseError(f"In {label}, argument {i} is already consumed.")
        for j in sig.consumed:
            self.sink(eqn.outvars[j], np.ones(_shape(eqn.outvars[j]), bool))

    def signature(self, jaxpr: Jaxpr) -> Signature:
        inputs = [*jaxpr.invars, *jaxpr.constvars]
        index = {v: i for i, v in enumerate(inputs)}
        sinks = {i: self.consumed[v].copy() for i, v in enumerate(inputs)
                 if v in self.consumed and self.consumed[v].any()}
        forwards, consumed = {}, set()
        for j, v in enumerate(jaxpr.outvars):
            passed = [index[r] for r in self.roots(v) if r in index]
            if passed:
                forwards[j] = passed[0]
            elif type(v) is not Literal and self.sink(v, np.ones(_shape(v), bool), mark=False):
                consumed.add(j)
        return Signature(sinks, forwards, frozenset(consumed))


_signatures: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def jaxpr_signature(jaxpr: Jaxpr) -> Signature:
    """The key-reuse signature of ``jaxpr``; raises ``KeyReuseError`` where it consumes a key
    twice. Cached per jaxpr."""
    sig = _signatures.get(jaxpr)
    if sig is None:
        checker = _Checker()
        for eqn in jaxpr.eqns:
            checker.equation(eqn)
        sig = _signatures[jaxpr] = checker.signature(jaxpr)
    return sig


def check_jaxpr(jaxpr: Jaxpr | ClosedJaxpr) -> None:
    """Raise ``KeyReuseError`` if ``jaxpr`` consumes a key twice (``jit`` calls this on every
    function it traces while ``debug_key_reuse`` is set)."""
    jaxpr_signature(jaxpr.jaxpr if isinstance(jaxpr, ClosedJaxpr) else jaxpr)


def _inner(j: Any) -> Jaxpr:
    return j.jaxpr if isinstance(j, ClosedJaxpr) else j


def _label(prim: Primitive, params: dict) -> str:
    return f"jit({params['name']})" if prim is jit_p else str(prim)


# --------------------------------------------------------------------------- call rules

def _only_operands(sig: Signature, n_in: int) -> Signature:
    """``sig`` without what concerns the callee's own constants (indices past the operands):
    those are concrete values the caller never sees."""
    return Signature({i: m for i, m in sig.sinks.items() if i < n_in},
                     {j: i for j, i in sig.forwards.items() if i < n_in}, sig.consumed)


def _jit_rule(params: dict, n_in: int) -> Signature:
    return _only_operands(jaxpr_signature(_inner(params["jaxpr"])), n_in)


def _generic_call_rule(params: dict, n_in: int) -> Signature:
    """A call of one jaxpr on all its operands (custom derivatives, ``checkpoint``, ...);
    other primitives holding jaxprs pass keys through unchecked."""
    inner = [_inner(p) for p in params.values() if isinstance(p, (ClosedJaxpr, Jaxpr))]
    if len(inner) == 1 and len(inner[0].invars) == n_in:
        return _only_operands(jaxpr_signature(inner[0]), n_in)
    return EMPTY


def _cond_rule(params: dict, n_in: int) -> Signature:
    """Either branch may run: the operands consumed by any, the results forwarded by all,
    the results consumed in any (operand 0 is the branch index)."""
    sigs = [jaxpr_signature(_inner(b)) for b in params["branches"]]
    sinks: dict[int, np.ndarray] = {}
    for sig in sigs:
        for i, mask in _only_operands(sig, n_in - 1).sinks.items():
            sinks[i + 1] = sinks[i + 1] | mask if i + 1 in sinks else mask
    forwards = {j: i + 1 for j, i in sigs[0].forwards.items()
                if all(s.forwards.get(j) == i for s in sigs[1:])}
    consumed = frozenset().union(*(s.consumed for s in sigs))
    alternatives = tuple({i + 1: m for i, m in _only_operands(s, n_in - 1).sinks.items()}
                         for s in sigs)
    return Signature(sinks, forwards, consumed, alternatives)


def _loop_error(what: str, why: str) -> KeyReuseError:
    return KeyReuseError(f"{what} function leads to key reuse when repeatedly executed, "
                         f"because {why}. Split the key in the loop and carry the new key.")


def _scan_rule(params: dict, n_in: int) -> Signature:
    """The body runs many times: it may consume no constant, and a carried key only if it
    returns a fresh one in its place; the scan consumes the initial carry and all of xs."""
    sig = jaxpr_signature(_inner(params["jaxpr"]))
    n_consts, n_carry = params["num_consts"], params["num_carry"]
    if any(i < n_consts for i in sig.sinks):
        raise _loop_error("scan body", "key constants are repeatedly consumed")
    for i in sig.sinks:
        c = i - n_consts
        if c < n_carry and (c in sig.forwards or c in sig.consumed):
            raise _loop_error("scan body", "consumed inputs don't match sourced outputs")
    sinks = {}
    for i, mask in _only_operands(sig, n_in).sinks.items():
        sinks[i] = mask if i < n_consts + n_carry else \
            np.broadcast_to(mask, (params["length"],) + mask.shape)
    forwards = {j: i for j, i in sig.forwards.items() if j < n_carry and i == n_consts + j}
    return Signature(sinks, forwards, sig.consumed)


def _while_rule(params: dict, n_in: int) -> Signature:
    """``scan``'s rules for both functions, and the two may not consume the same key."""
    cond = jaxpr_signature(_inner(params["cond_jaxpr"]))
    body = jaxpr_signature(_inner(params["body_jaxpr"]))
    nc, nb = params["cond_nconsts"], params["body_nconsts"]
    n_carry = n_in - nc - nb
    if any(i < nc for i in cond.sinks):
        raise _loop_error("while_loop cond", "key constants are repeatedly consumed")
    if any(i < nb for i in body.sinks):
        raise _loop_error("while_loop body", "key constants are repeatedly consumed")
    fresh = {j for j in range(n_carry) if j not in body.forwards and j not in body.consumed}
    body_carry = {i - nb for i in body.sinks if nb <= i < nb + n_carry}
    cond_carry = {i - nc for i in cond.sinks if nc <= i < nc + n_carry}
    if not cond_carry <= fresh:
        raise _loop_error("while_loop cond", "consumed inputs don't match sourced outputs")
    if not body_carry <= fresh:
        raise _loop_error("while_loop body", "consumed inputs don't match sourced outputs")
    if body_carry & cond_carry:
        raise KeyReuseError("while_loop cond and body functions both use the same key.")
    sinks = {nc + nb + c: body.sinks[nb + c] for c in body_carry}
    sinks.update({nc + nb + c: cond.sinks[nc + c] for c in cond_carry})
    forwards = {j: nc + nb + j for j, i in body.forwards.items() if i == nb + j}
    return Signature(sinks, forwards, frozenset(j for j in body.consumed if j < n_carry))


_CALL_RULES: dict[Primitive, Callable[[dict, int], Signature]] = {
    jit_p: _jit_rule, cond_p: _cond_rule, scan_p: _scan_rule, while_p: _while_rule,
    remat_p: _generic_call_rule,
}


# --------------------------------------------------------------------------- eager checks

# Consumed masks of eager key data, by buffer: id -> (weak reference, flat mask).
_consumed: dict[int, tuple[Any, np.ndarray]] = {}


def _buffer(x: Any) -> Any:
    return x._value if type(x) is Array else x


def _state(buf: Any) -> np.ndarray | None:
    entry = _consumed.get(id(buf))
    return entry[1] if entry is not None and entry[0]() is buf else None


def _mark(buf: Any, mask: np.ndarray | None) -> None:
    """Add ``mask`` (all elements if None) to ``buf``'s consumed elements."""
    if not hasattr(buf, "shape"):
        return
    state = _state(buf)
    if state is None:
        key = id(buf)
        try:
            ref = weakref.ref(buf, lambda _, key=key: _consumed.pop(key, None))
        except TypeError:  # not weakly referenceable: keep the buffer alive with its mask
            ref = (lambda buf=buf: buf)
        state = np.zeros(int(np.prod(buf.shape)), bool)
        _consumed[key] = (ref, state)
    state[slice(None) if mask is None else np.asarray(mask).ravel()] = True


def _reused(buf: Any, mask: np.ndarray | None) -> bool:
    state = _state(buf)
    if state is None:
        return False
    return bool(state.any() if mask is None else state[np.asarray(mask).ravel()].any())


def forget() -> None:
    """Drop every eager consumption record (keys used so far become usable again)."""
    _consumed.clear()


def process_primitive(default: Callable[[Primitive, Sequence[Any], dict], Any],
                      prim: Primitive, args: Sequence[Any], params: dict) -> Any:
    """The eager trace's ``process_primitive`` while ``debug_key_reuse`` is set: ``default``
    (the usual one) with consumption of key buffers checked and recorded around it."""
    if prim is key_consume_p:
        buf, mask = _buffer(args[0]), params["mask"]
        mask = None if mask is None else mask.array
        if _reused(buf, mask):
            raise KeyReuseError(f"Previously-consumed key passed to {params['name']} at "
                                "index 0")
        out = default(prim, args, params)
        _mark(buf, mask)
        return out
    if prim.name == "optimization_barrier":  # results are new values (see the module doc)
        return [Array(o._value.copy(), o.weak_type, o._device)
                if _state(_buffer(a)) is not None else o
                for a, o in zip(args, default(prim, args, params))]
    rule = _CALL_RULES.get(prim)
    if rule is None and prim.multiple_results and \
            any(isinstance(p, (ClosedJaxpr, Jaxpr)) for p in params.values()):
        rule = _generic_call_rule
    if rule is None:
        return default(prim, args, params)
    sig = rule(params, len(args) + (len(params["jaxpr"].consts) if prim is jit_p else 0))
    inputs = [*args, *params["jaxpr"].consts] if prim is jit_p else list(args)
    label = _label(prim, params)
    for i, mask in sig.sinks.items():
        if prim is not remat_p and _reused(_buffer(inputs[i]), mask):
            raise KeyReuseError(f"Previously-consumed key passed to {label} at index {i}")
    outs = default(prim, args, params)
    for i, mask in sig.sinks.items():
        _mark(_buffer(inputs[i]), mask)
    for j, i in sig.forwards.items():  # a key passed through keeps its state, as in JAX
        state = _state(_buffer(inputs[i]))
        if state is not None and state.any():
            _mark(_buffer(outs[j]), None)
    for j in sig.consumed:
        _mark(_buffer(outs[j]), None)
    return outs
