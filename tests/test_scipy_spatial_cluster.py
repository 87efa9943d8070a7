"""``fungrad.scipy.spatial.transform`` (``Rotation``, ``Slerp``) and
``fungrad.scipy.cluster.vq`` against jax on the same inputs: values, shapes, dtypes,
derivatives, ``jit``, ``vmap`` and the errors for bad arguments.

Nearly all the time goes to jax compiling its references: batches of rotations all have
``N`` rows (eager jax compiles each primitive once per shape), and the larger references
run as one program compiled with ``QUICK_COMPILE``.
"""
import itertools

import jax
import jax.scipy.cluster.vq as jax_vq
import jax.scipy.spatial.transform as JT
import numpy as np
import pytest

import fungrad
import fungrad.scipy.cluster.vq as fg_vq
import fungrad.scipy.spatial.transform as FT
from harness import GRAD_TOL, QUICK_COMPILE, assert_same, compare, compare_transforms, rand, \
    to_fg, to_jax

RNG = np.random.default_rng(0)
N = 16
S = np.sqrt(0.5)
# Rotations whose Euler angles are exact or in gimbal lock: the identity, half turns and
# quarter turns (both senses) about each axis.
SPECIAL = np.concatenate([np.eye(4)[[3, 0, 1, 2]],
                          [[S * (n == a) * sign for a in range(3)] + [S]
                           for n in range(3) for sign in (1, -1)]])
SEQUENCES = ["".join(axes) for axes in itertools.product("xyz", repeat=3)
             if axes[0] != axes[1] and axes[1] != axes[2]]  # 6 proper Euler, 6 Tait-Bryan


def quick(fn):
    """jax's ``fn`` as one program, compiled quickly."""
    return jax.jit(fn, compiler_options=QUICK_COMPILE)


def check(make, *args, eager_ref=False):
    """``make(T)``, for ``T`` fungrad's and jax's ``transform`` module, gives the same
    results (fungrad's eager and under ``fungrad.jit``); jax's run by ``quick``, or
    eagerly with ``eager_ref`` (cheaper for many small programs of the same shapes)."""
    ref = (make(JT) if eager_ref else quick(make(JT)))(*to_jax(args))
    compare(make(FT), make(JT), *args, ref_out=ref)


def check_vjp(make, *args):
    """The VJP of ``make(T)`` with respect to every argument, at random cotangents."""
    ct = jax.tree.map(lambda o: rand(RNG, o.shape, o.dtype),
                      jax.eval_shape(make(JT), *to_jax(args)))
    ref = quick(lambda a, c: jax.vjp(make(JT), *a)[1](c))(to_jax(args), to_jax(ct))
    assert_same(fungrad.vjp(make(FT), *to_fg(args))[1](to_fg(ct)), ref, GRAD_TOL,
                check_weak=False)


def unit_quats(dtype=np.float32):
    """``N`` unit quaternions: random ones (about half with ``w < 0``), then ``SPECIAL``."""
    q = RNG.normal(size=(N - len(SPECIAL), 4))
    return np.concatenate([q / np.linalg.norm(q, axis=-1, keepdims=True), SPECIAL]).astype(dtype)


def rotvecs(dtype=np.float32):
    """``N`` rotation vectors: of norm 0, near 0 (on both sides of the series' threshold
    ``1e-3``), near and at pi, and random."""
    special = [[0, 0, 0], [1e-4, 0, 0], [3e-4, -5e-4, 7e-4], [0, 1e-3, 0], [0, 0, 1.1e-3],
               [np.pi - 1e-4, 0, 0], [0, 0, -np.pi], [2, -1.5, 1.9]]
    return np.concatenate([special, RNG.normal(size=(N - len(special), 3))]).astype(dtype)


def near_identity_and_half_turns(dtype=np.float32):
    """``N`` unit quaternions with ``w`` near 1, 0 and -1 (rotations near 0 and near pi)."""
    w = np.resize([1, 1 - 1e-7, 1 - 1e-6, 1e-5, 0, -1e-5, -1 + 1e-6, -1, 0.5], N)[:, None]
    v = RNG.normal(size=(N, 3))
    return np.concatenate([v / np.linalg.norm(v, axis=-1, keepdims=True) * np.sqrt(1 - w * w),
                           w], axis=-1).astype(dtype)


