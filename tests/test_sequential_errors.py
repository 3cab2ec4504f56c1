"""Bad input to bplib.layers and bplib.Sequential gets a TypeError/ValueError naming the function, the argument,
what was expected and what arrived."""

import pytest
import torch

import bplib
from bplib.layers import Activation, BatchNorm, Dropout, LayerNorm, Linear

F64 = torch.float64


def t(*shape, dtype=F64):
    return torch.zeros(*shape, dtype=dtype)


def lin(n_in, n_out, dtype=F64):
    return Linear(n_in, n_out, dtype=dtype, generator=torch.Generator().manual_seed(0))


def net(*, dropout=0.0, generator=None):
    """Linear(3, 4), BatchNorm(4), ReLU, Dropout, Linear(4, 2): parameters 0.W, 0.b, 1.gamma, 1.beta, 4.W, 4.b."""
    layers = [lin(3, 4), BatchNorm(4, dtype=F64), Activation("relu"), Dropout(dropout), lin(4, 2)]
    return bplib.Sequential(layers, generator=generator)


def labels(m):
    return torch.zeros(m, dtype=torch.int64)


def other_params():
    """A Params of the right shapes but another network's names."""
    return bplib.Sequential([lin(3, 4), Activation("relu"), lin(4, 2)]).parameters


LAYERS = [
    (lambda: Linear(0, 3), ValueError, r"Linear: argument 'n_in' must be a positive integer, got 0"),
    (lambda: Linear(3, 2.0), ValueError, r"Linear: argument 'n_out' must be a positive integer, got 2.0"),
    (lambda: Linear(3, True), ValueError, r"Linear: argument 'n_out' must be a positive integer, got True"),
    (lambda: Linear(3, 2, init="kaiming"), ValueError, r"Linear: argument 'init' must be one of 'he', 'xavier', got 'kaiming'"),
    (lambda: Linear(3, 2, dtype=torch.int64), TypeError, r"Linear: argument 'dtype' must be a floating torch.dtype, got torch.int64"),
    (lambda: Linear(3, 2, generator=0), TypeError, r"Linear: argument 'generator' must be a torch.Generator or None, got int"),
    (lambda: Activation("gelu"), ValueError, r"Activation: argument 'name' must be one of 'sigmoid', 'tanh', 'relu', got 'gelu'"),
    (lambda: Dropout(1.0), ValueError, r"Dropout: argument 'p' must be in \[0, 1\), got 1.0 \(the probability of dropping an entry; p = 1 would drop them all"),
    (lambda: Dropout("0.5"), TypeError, r"Dropout: argument 'p' must be a real number, got str '0.5'"),
    (lambda: BatchNorm(0), ValueError, r"BatchNorm: argument 'n' must be a positive integer, got 0"),
    (lambda: BatchNorm(4, momentum=2), ValueError, r"BatchNorm: argument 'momentum' must be in \[0, 1\], got 2"),
    (lambda: BatchNorm(4, eps=0), ValueError, r"BatchNorm: argument 'eps' must be > 0, got 0: a feature constant over a batch has variance 0"),
    (lambda: BatchNorm(4, dtype="float64"), TypeError, r"BatchNorm: argument 'dtype' must be a floating torch.dtype, got 'float64'"),
    (lambda: LayerNorm(4, eps=-1.0), ValueError, r"LayerNorm: argument 'eps' must be >= 0, got -1.0"),
    (lambda: LayerNorm(4.5), ValueError, r"LayerNorm: argument 'n' must be a positive integer, got 4.5"),
    (lambda: setattr(Dropout(0.1), "mode", "training"), ValueError, r"Dropout.mode: argument 'mode' must be one of 'train', 'eval', got 'training'"),
    (lambda: lin(3, 2).forward(t(5, 3), params=(t(2, 3),)), ValueError, r"Linear.forward: argument 'params' must hold 2 tensors \(W, b\), got 1"),
    (lambda: lin(3, 2).forward(t(5, 3), params=t(2, 3)), TypeError, r"Linear.forward: argument 'params' must be a sequence of 2 tensors \(W, b\), got Tensor"),
    (lambda: lin(3, 2).forward(t(5, 3), params=(t(3, 2), t(2))), ValueError, r"Linear.forward: argument 'params \(W\)' must have shape \(2, 3\) \(the shape of W\), got \(3, 2\)"),
    (lambda: lin(3, 2).forward(t(5, 3), params=(t(2, 3), torch.zeros(2, dtype=torch.int64))), TypeError, r"Linear.forward: argument 'params \(b\)' must have a floating dtype"),
    (lambda: Activation("tanh").forward(t(5, 3), params=(t(3),)), ValueError, r"Activation.forward: argument 'params' must hold 0 tensors \(none\), got 1"),
    (lambda: lin(3, 2).forward(t(5, 4)), ValueError, r"linear_forward: argument 'x' must have shape \(any, 3\)"),
    (lambda: LayerNorm(4, dtype=F64).forward(t(2, 3, 4)), ValueError, r"LayerNorm.forward: argument 'x' must be 2-D, got a tensor of shape \(2, 3, 4\)"),
    (lambda: Dropout(0.5).forward(t(2, 3)), TypeError, r"dropout_forward: argument 'generator' must be a torch.Generator when train=True and p > 0"),
    (lambda: BatchNorm(3, dtype=F64).forward(t(1, 3)), ValueError, r"batch_norm_forward: argument 'x' must hold at least 2 rows when train=True"),
]


