"""JAX's example libraries (``jax.example_libraries``), which JAX's classic tutorials import:
``stax``, layers as ``(init_fun, apply_fun)`` pairs, and ``optimizers``, optimizers as
``(init_fun, update_fun, get_params)`` triples. ``from fungrad.example_libraries import
stax, optimizers`` runs such code on fungrad.

Examples:
    >>> import fungrad
    >>> from fungrad.example_libraries import optimizers, stax
    >>> init_fun, apply_fun = stax.serial(stax.Dense(4), stax.Tanh, stax.Dense(1))
    >>> _, params = init_fun(fungrad.random.PRNGKey(0), (-1, 2))
    >>> opt_init, opt_update, get_params = optimizers.sgd(0.1)
    >>> loss = lambda p, x: fungrad.numpy.mean(apply_fun(p, x) ** 2)
    >>> x = fungrad.numpy.ones((3, 2))
    >>> opt_state = opt_init(params)
    >>> before = loss(get_params(opt_state), x)
    >>> for i in range(3):
    ...     opt_state = opt_update(i, fungrad.grad(loss)(get_params(opt_state), x), opt_state)
    >>> bool(loss(get_params(opt_state), x) < before)
    True
"""
from fungrad._core.namespace import public_dir
from fungrad.example_libraries import optimizers, stax

__all__ = ["optimizers", "stax"]
__dir__ = public_dir(__all__)