def conversions(T):
    """Every conversion to and from quaternions, on a batch of each representation."""
    def f(q, m, v, p):
        r = T.Rotation(q)
        return {"from_quat": T.Rotation.from_quat(2 * q - 0.1), "as_matrix": r.as_matrix(),
                "from_matrix": T.Rotation.from_matrix(m),
                "as_quat": [r.as_quat(canonical=c, scalar_first=f)
                            for c in (False, True) for f in (False, True)],
                "from_rotvec": T.Rotation.from_rotvec(v),
                "from_rotvec_degrees": T.Rotation.from_rotvec(v * 50, degrees=True),
                "as_rotvec": r.as_rotvec(), "as_rotvec_degrees": r.as_rotvec(degrees=True),
                "magnitude": r.magnitude(), "as_mrp": r.as_mrp(),
                "from_mrp": T.Rotation.from_mrp(p)}
    return f


# --------------------------------------------------------------------------- conversions

def test_conversions():
    q = np.concatenate([near_identity_and_half_turns(), unit_quats(), -SPECIAL.astype("f")])
    # every Shepperd branch
    matrices = np.asarray(quick(lambda q: JT.Rotation.from_quat(q).as_matrix())(to_jax(q)))
    check(conversions, q, matrices, rotvecs(), RNG.normal(size=(N, 3)).astype(np.float32))
    check(lambda T: lambda: (T.Rotation.from_quat([0, 0, 0, 2]),  # lists and integers
                             T.Rotation.from_matrix(np.eye(3, dtype=np.int32)),
                             T.Rotation.from_rotvec(np.array([1, 0, 0])),
                             T.Rotation.from_mrp([1, 0, 0])))


def test_float64():
    with fungrad.enable_x64(True), jax.enable_x64(True):
        q = unit_quats(np.float64)
        check(lambda T: lambda q, m, v, p, a: (conversions(T)(q, m, v, p),
                                               T.Rotation.from_euler("zyx", a),
                                               T.Rotation(q).as_euler("ZXZ")),
              q, np.asarray(quick(lambda q: JT.Rotation.from_quat(q).as_matrix())(to_jax(q))),
              rotvecs(np.float64),
              RNG.normal(size=(N, 3)), RNG.uniform(-3, 3, (N, 3)))


def rotations_away_from_zero(seq):
    """``N`` quaternions whose ``seq`` Euler angles are all at least 0.3 from 0 and +-pi.

    Angles are wrapped as ``(a + pi) % (2 pi) - pi``, which rounds to ``ulp(pi)``
    absolute: an angle near 0, in degrees, keeps too few correct digits for a relative
    comparison.
    """
    angles = RNG.uniform(0.3, 2.8, (N, 3)) * RNG.choice([-1, 1], (N, 3))
    if seq[0].lower() != seq[2].lower():  # Tait-Bryan: the middle angle is in [-pi/2, pi/2]
        angles[:, 1] = RNG.uniform(0.3, 1.3, N) * RNG.choice([-1, 1], N)
    else:  # proper Euler angles: the middle one is in [0, pi]
        angles[:, 1] = np.abs(angles[:, 1])
    return np.asarray(JT.Rotation.from_euler(seq, angles.astype(np.float32)).quat)


@pytest.mark.parametrize("seq", SEQUENCES)
def test_euler_every_sequence(seq):
    angles = RNG.uniform(-3, 3, (N, 3)).astype(np.float32)
    for s in (seq, seq.upper()):  # extrinsic and intrinsic
        check(lambda T: lambda a, d, q, r: (T.Rotation.from_euler(s, a),
                                            T.Rotation.from_euler(s, d, degrees=True),
                                            T.Rotation(q).as_euler(s),
                                            T.Rotation(r).as_euler(s, degrees=True)),
              angles, np.rad2deg(angles), unit_quats(), rotations_away_from_zero(s),
              eager_ref=True)


@pytest.mark.parametrize("seq,angles", [("z", 90), ("X", np.float32(0.5)),
                                        ("y", np.ones((3, 1), np.int32)),
                                        ("xz", np.float32([[0.1, 0.2], [-1, 2]])),
                                        ("ZY", np.float32([0.3, -0.7]))])
def test_euler_fewer_axes(seq, angles):
    check(lambda T: lambda: (T.Rotation.from_euler(seq, angles),
                             T.Rotation.from_euler(seq, angles, degrees=True)), eager_ref=True)


