"""Bad input to bplib.torch_bridge gets a TypeError/ValueError naming the function, the argument, what was
expected and what arrived; the bplib forwards' own checks reach the caller through autograd unchanged."""

import pytest
import torch

from bplib import torch_bridge as tb

F64 = torch.float64


def t(*shape, requires_grad=False):
    return torch.ones(shape, dtype=F64, requires_grad=requires_grad)


CASES = [
    (lambda: tb.activation(t(2, 3), "gelu"), ValueError, r"activation: argument 'name' must be one of 'sigmoid', 'tanh', 'relu', got 'gelu'"),
    (lambda: tb.softmax_cross_entropy(t(2, 3, requires_grad=True), t(2, 3, requires_grad=True) / 3), ValueError,
     r"softmax_cross_entropy: argument 'y' must not require a gradient: targets are data and bplib's loss backward "
     r"returns no gradient for them \(pass y.detach\(\)\)"),
    (lambda: tb.mse(t(2, 3), t(2, 3, requires_grad=True)), ValueError, r"mse: argument 'y' must not require a gradient"),
    # the bplib forwards check their arguments inside Function.forward
    (lambda: tb.linear(t(2, 3, requires_grad=True), t(4, 2), t(4)), ValueError,
     r"linear_forward: argument 'x' must have shape \(any, 2\) \(batch size, n_in = W.shape\[1\]\), got \(2, 3\)"),
    (lambda: tb.softmax(t(2, 3), dim=2), ValueError, r"softmax_forward: argument 'dim' must be an integer in \[-2, 1\]"),
    (lambda: tb.dropout(t(2, 3), 0.5), TypeError, r"dropout_forward: argument 'generator' must be a torch.Generator when train=True"),
    (lambda: tb.batch_norm(t(1, 3), t(3), t(3)), ValueError, r"batch_norm_forward: argument 'x' must hold at least 2 rows when train=True"),
    (lambda: tb.layer_norm(t(2, 3), t(2), t(3)), ValueError, r"layer_norm_forward: argument 'gamma' must have shape \(3,\)"),
    (lambda: tb.attention(t(2, 3), t(4, 2), t(4, 2)), ValueError, r"attention_forward: argument 'k' must have shape \(any, 3\)"),
    # modules
    (lambda: tb.BplibLinear(3, 2, init="kaiming"), ValueError, r"BplibLinear: argument 'init' must be one of 'xavier', 'he', got 'kaiming'"),
    (lambda: tb.BplibLinear(0, 2), ValueError, r"BplibLinear: argument 'n_in' must be a positive integer, got 0"),
    (lambda: tb.BplibLinear(3, 2, generator=0), TypeError, r"BplibLinear: argument 'generator' must be a torch.Generator or None, got int"),
    (lambda: tb.BplibLinear(3, 2, dtype=torch.int64), TypeError, r"BplibLinear: argument 'dtype' must be a floating torch.dtype, got torch.int64"),
    (lambda: tb.BplibMLP([3, 2], dtype=torch.int64), TypeError, r"BplibMLP: argument 'dtype' must be a floating torch.dtype, got torch.int64"),
    (lambda: tb.batch_norm(t(2, 3), t(3), t(3), running_mean=t(3, requires_grad=True), running_var=t(3)), ValueError,
     r"batch_norm_forward: argument 'running_mean' must not require a gradient"),
    (lambda: tb.BplibMLP([3]), ValueError, r"BplibMLP: argument 'sizes' must be a sequence of at least 2 positive ints, got \[3\]"),
    (lambda: tb.BplibMLP([3, 0, 2]), ValueError, r"BplibMLP: argument 'sizes' must be a sequence of at least 2 positive ints, got \[3, 0, 2\]"),
    (lambda: tb.BplibMLP("32"), ValueError, r"BplibMLP: argument 'sizes' must be a sequence .*, got '32'"),
    (lambda: tb.BplibMLP([3, 2], "gelu"), ValueError, r"BplibMLP: argument 'activation' must be one of 'sigmoid', 'tanh', 'relu', got 'gelu'"),
    (lambda: tb.BplibMLP([3, 2], dtype=F64)(t(3)), ValueError, r"BplibMLP.forward: argument 'x' must be 2-D, got a tensor of shape \(3,\)"),
    (lambda: tb.BplibMLP([3, 2], dtype=F64)([[1.0, 2.0, 3.0]]), TypeError, r"BplibMLP.forward: argument 'x' must be a torch.Tensor, got list"),
]


def double_backward(f, x):
    y = f(x).sum()
    return torch.autograd.grad(y, x, create_graph=True)


DOUBLE = [
    (lambda z: tb.linear(z, t(4, 3), t(4)), "LinearFunctionBackward"),
    (lambda z: tb.activation(z, "sigmoid"), "ActivationFunctionBackward"),
    (lambda z: tb.softmax(z, 1), "SoftmaxFunctionBackward"),
    (lambda z: tb.mse(z, t(2, 3)), "MSEFunctionBackward"),
    (lambda z: tb.layer_norm(z, t(3), t(3)), "LayerNormFunctionBackward"),
]


@pytest.mark.parametrize("call, error, message", CASES)
def test_bad_input_raises_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("f, node", DOUBLE, ids=[node for _, node in DOUBLE])
def test_create_graph_through_a_bplib_backward_is_refused(f, node):
    x = torch.randn(2, 3, dtype=F64, generator=torch.Generator().manual_seed(0), requires_grad=True)
    with pytest.raises(NotImplementedError, match=rf"{node}: bplib's backward passes are first-order only; a derivative "
                                                  r"of the gradient \(create_graph=True, double backward\) is not supported"):
        double_backward(f, x)
