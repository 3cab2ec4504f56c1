"""Bad input to the teaching engines gets a TypeError/ValueError naming the operation, the argument, what was
expected and what arrived."""

import pytest
import torch

from bplib.autodiff import Dual, OperationCounts, Value, draw_graph, forward, reverse
from bplib.autodiff.reverse import topological_order

F64 = torch.float64


def t(*shape, dtype=F64, device="cpu"):
    return torch.ones(shape, dtype=dtype, device=device)


def v(*shape, **kwargs):
    return Value(t(*shape, **kwargs))


def d(*shape, **kwargs):
    return Dual(t(*shape, **kwargs), t(*shape, **kwargs))


ENGINES = [("Value", v), ("Dual", d)]

CASES = [
    # building a node
    (lambda: Value("x"), TypeError, r"Value: argument 'data' must be a torch.Tensor, got str"),
    (lambda: Value(torch.ones(2, dtype=torch.int64)), TypeError, r"Value: argument 'data' must have a floating dtype .*int64"),
    (lambda: Value(t(2), requires_grad=1), TypeError, r"Value: argument 'requires_grad' must be True or False, got int"),
    (lambda: Dual([1.0]), TypeError, r"Dual: argument 'primal' must be a torch.Tensor, got list"),
    (lambda: Dual(t(2), 1.0), TypeError, r"Dual: argument 'tangent' must be a torch.Tensor, got float"),
    (lambda: Dual(t(2), t(3)), ValueError, r"Dual: argument 'tangent' must have shape \(2,\) \(the shape of the primal\), got \(3,\)"),
    (lambda: Dual(t(2), t(2, dtype=torch.float32)), TypeError, r"Dual: argument 'tangent' has dtype torch.float32 but 'primal' has dtype torch.float64"),
    # the sweep
    (lambda: v(3).exp().backward(), ValueError,
     r"Value.backward: argument 'seed' is required for an output of shape \(3,\): pass the gradient of the final scalar"),
    (lambda: v(3).exp().backward(t(2)), ValueError, r"Value.backward: argument 'seed' must have the output's shape \(3,\), got \(2,\)"),
    (lambda: v(3).exp().backward([1.0, 1.0, 1.0]), TypeError, r"Value.backward: argument 'seed' must be a torch.Tensor, got list"),
    (lambda: v(3).exp().backward(t(3, dtype=torch.float32)), TypeError,
     r"Value.backward: argument 'seed' has dtype torch.float32 but 'self' has dtype torch.float64"),
    (lambda: Value(t(), requires_grad=False).exp().backward(), ValueError,
     r"Value.backward: this Value depends on no Value with requires_grad=True, so it has no gradient to compute"),
    # apply
    (lambda: reverse.apply("sin", v(2)), ValueError, r"apply: argument 'op' must be one of 'add', 'sub', .*'log_softmax', got 'sin'"),
    (lambda: forward.apply("sin", d(2)), ValueError, r"apply: argument 'op' must be one of 'add', 'sub', .*'log_softmax', got 'sin'"),
    (lambda: reverse.apply("add", t(2), v(2)), TypeError, r"apply: the first operand of 'add' must be a Value, got Tensor"),
    (lambda: forward.apply("exp"), TypeError, r"apply: the first operand of 'exp' must be a Dual, got no operand"),
    (lambda: reverse.apply("add", v(2)), TypeError, r"apply: primitive 'add' takes 2 operand\(s\), got 1"),
    (lambda: forward.apply("exp", d(2), d(2)), TypeError, r"apply: primitive 'exp' takes 1 operand\(s\), got 2"),
    (lambda: reverse.apply("sum", v(2), axis=0), TypeError, r"apply: primitive 'sum' takes the keyword parameters \['dim'\], got \['axis'\]"),
    (lambda: forward.apply("pow", d(2)), TypeError, r"apply: primitive 'pow' requires the keyword parameter 'exponent'"),
    # functions of a whole graph
    (lambda: reverse.vjp(lambda x: x.data, t(2)), TypeError, r"vjp: argument 'f' must return a Value computed from its arguments, got Tensor"),
    (lambda: reverse.vjp(lambda x: x, [1.0]), TypeError, r"vjp: argument 'primals' must be a torch.Tensor, got list"),
    (lambda: forward.jvp(lambda x: x, t(2), (t(2),)), TypeError,
     r"jvp: arguments 'primals' and 'tangents' must be tuples of tensors of the same length, got Tensor and tuple"),
    (lambda: forward.jvp(lambda x: x, (t(2),), (t(2), t(2))), TypeError, r"jvp: .* got tuple and tuple of lengths 1 and 2"),
    (lambda: forward.jvp(lambda x: x.primal, (t(2),), (t(2),)), TypeError, r"jvp: argument 'f' must return a Dual .*, got Tensor"),
    (lambda: forward.jacobian(lambda x: x, t(0)), ValueError, r"jacobian: argument 'x' must hold at least one entry, got shape \(0,\)"),
    (lambda: reverse.jacobian(lambda x: x.sum(0), t(2, 0)), ValueError,
     r"jacobian: the output of 'f' must hold at least one entry, got shape \(0,\)"),
    (lambda: topological_order(t(2)), TypeError, r"topological_order: argument 'root' must be a Value, got Tensor"),
    (lambda: draw_graph(d(2)), TypeError, r"draw_graph: argument 'root' must be a Value, got Dual"),
    (lambda: draw_graph(v(2), digits=0), ValueError, r"draw_graph: argument 'digits' must be a positive int, got 0"),
    (lambda: OperationCounts().total("backward"), ValueError,
     r"OperationCounts.total: argument 'kind' must be one of 'primal', 'tangent', 'adjoint', got 'backward'"),
]