def test_gradients():
    def to_other(T):
        def f(q):
            r = T.Rotation.from_quat(q)
            return (r.as_matrix(), r.as_euler("zyx"), r.as_euler("XZX"), r.as_rotvec(),
                    r.as_mrp(), r.magnitude())
        return f

    def from_other(T):
        return lambda m, a, v, p: [T.Rotation.from_matrix(m).quat,
                                   T.Rotation.from_euler("YXZ", a).quat,
                                   T.Rotation.from_rotvec(v).quat, T.Rotation.from_mrp(p).quat]

    def compose_apply_slerp(T):
        def f(p, q, v, t):
            r, keys = T.Rotation.from_quat(p), T.Rotation.from_quat(q)
            return ((r[0] * keys).quat, r.apply(v), r.apply(v, inverse=True),
                    T.Slerp.init([0, 1, 2.5], keys)(t).quat)
        return f

    # the last rows are near the identity, where as_rotvec and from_rotvec use their series
    check_vjp(to_other, np.float32([[0.1, -0.3, 0.2, 0.9], [-0.5, 0.4, 0.1, -0.3],
                                    [1e-4, 2e-4, -1e-4, 1]]))
    args = [RNG.uniform(-2, 2, s).astype(np.float32) for s in [(2, 3, 3), (2, 3), (2, 3), (2, 3)]]
    args[2][1] = [3e-4, -2e-4, 1e-4]
    check_vjp(from_other, *args)
    check_vjp(compose_apply_slerp, *[RNG.uniform(-2, 2, s).astype(np.float32)
                                     for s in [(2, 4), (3, 4), (2, 3), (4,)]])


# --------------------------------------------------------------------------- the rest

def test_compose_inverse_apply_broadcast():
    q, p = unit_quats(), unit_quats()[:1]
    v, vs = RNG.normal(size=(3,)).astype(np.float32), RNG.normal(size=(N, 3)).astype(np.float32)
    check(lambda T: lambda q, p, v, vs: (
        [(T.Rotation(a) * T.Rotation(b)).quat for a, b in [(q, p), (p, q), (q, q), (p[0], q[0])]],
        T.Rotation(q).inv(), T.Rotation(q) * T.Rotation(q).inv(),
        [T.Rotation(a).apply(b, inverse=inv)
         for a, b in [(q, v), (q, vs), (q[0], vs), (q[0], [1, 2, 3])] for inv in (False, True)]),
        q, p, v, vs)


def test_sequence_protocol_and_identity():
    q = unit_quats()
    check(lambda T: lambda q: (T.Rotation(q)[1], T.Rotation(q)[1:3],
                               T.Rotation(q)[np.array([0, 2])],
                               T.Rotation.concatenate([T.Rotation(q), T.Rotation(q[:2])]),
                               T.Rotation.identity()), q, eager_ref=True)
    r = FT.Rotation(to_fg(q))
    assert len(r) == len(JT.Rotation(to_jax(q))) == len(q)
    assert r[0].single and not r.single and not r[:1].single
    # a single rotation counts as one (SciPy's rule; JAX's would flatten it into the stack)
    assert_same(FT.Rotation.concatenate([r[0], r[1:]]), JT.Rotation.concatenate(
        [JT.Rotation(to_jax(q[:1])), JT.Rotation(to_jax(q[1:]))]))
    assert_same(FT.Rotation.identity(3).quat, jax.numpy.tile(JT.Rotation.identity().quat, (3, 1)))
    with fungrad.enable_x64(True), jax.enable_x64(True):
        assert_same(FT.Rotation.identity(dtype=np.float64), JT.Rotation.identity(dtype=np.float64))


def test_mean_with_and_without_weights():
    # rotations scattered about one (a well-separated largest eigenvalue), signs mixed
    center = JT.Rotation.from_quat(to_jax(RNG.normal(size=4)))
    spread = JT.Rotation.from_rotvec(to_jax(RNG.normal(scale=0.3, size=(N, 3))))
    q = np.asarray((center * spread).quat) * RNG.choice([-1, 1], (N, 1)).astype(np.float32)
    weights = RNG.uniform(0.1, 2, N).astype(np.float32)
    # the eigenvector's sign is arbitrary (jax's and fungrad's eigh may differ): compare
    # rotations, not quaternions
    check(lambda T: lambda q, w: [T.Rotation(q).mean(weights).as_quat(canonical=True)
                                  for weights in (None, w, [1] + [0] * (N - 1))], q, weights)


