"""First-order optimisers with torch.optim's conventions, learning-rate schedules and gradient clipping.

bplib has no autograd, so an optimiser here is handed its gradients: ``opt.step(grads)``, one
gradient per parameter, in the order of the parameters (for a :class:`bplib.MLP`, the order of
``net.parameters``, in which ``loss_and_grads`` returns the gradients)::

    opt = bplib.optim.Adam(net.parameters, lr=1e-3)
    loss, grads = net.loss_and_grads(x, y)
    opt.step(grads)

Each rule comes twice, as in :mod:`torch.optim`:

* a functional core (:func:`sgd`, :func:`adagrad`, :func:`rmsprop`, :func:`adam`, :func:`adamw`)
  with keyword-only hyper-parameters, which updates the parameters and the state tensors handed
  to it in place;
* a class (:class:`SGD`, :class:`Adagrad`, :class:`RMSprop`, :class:`Adam`, :class:`AdamW`) that
  stores the hyper-parameters once, as torch does (``opt.defaults``, and ``opt.param_groups``, a
  list of dicts with ``"params"`` and every hyper-parameter: ``group["lr"] = ...`` between steps
  changes the learning rate), keeps the state of every parameter in ``opt.state[p]`` under torch's
  names, with the step count ``"step"``, checks the gradients at every step and calls the same
  core (see :class:`Optimizer`).  Each class declares its hyper-parameters once, in a table of
  :class:`Option`, from which its signature, defaults, checks and documentation are made.

The schedules of :mod:`bplib.optim.lr_scheduler` (step decay, linear warm-up, cosine annealing,
their sequence, and reduction on a plateau) write ``group["lr"]`` as torch's do; the
:func:`clip_grad_norm` of the gradients goes between the backward pass and ``step``.

Notation, for one parameter tensor :math:`\\theta`: :math:`g_t` is the gradient handed to
step :math:`t = 1, 2, \\dots`, :math:`\\gamma` the learning rate ``lr``, :math:`\\lambda` the
weight decay, products and powers of tensors are element-wise.  Every rule follows the
update and the order of floating-point operations of torch 2.x's single-tensor
implementation (the one torch picks on the CPU; on a GPU it picks ``foreach`` kernels, which
may round differently), so that bplib and ``torch.optim`` agree to rounding; the tests
check 200 steps of every option against ``torch.optim`` to 1e-12 relative in float64, and every
schedule against ``torch.optim.lr_scheduler``.  Conventions shared by every rule:

* ``maximize=True`` ascends: the gradient is negated first, :math:`g_t \\leftarrow -g_t`.
* ``weight_decay`` is an L2 penalty added to the gradient after the negation,
  :math:`g_t \\leftarrow g_t + \\lambda\\theta_{t-1}` -- except in AdamW, where it is decoupled.
* The gradients handed in are never modified.
* Updates run under :func:`torch.no_grad`, so parameters that ``require_grad`` may be updated.

The classes take torch's defaults; the hyper-parameters after ``lr`` are keyword-only (torch
takes them positionally, in an order that differs between classes).  Parameter groups are lists
of dicts as in torch; a group may set any hyper-parameter of its class and nothing else.  The
hyper-parameters of every group are checked by the constructor and again at every step, more
strictly than torch, which checks only the constructor's arguments: every number finite and
>= 0, SGD's ``dampening`` and RMSprop's ``alpha`` at most 1, the switches ``True`` or ``False``.

Not done here: parameters without a gradient (every parameter takes a step), parameters given
as an iterator or as ``(name, tensor)`` pairs (a sequence of tensors or of groups is needed),
parameter groups added after construction, closures that re-evaluate the loss, ``state_dict``,
sparse or complex parameters, tensor-valued hyper-parameters, torch's switches of implementation
``foreach``, ``fused``, ``capturable`` and ``differentiable`` (one loop over the parameters,
written to be read), ``Adam(decoupled_weight_decay=True)`` (that is :class:`AdamW`), and torch's
other optimisers.
"""

from . import lr_scheduler
from ._adagrad import Adagrad, adagrad
from ._adam import Adam, AdamW, adam, adamw
from ._clip import clip_grad_norm
from ._optimizer import Option, Optimizer
from ._rmsprop import RMSprop, rmsprop
from ._sgd import SGD, sgd

__all__ = [
    "Optimizer",
    "Option",
    "SGD",
    "sgd",
    "Adagrad",
    "adagrad",
    "RMSprop",
    "rmsprop",
    "Adam",
    "adam",
    "AdamW",
    "adamw",
    "clip_grad_norm",
    "lr_scheduler",
]