# the same bad operands, for both engines: (call, error, message with {E} for the engine's name)
OPERAND_CASES = [
    (lambda x: x(2, 3) + "a", TypeError, r"{E}.add: argument 'other' must be a {E}, a torch.Tensor or a real number, got str"),
    (lambda x: x(2, 3) * True, TypeError, r"{E}.mul: argument 'other' must be a {E}, a torch.Tensor or a real number, got bool"),
    (lambda x: x(2, 3) - torch.ones(3, dtype=torch.int64), TypeError, r"{E}.sub: argument 'other' must have a floating dtype"),
    (lambda x: x(2, 3) + x(4), ValueError,
     r"{E}.add: arguments 'self' and 'other' must have shapes that broadcast \(trailing dimensions equal or 1\), got \(2, 3\) and \(4,\)"),
    (lambda x: x(2, 3) / x(2, 3, dtype=torch.float32), TypeError,
     r"{E}.div: argument 'other' has dtype torch.float32 but 'self' has dtype torch.float64"),
    (lambda x: x(2, 3) * t(2, 3, device="meta"), ValueError, r"{E}.mul: argument 'other' is on device meta but 'self' is on cpu"),
    (lambda x: x(2, 3) @ x(3), ValueError, r"{E}.matmul: arguments 'self' and 'other' must be 2-D matrices, got shapes \(2, 3\) and \(3,\)"),
    (lambda x: x(2, 3) @ x(2, 3), ValueError,
     r"{E}.matmul: argument 'other' must have as many rows as 'self' has columns \(3\), got shape \(2, 3\) for 'self' of shape \(2, 3\)"),
    (lambda x: x(3).mT, ValueError, r"{E}.transpose: argument 'self' must have at least 2 dimensions to transpose, got shape \(3,\)"),
    (lambda x: x(2, 3).sum(2), ValueError, r"{E}.sum: argument 'dim' must be an integer in \[-2, 1\] for a 2-D operand, got 2"),
    (lambda x: x(2, 3).mean(dim=-3), ValueError, r"{E}.mean: argument 'dim' must be an integer in \[-2, 1\] for a 2-D operand, got -3"),
    (lambda x: x().sum(0), ValueError, r"{E}.sum: argument 'self' must have at least 1 dimension for dim=0 to name, got shape \(\)"),
    (lambda x: x().log_softmax(), ValueError,
     r"{E}.log_softmax: argument 'self' must have at least 1 dimension for dim=-1 to name, got shape \(\)"),
    (lambda x: x(2, 3).sum(dim=1.0), TypeError, r"{E}.sum: argument 'dim' must be an int or None, got float 1.0"),
    (lambda x: x(2, 3).log_softmax(dim=None), TypeError, r"{E}.log_softmax: argument 'dim' must be an int, got NoneType None"),
    (lambda x: x(2, 3).log_softmax(dim=True), TypeError, r"{E}.log_softmax: argument 'dim' must be an int, got bool True"),
    (lambda x: x(2) ** x(2), TypeError, r"{E}.pow: argument 'exponent' must be a real number \(a constant exponent\), got {E}"),
    (lambda x: x(2) ** "2", TypeError, r"{E}.pow: argument 'exponent' must be a real number \(a constant exponent\), got str"),
]


@pytest.mark.parametrize("call, error, message", CASES)
def test_bad_input_raises_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("call, error, message", OPERAND_CASES)
@pytest.mark.parametrize("engine, make", ENGINES, ids=[name for name, _ in ENGINES])
def test_bad_operands_raise_a_clear_error_in_both_engines(call, error, message, engine, make):
    with pytest.raises(error, match=message.replace("{E}", engine)):
        call(make)