SEQUENTIAL = [
    (lambda: bplib.Sequential(lin(3, 2)), TypeError, r"Sequential: argument 'layers' must be a sequence of layers, got Linear"),
    (lambda: bplib.Sequential("relu"), TypeError, r"Sequential: argument 'layers' must be a sequence of layers, got str"),
    (lambda: bplib.Sequential([]), ValueError, r"Sequential: argument 'layers' must hold at least one layer, got an empty list"),
    (lambda: bplib.Sequential([lin(3, 4), torch.nn.ReLU()]), TypeError,
     r"Sequential: argument 'layers\[1\]' must be a layer of bplib.layers \(Linear, Activation, Dropout, BatchNorm or LayerNorm\), "
     r"got torch.nn.modules.activation.ReLU"),
    (lambda: bplib.Sequential([lin(3, 4), "relu"]), TypeError, r"argument 'layers\[1\]' must be a layer of bplib.layers .*got builtins.str"),
    (lambda: bplib.Sequential([lin(3, 4), lin(5, 2)]), ValueError,
     r"Sequential: argument 'layers\[1\]' \(Linear\(5, 2\)\) takes 5 features, but 'layers\[0\]' \(Linear\(3, 4\)\) gives 4"),
    (lambda: bplib.Sequential([lin(3, 4), Activation("relu"), Dropout(0.1), BatchNorm(5, dtype=F64)]), ValueError,
     r"Sequential: argument 'layers\[3\]' \(BatchNorm\(5\)\) takes 5 features, but 'layers\[0\]' \(Linear\(3, 4\)\) gives 4"),
    (lambda: bplib.Sequential([lin(3, 4), LayerNorm(4, dtype=F64), lin(3, 2)]), ValueError,
     r"argument 'layers\[2\]' \(Linear\(3, 2\)\) takes 3 features, but 'layers\[1\]' \(LayerNorm\(4\)\) gives 4"),
    (lambda: (lambda a: bplib.Sequential([a, Activation("relu"), a]))(lin(3, 3)), ValueError,
     r"Sequential: argument 'layers\[2\]' is the same object as 'layers\[0\]' \(Linear\(3, 3\)\); a layer appears once"),
    (lambda: bplib.Sequential([lin(3, 4), lin(4, 2, dtype=torch.float32)]), TypeError,
     r"Sequential: argument 'layers\[1\].W' has dtype torch.float32 but 'layers\[0\].W' has dtype torch.float64"),
    (lambda: bplib.Sequential([lin(3, 4), BatchNorm(4)]), TypeError,
     r"Sequential: argument 'layers\[1\].gamma' has dtype torch.float32 but 'layers\[0\].W' has dtype torch.float64"),
    (lambda: bplib.Sequential([lin(3, 2)], loss="hinge"), ValueError, r"Sequential: argument 'loss' must be one of 'softmax_ce', 'mse', got 'hinge'"),
    (lambda: bplib.Sequential([lin(3, 2)], generator=1), TypeError, r"Sequential: argument 'generator' must be a torch.Generator or None, got int"),
    (lambda: setattr(net(), "mode", "test"), ValueError, r"Sequential.mode: argument 'mode' must be one of 'train', 'eval', got 'test'"),
    (lambda: setattr(net(), "mode", True), ValueError, r"Sequential.mode: argument 'mode' must be one of 'train', 'eval', got True"),
    (lambda: net().loss_and_grads(t(5, 4), labels(5)), ValueError,
     r"Sequential.loss_and_grads: argument 'x' must have shape \(any, 3\) \(batch size, n_0 = 3 inputs\), got \(5, 4\)"),
    (lambda: net().loss_and_grads(t(3), labels(3)), ValueError, r"Sequential.loss_and_grads: argument 'x' must be 2-D"),
    (lambda: net().loss_and_grads([[0.0] * 3], labels(1)), TypeError, r"Sequential.loss_and_grads: argument 'x' must be a torch.Tensor, got list"),
    (lambda: net().loss_and_grads(t(5, 3, dtype=torch.float32), labels(5)), TypeError,
     r"Sequential.loss_and_grads: argument 'x' has dtype torch.float32 but 'parameters \(0.W\)' has dtype torch.float64"),
    (lambda: net(dropout=0.5).loss_and_grads(t(5, 3), labels(5)), TypeError,
     r"Sequential.loss_and_grads: argument 'generator' must be a torch.Generator when a dropout layer is in train mode with p > 0 "
     r"and the network holds none \(pass generator= here or to Sequential, or call eval\(\)\), got None"),
    (lambda: net(dropout=0.5).loss(t(5, 3), labels(5), generator="seed"), TypeError,
     r"Sequential.forward: argument 'generator' must be a torch.Generator or None, got str"),
    (lambda: net().loss(t(1, 3), labels(1)), ValueError, r"batch_norm_forward: argument 'x' must hold at least 2 rows when train=True"),
    (lambda: net().loss(t(5, 3), labels(5), params=tuple(net().parameters)), TypeError,
     r"Sequential.forward: argument 'params' must be a bplib.Params \(e.g. net.parameters, or unflatten\(theta\) from "
     r"bplib.flatten\(net.parameters\)\), got tuple"),
    (lambda: net().loss(t(5, 3), labels(5), params=other_params()), ValueError,
     r"Sequential.forward: argument 'params' must be named \['0.W', '0.b', '1.gamma', '1.beta', '4.W', '4.b'\], "
     r"got \['0.W', '0.b', '2.W', '2.b'\]"),
    (lambda: net().forward_with_caches(t(5, 3), params=net().parameters.like([t(4, 3), t(4), t(4), t(4), t(2, 5), t(2)])),
     ValueError, r"Sequential.forward_with_caches: argument 'params \(4.W\)' must have shape \(2, 4\) \(the shape of 4.W\), got \(2, 5\)"),
    (lambda: net().forward(t(5, 3), params=net().parameters.like([t(4, 3), t(4), t(4), t(4), t(2, 4), t(2, dtype=torch.float32)])),
     TypeError, r"Sequential.forward: argument 'params \(4.b\)' has dtype torch.float32 but 'params \(0.W\)' has dtype torch.float64"),
    (lambda: net().backward(t(5, 2), net().forward_with_caches(t(5, 3))[1][:-1]), ValueError,
     r"Sequential.backward: argument 'caches' must hold one cache per layer \(5\), as forward_with_caches returns them, got 4"),
    (lambda: net().backward(t(5, 2), None), TypeError, r"Sequential.backward: argument 'caches' must be a sequence of one cache per layer \(5\)"),
    (lambda: net().loss_and_grads(t(5, 3), labels(4)), ValueError, r"softmax_cross_entropy_forward: argument 'y' must have shape \(5,\)"),
]


@pytest.mark.parametrize("call, error, pattern", LAYERS + SEQUENTIAL)
def test_layer_and_sequential_errors(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


def test_a_network_without_dropout_or_in_eval_mode_needs_no_generator():
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(0), dtype=F64)
    net().loss_and_grads(x, labels(5))
    net(dropout=0.5).eval().loss_and_grads(x, labels(5))
    net(dropout=0.5, generator=torch.Generator().manual_seed(1)).loss_and_grads(x, labels(5))
