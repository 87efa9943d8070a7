"""``fungrad.optim.contrib``: optax.contrib's newer and experimental optimisers.

Names, signatures, defaults and numerics follow ``optax.contrib``, step for step. The
optimisers live by family:

* ``_orthogonal``: Muon (orthogonalised momentum) and GaLore (low-rank projected gradients);
* ``_schedule_free``: schedule-free learning and its AdamW and SGD forms;
* ``_adaptive``: Adam's relatives ADOPT, AdEMAMix, ACProp and MADGRAD;
* ``_learning_rate_free``: Prodigy, D-Adaptation, COCOB, DoG, DoWG and Mechanic;
* ``_loss_aware``: MoMo, MoMo-Adam and ``reduce_on_plateau``, which read the loss;
* ``_second_order``: Sophia and Hutchinson's estimator of the Hessian's diagonal;
* ``_privacy``: DP-SGD and its private aggregation of per-example gradients;
* ``_wrappers``: SAM and ``split_real_and_imaginary``, around other optimisers.

The ones that read more than the gradients take it as keyword arguments of ``update``
(``value=`` for MoMo and ``reduce_on_plateau``, ``obj_fn=`` for Sophia, ``grad_fn=`` for
SAM's opaque mode), which ``chain`` passes on.
"""
from fungrad._core.namespace import public_dir
from fungrad.optim.contrib import (_adaptive, _learning_rate_free, _loss_aware, _orthogonal,
                                   _privacy, _schedule_free, _second_order, _wrappers)
from fungrad.optim.contrib._adaptive import *  # noqa: F401,F403
from fungrad.optim.contrib._learning_rate_free import *  # noqa: F401,F403
from fungrad.optim.contrib._loss_aware import *  # noqa: F401,F403
from fungrad.optim.contrib._orthogonal import *  # noqa: F401,F403
from fungrad.optim.contrib._privacy import *  # noqa: F401,F403
from fungrad.optim.contrib._schedule_free import *  # noqa: F401,F403
from fungrad.optim.contrib._second_order import *  # noqa: F401,F403
from fungrad.optim.contrib._wrappers import *  # noqa: F401,F403

__all__ = [*_orthogonal.__all__, *_schedule_free.__all__, *_adaptive.__all__,
           *_learning_rate_free.__all__, *_loss_aware.__all__, *_second_order.__all__,
           *_privacy.__all__, *_wrappers.__all__]
__dir__ = public_dir(__all__)