def test_random_matches_jax_for_the_same_key():
    for seed, num in [(0, None), (1, 5)]:
        for fg_key, jax_key in [(fungrad.random.key(seed), jax.random.key(seed)),
                                (fungrad.random.PRNGKey(seed), jax.random.PRNGKey(seed))]:
            shape = (4,) if num is None else (num, 4)
            want = JT.Rotation.from_quat(jax.random.normal(jax_key, shape))
            assert_same(FT.Rotation.random(fg_key, num), want)
            assert_same(fungrad.jit(FT.Rotation.random, static_argnums=1)(fg_key, num), want)
    with fungrad.enable_x64(True), jax.enable_x64(True):
        assert_same(FT.Rotation.random(fungrad.random.key(2), 3),
                    JT.Rotation.from_quat(jax.random.normal(jax.random.key(2), (3, 4))))


def test_slerp_at_several_times():
    q, times = unit_quats()[:4], np.float32([0, 1, 2.5, 4])
    at = np.float32([0, 0.25, 1, 1.7, 2.5, 3.9, 4, -0.5, 4.5])  # key times and beyond
    check(lambda T: lambda q, t, at: (T.Slerp.init(t, T.Rotation(q)),
                                      T.Slerp.init(t, T.Rotation(q))(at),
                                      T.Slerp.init(t, T.Rotation(q))(at[3]),
                                      T.Slerp.init([0, 1], T.Rotation(q[:2]))(1)),
          q, times, at)


def test_pytrees_under_jit_vmap_and_grad():
    q, v, ts = unit_quats(), RNG.normal(size=(3,)).astype(np.float32), np.float32([0.3, 1.2, 1.9])

    def loss(r, v):
        return (r.apply(v) ** 2).sum() + r.magnitude().sum()

    def jax_refs(q, v, ts):
        r = JT.Rotation(q)
        return (r.apply(v), r.as_euler("zxy"), jax.grad(loss)(r, v),
                JT.Slerp.init(np.float32([0, 1, 2]), r[:3])(ts))

    apply, euler, grad, slerped = quick(jax_refs)(*to_jax([q, v, ts]))
    r, v, ts = FT.Rotation(to_fg(q)), to_fg(v), to_fg(ts)
    assert_same(fungrad.jit(lambda r, v: r.apply(v))(r, v), apply)
    assert_same(fungrad.vmap(lambda r: r.as_euler("zxy"))(r), euler)
    assert_same(fungrad.grad(loss)(r, v), grad, GRAD_TOL)
    slerp = FT.Slerp.init(to_fg(np.float32([0, 1, 2])), r[:3])
    assert fungrad.tree.structure(slerp).num_leaves == 4
    assert_same(fungrad.jit(lambda s, t: s(t))(slerp, ts), slerped)
    assert_same(fungrad.vmap(slerp)(ts), slerped)


# --------------------------------------------------------------------------- errors

ONES = {shape: np.ones(shape, np.float32) for shape in [(3,), (4,), (2, 2), (2, 4), (3, 3)]}
ERRORS = [  # (make, exception, words of fungrad's message, whether jax raises it too)
    (lambda T: T.Rotation.from_quat(ONES[3,]), ValueError, ["from_quat", "(3,)"], False),
    (lambda T: T.Rotation.from_matrix(ONES[2, 2]), ValueError, ["from_matrix", "(2, 2)"], False),
    (lambda T: T.Rotation.from_rotvec(ONES[4,]), ValueError, ["from_rotvec", "(4,)"], False),
    (lambda T: T.Rotation.from_mrp(ONES[4,]), ValueError, ["from_mrp", "(4,)"], False),
    (lambda T: T.Rotation.from_euler("xyz", ONES[2, 2]), ValueError, ["from_euler", "(2, 2)"],
     True),
    (lambda T: T.Rotation.from_euler("z", ONES[3,]), ValueError, ["from_euler", "(3,)"], True),
    (lambda T: T.Rotation.from_euler("xyzx", 1.0), ValueError, ["from_euler", "'xyzx'"], True),
    (lambda T: T.Rotation.from_euler("xYz", ONES[3,]), ValueError, ["from_euler", "'xYz'"], True),
    (lambda T: T.Rotation.from_euler("xxy", ONES[3,]), ValueError, ["consecutive", "'xxy'"], True),
    (lambda T: T.Rotation.identity().as_euler("xy"), ValueError, ["as_euler", "'xy'"], True),
    (lambda T: T.Rotation.identity().apply(ONES[2, 4]), ValueError, ["apply", "(2, 4)"], True),
    (lambda T: T.Rotation(ONES[2, 4]).apply(ONES[3, 3]), ValueError, ["apply", "(2,)", "(3, 3)"],
     True),
    (lambda T: T.Rotation(ONES[2, 4]).mean(ONES[2, 2]), ValueError, ["mean", "(2, 2)"], True),
    (lambda T: T.Rotation(ONES[2, 4]).mean(ONES[3,]), ValueError, ["mean", "3 weights"], True),
    (lambda T: T.Rotation(ONES[4,]).mean(), TypeError, ["Single rotation has no len"], True),
    (lambda T: len(T.Rotation(ONES[4,])), TypeError, ["Single rotation has no len"], True),
    (lambda T: T.Rotation(ONES[4,])[0], TypeError, ["not subscriptable"], True),
    (lambda T: T.Slerp.init([0, 1], ONES[2, 4]), TypeError, ["Slerp.init", "ndarray"], True),
    (lambda T: T.Slerp.init([0], T.Rotation(ONES[2, 4])[:1]), ValueError,
     ["Slerp.init", "(1, 4)"], True),
    (lambda T: T.Slerp.init(ONES[2, 2], T.Rotation(ONES[2, 4])), ValueError,
     ["Slerp.init", "(2, 2)"], True),
    (lambda T: T.Slerp.init(ONES[3,], T.Rotation(ONES[2, 4])), ValueError,
     ["Slerp.init", "3 times and 2 rotations"], True),
    (lambda T: T.Slerp.init([0, 1], T.Rotation(ONES[2, 4]))(ONES[2, 2]), ValueError,
     ["Slerp", "(2, 2)"], True),
]


@pytest.mark.parametrize("make,exc,words,jax_raises", ERRORS, ids=[e[2][0] for e in ERRORS])
def test_errors_name_the_method_and_the_shape(make, exc, words, jax_raises):
    with pytest.raises(exc) as info:
        make(FT)
    assert all(w in str(info.value) for w in words), str(info.value)
    if jax_raises:
        with pytest.raises(exc):
            make(JT)


# --------------------------------------------------------------------------- vq

def test_vq_codes_and_distances():
    def check_vq(fg_fn, jax_fn, *args):  # jax's by quick: one program, not one per primitive
        compare(fg_fn, jax_fn, *args, ref_out=quick(jax_fn)(*to_jax(args)))

    obs = RNG.normal(size=(7, 3)).astype(np.float32)
    book = RNG.normal(size=(4, 3)).astype(np.float32)
    book[2] = book[1]  # a tie goes to the first code
    obs[0] = book[1] + 0.01
    check_vq(fg_vq.vq, jax_vq.vq, obs, book)
    check_vq(fg_vq.vq, jax_vq.vq, obs[:, 0], book[:, 0])  # 1-D: scalar observations
    check_vq(fg_vq.vq, jax_vq.vq, np.int32([[1, 2], [5, 3]]), np.int32([[0, 0], [4, 4]]))
    check_vq(fungrad.vmap(fg_vq.vq, in_axes=(0, None)), jax.vmap(jax_vq.vq, in_axes=(0, None)),
             obs.reshape(7, 1, 3), book)
    with fungrad.enable_x64(True), jax.enable_x64(True):
        check_vq(fg_vq.vq, jax_vq.vq, obs.astype(np.float64), book)


def test_vq_distance_derivatives():
    compare_transforms(lambda o, c: fg_vq.vq(o, c)[1], lambda o, c: jax_vq.vq(o, c)[1],
                       [RNG.normal(size=(5, 2)).astype(np.float32),
                        RNG.normal(size=(3, 2)).astype(np.float32)], RNG, fused_ref=True)


@pytest.mark.parametrize("obs,book,exc,words", [
    (ONES[2, 2], ONES[3,], ValueError, ["rank", "(2, 2)", "(3,)"]),
    (np.ones((2, 2, 1)), np.ones((2, 2, 1)), ValueError, ["(2, 2, 1)"]),
    (ONES[2, 4], ONES[3, 3], TypeError, ["features", "(2, 4)", "(3, 3)"]),
    ([[1.0, 2.0]], ONES[2, 2], TypeError, ["vq", "list"]),
])
def test_vq_errors(obs, book, exc, words):
    with pytest.raises(exc) as info:
        fg_vq.vq(obs, book)
    assert all(w in str(info.value) for w in words), str(info.value)
    with pytest.raises(exc):
        jax_vq.vq(obs, book)
