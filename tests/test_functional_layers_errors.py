"""Bad input to the layer pairs gets a TypeError/ValueError naming the function, the argument, what was expected
and what arrived."""

import pytest
import torch

from bplib import functional as bf

F64 = torch.float64


def t(*shape, dtype=F64, device="cpu"):
    return torch.zeros(shape, dtype=dtype, device=device)


def ints(*shape):
    return torch.zeros(*shape, dtype=torch.int64)


def gen():
    return torch.Generator().manual_seed(0)


def bn(x, n=None, **kwargs):
    """batch_norm_forward with gamma and beta of the right size n = x.shape[1] unless n is given."""
    n = x.shape[1] if n is None else n
    return bf.batch_norm_forward(x, t(n), t(n), **kwargs)


def stats(n):
    return {"running_mean": t(n), "running_var": t(n) + 1}


SOFTMAX = [
    (lambda: bf.softmax_forward([1.0, 2.0]), TypeError, r"softmax_forward: argument 'z' must be a torch.Tensor, got list"),
    (lambda: bf.softmax_forward(ints(2, 3)), TypeError, r"softmax_forward: argument 'z' must have a floating dtype .*int64"),
    (lambda: bf.softmax_forward(t()), ValueError, r"softmax_forward: argument 'z' must have at least one dimension to normalise over, got a 0-d tensor"),
    (lambda: bf.softmax_forward(t(2, 3), dim=1.0), TypeError, r"softmax_forward: argument 'dim' must be an int, got float 1.0"),
    (lambda: bf.softmax_forward(t(2, 3), dim=True), TypeError, r"softmax_forward: argument 'dim' must be an int, got bool True"),
    (lambda: bf.softmax_forward(t(2, 3), dim=2), ValueError, r"softmax_forward: argument 'dim' must be an integer in \[-2, 1\] for a 2-D 'z', got 2"),
    (lambda: bf.softmax_forward(t(2, 3), dim=-3), ValueError, r"argument 'dim' must be an integer in \[-2, 1\] for a 2-D 'z', got -3"),
    (lambda: bf.softmax_backward("dp", bf.softmax_forward(t(2, 3))[1]), TypeError, r"softmax_backward: argument 'dp' must be a torch.Tensor, got str"),
    (lambda: bf.softmax_backward(t(3, 2), bf.softmax_forward(t(2, 3))[1]), ValueError, r"softmax_backward: argument 'dp' must have the shape of the forward output \(2, 3\), got \(3, 2\)"),
    (lambda: bf.softmax_backward(t(2, 3, dtype=torch.float32), bf.softmax_forward(t(2, 3))[1]), TypeError, r"softmax_backward: argument 'dp' has dtype torch.float32 but 'p \(from cache\)' has dtype torch.float64"),
    (lambda: bf.softmax_backward(t(2, 3, device="meta"), bf.softmax_forward(t(2, 3))[1]), ValueError, r"softmax_backward: argument 'dp' is on device meta but 'p \(from cache\)' is on cpu"),
]

DROPOUT = [
    (lambda: bf.dropout_forward((1.0,), 0.5, generator=gen()), TypeError, r"dropout_forward: argument 'x' must be a torch.Tensor, got tuple"),
    (lambda: bf.dropout_forward(ints(3), 0.5, generator=gen()), TypeError, r"dropout_forward: argument 'x' must have a floating dtype .*int64"),
    (lambda: bf.dropout_forward(t(3), 1.0, generator=gen()), ValueError, r"dropout_forward: argument 'p' must be in \[0, 1\), got 1.0 \(the probability of dropping an entry; p = 1 would drop them all and scale by 1/\(1 - p\) = inf\)"),
    (lambda: bf.dropout_forward(t(3), 1, train=False), ValueError, r"dropout_forward: argument 'p' must be in \[0, 1\), got 1 "),
    (lambda: bf.dropout_forward(t(3), -0.1, generator=gen()), ValueError, r"dropout_forward: argument 'p' must be in \[0, 1\), got -0.1"),
    (lambda: bf.dropout_forward(t(3), float("nan"), generator=gen()), ValueError, r"dropout_forward: argument 'p' must be in \[0, 1\), got nan"),
    (lambda: bf.dropout_forward(t(3), "0.5", generator=gen()), TypeError, r"dropout_forward: argument 'p' must be a real number, got str '0.5'"),
    (lambda: bf.dropout_forward(t(3), torch.tensor(0.5), generator=gen()), TypeError, r"dropout_forward: argument 'p' must be a real number, got Tensor"),
    (lambda: bf.dropout_forward(t(3), 0.5, train=1, generator=gen()), TypeError, r"dropout_forward: argument 'train' must be True or False, got int 1"),
    (lambda: bf.dropout_forward(t(3), 0.5, generator=0), TypeError, r"dropout_forward: argument 'generator' must be a torch.Generator or None, got int"),
    (lambda: bf.dropout_forward(t(3), 0.5), TypeError, r"dropout_forward: argument 'generator' must be a torch.Generator when train=True and p > 0 \(the mask is random, and bplib draws only from an explicit generator\), got None"),
    (lambda: bf.dropout_backward([0.0], bf.dropout_forward(t(3), 0.5, generator=gen())[1]), TypeError, r"dropout_backward: argument 'dout' must be a torch.Tensor, got list"),
    (lambda: bf.dropout_backward(t(4), bf.dropout_forward(t(3), 0.5, generator=gen())[1]), ValueError, r"dropout_backward: argument 'dout' must have the shape of the forward output \(3,\), got \(4,\)"),
    (lambda: bf.dropout_backward(t(2, 2), bf.dropout_forward(t(3), 0.5, train=False)[1]), ValueError, r"dropout_backward: argument 'dout' must have the shape of the forward output \(3,\), got \(2, 2\)"),
    (lambda: bf.dropout_backward(t(3, dtype=torch.float32), bf.dropout_forward(t(3), 0.0)[1]), TypeError, r"dropout_backward: argument 'dout' has dtype torch.float32 but 'x \(from cache\)' has dtype torch.float64"),
    (lambda: bf.dropout_backward(t(3, device="meta"), bf.dropout_forward(t(3), 0.5, generator=gen())[1]), ValueError, r"dropout_backward: argument 'dout' is on device meta but 'x \(from cache\)' is on cpu"),
]

BATCH_NORM = [
    (lambda: bf.batch_norm_forward("x", t(3), t(3)), TypeError, r"batch_norm_forward: argument 'x' must be a torch.Tensor, got str"),
    (lambda: bf.batch_norm_forward(t(4), t(4), t(4)), ValueError, r"batch_norm_forward: argument 'x' must be 2-D, got a tensor of shape \(4,\)"),
    (lambda: bf.batch_norm_forward(t(2, 3, 4), t(3), t(3)), ValueError, r"batch_norm_forward: argument 'x' must be 2-D, got a tensor of shape \(2, 3, 4\)"),
    (lambda: bf.batch_norm_forward(ints(2, 3), t(3), t(3)), TypeError, r"batch_norm_forward: argument 'x' must have a floating dtype .*int64"),
    (lambda: bn(t(2, 3), n=4), ValueError, r"batch_norm_forward: argument 'gamma' must have shape \(3,\) \(one scale per feature, n = x.shape\[1\]\), got \(4,\)"),
    (lambda: bf.batch_norm_forward(t(2, 3), t(3), t(2)), ValueError, r"batch_norm_forward: argument 'beta' must have shape \(3,\) \(one shift per feature, n = x.shape\[1\]\), got \(2,\)"),
    (lambda: bf.batch_norm_forward(t(2, 3), t(1, 3), t(3)), ValueError, r"batch_norm_forward: argument 'gamma' must be 1-D, got a tensor of shape \(1, 3\)"),
    (lambda: bf.batch_norm_forward(t(2, 3), t(3, dtype=torch.float32), t(3)), TypeError, r"batch_norm_forward: argument 'gamma' has dtype torch.float32 but 'x' has dtype torch.float64"),
    (lambda: bf.batch_norm_forward(t(2, 3), t(3), t(3, device="meta")), ValueError, r"batch_norm_forward: argument 'beta' is on device meta but 'x' is on cpu"),
    (lambda: bn(t(2, 3), train="yes"), TypeError, r"batch_norm_forward: argument 'train' must be True or False, got str 'yes'"),
    (lambda: bn(t(2, 3), momentum=1.5), ValueError, r"batch_norm_forward: argument 'momentum' must be in \[0, 1\], got 1.5"),
    (lambda: bn(t(2, 3), momentum=-0.1), ValueError, r"batch_norm_forward: argument 'momentum' must be in \[0, 1\], got -0.1"),
    (lambda: bn(t(2, 3), momentum=None), TypeError, r"batch_norm_forward: argument 'momentum' must be a real number, got NoneType None"),
    (lambda: bn(t(2, 3), eps=-1e-5), ValueError, r"batch_norm_forward: argument 'eps' must be >= 0, got -1e-05"),
    (lambda: bn(t(2, 3), eps=float("inf")), ValueError, r"batch_norm_forward: argument 'eps' must be >= 0, got inf"),
    (lambda: bn(t(2, 3), eps=0.0), ValueError, r"batch_norm_forward: argument 'eps' must be > 0 when train=True, as in torch, got 0.0: a feature that is constant over the batch has variance 0"),
    (lambda: bn(t(2, 3), running_mean=t(3)), ValueError, r"batch_norm_forward: arguments 'running_mean' and 'running_var' must be given together or not at all, got running_mean alone"),
    (lambda: bn(t(2, 3), running_var=t(3), train=False), ValueError, r"batch_norm_forward: arguments 'running_mean' and 'running_var' must be given together or not at all, got running_var alone"),
    (lambda: bn(t(2, 3), running_mean=t(4), running_var=t(3)), ValueError, r"batch_norm_forward: argument 'running_mean' must have shape \(3,\) \(one statistic per feature, n = x.shape\[1\]\), got \(4,\)"),
    (lambda: bn(t(2, 3), running_mean=t(3), running_var=t(3, dtype=torch.float32)), TypeError, r"batch_norm_forward: argument 'running_var' has dtype torch.float32 but 'x' has dtype torch.float64"),
    (lambda: bn(t(2, 3), running_mean=t(3), running_var=[1.0, 1.0, 1.0]), TypeError, r"batch_norm_forward: argument 'running_var' must be a torch.Tensor, got list"),
    (lambda: bn(t(2, 3), running_mean=t(3, device="meta"), running_var=t(3)), ValueError, r"batch_norm_forward: argument 'running_mean' is on device meta but 'x' is on cpu"),
    (lambda: bn(t(2, 3), running_mean=t(3).requires_grad_(), running_var=t(3)), ValueError, r"batch_norm_forward: argument 'running_mean' must not require a gradient, as in torch: the running statistics are buffers"),
    (lambda: bn(t(2, 3), running_mean=t(3), running_var=(t(3) + 1).requires_grad_(), train=False), ValueError, r"batch_norm_forward: argument 'running_var' must not require a gradient"),
    (lambda: bn(t(2, 3), train=False), ValueError, r"batch_norm_forward: train=False normalises by the running statistics, so arguments 'running_mean' and 'running_var' are required, got None"),
    (lambda: bn(t(1, 3)), ValueError, r"batch_norm_forward: argument 'x' must hold at least 2 rows when train=True, got shape \(1, 3\): the batch statistics of one sample make xhat = 0 whatever x is, and its unbiased variance divides by m - 1 = 0"),
    (lambda: bn(t(1, 3), **stats(3)), ValueError, r"batch_norm_forward: argument 'x' must hold at least 2 rows when train=True, got shape \(1, 3\)"),
    (lambda: bf.batch_norm_backward(t(2, 3)[0], bn(t(2, 3))[1]), ValueError, r"batch_norm_backward: argument 'dout' must be 2-D, got a tensor of shape \(3,\)"),
    (lambda: bf.batch_norm_backward(t(3, 2), bn(t(2, 3))[1]), ValueError, r"batch_norm_backward: argument 'dout' must have shape \(2, 3\) \(the shape \(m, n\) of the forward output\), got \(3, 2\)"),
    (lambda: bf.batch_norm_backward(t(2, 3, dtype=torch.float32), bn(t(2, 3))[1]), TypeError, r"batch_norm_backward: argument 'dout' has dtype torch.float32 but 'xhat \(from cache\)' has dtype torch.float64"),
    (lambda: bf.batch_norm_backward(ints(2, 3), bn(t(2, 3))[1]), TypeError, r"batch_norm_backward: argument 'dout' must have a floating dtype"),
]

LAYER_NORM = [
    (lambda: bf.layer_norm_forward(None, t(3), t(3)), TypeError, r"layer_norm_forward: argument 'x' must be a torch.Tensor, got NoneType"),
    (lambda: bf.layer_norm_forward(t(), t(1), t(1)), ValueError, r"layer_norm_forward: argument 'x' must have at least one dimension to normalise over, got a 0-d tensor"),
    (lambda: bf.layer_norm_forward(ints(2, 3), t(3), t(3)), TypeError, r"layer_norm_forward: argument 'x' must have a floating dtype .*int64"),
    (lambda: bf.layer_norm_forward(t(2, 5, 3), t(5), t(3)), ValueError, r"layer_norm_forward: argument 'gamma' must have shape \(3,\) \(one scale per feature, n = x.shape\[-1\]\), got \(5,\)"),
    (lambda: bf.layer_norm_forward(t(2, 3), t(3), t(2, 3)), ValueError, r"layer_norm_forward: argument 'beta' must be 1-D, got a tensor of shape \(2, 3\)"),
    (lambda: bf.layer_norm_forward(t(2, 3), t(3), t(3, dtype=torch.float32)), TypeError, r"layer_norm_forward: argument 'beta' has dtype torch.float32 but 'x' has dtype torch.float64"),
    (lambda: bf.layer_norm_forward(t(2, 3), t(3, device="meta"), t(3)), ValueError, r"layer_norm_forward: argument 'gamma' is on device meta but 'x' is on cpu"),
    (lambda: bf.layer_norm_forward(t(2, 3), t(3), t(3), eps=-1.0), ValueError, r"layer_norm_forward: argument 'eps' must be >= 0, got -1.0"),
    (lambda: bf.layer_norm_forward(t(2, 3), t(3), t(3), eps="1e-5"), TypeError, r"layer_norm_forward: argument 'eps' must be a real number, got str '1e-5'"),
    (lambda: bf.layer_norm_backward(t(2, 4), bf.layer_norm_forward(t(2, 3), t(3), t(3))[1]), ValueError, r"layer_norm_backward: argument 'dout' must have the shape of the forward output \(2, 3\), got \(2, 4\)"),
    (lambda: bf.layer_norm_backward(t(2, 3, dtype=torch.float32), bf.layer_norm_forward(t(2, 3), t(3), t(3))[1]), TypeError, r"layer_norm_backward: argument 'dout' has dtype torch.float32 but 'xhat \(from cache\)' has dtype torch.float64"),
    (lambda: bf.layer_norm_backward(3.0, bf.layer_norm_forward(t(2, 3), t(3), t(3))[1]), TypeError, r"layer_norm_backward: argument 'dout' must be a torch.Tensor, got float"),
]

ATTENTION = [
    (lambda: bf.attention_forward([[0.0]], t(1, 1), t(1, 1)), TypeError, r"attention_forward: argument 'q' must be a torch.Tensor, got list"),
    (lambda: bf.attention_forward(t(4), t(3, 4), t(3, 2)), ValueError, r"attention_forward: argument 'q' must have at least 2 dimensions \(..., T_q, d\), got a 1-D tensor"),
    (lambda: bf.attention_forward(ints(2, 4), t(3, 4), t(3, 2)), TypeError, r"attention_forward: argument 'q' must have a floating dtype .*int64"),
    (lambda: bf.attention_forward(t(2, 4), "k", t(3, 2)), TypeError, r"attention_forward: argument 'k' must be a torch.Tensor, got str"),
    (lambda: bf.attention_forward(t(2, 4), t(3, 5), t(3, 2)), ValueError, r"attention_forward: argument 'k' must have shape \(any, 4\) \(the leading dimensions of q, T_k, then d = q.shape\[-1\]\), got \(3, 5\)"),
    (lambda: bf.attention_forward(t(2, 6, 4), t(3, 5, 4), t(3, 5, 2)), ValueError, r"attention_forward: argument 'k' must have shape \(2, any, 4\) \(the leading dimensions of q, T_k, then d = q.shape\[-1\]\), got \(3, 5, 4\)"),
    (lambda: bf.attention_forward(t(2, 6, 4), t(5, 4), t(5, 2)), ValueError, r"attention_forward: argument 'k' must have shape \(2, any, 4\)"),
    (lambda: bf.attention_forward(t(2, 6, 4), t(2, 5, 4), t(2, 4, 2)), ValueError, r"attention_forward: argument 'v' must have shape \(2, 5, any\) \(the leading dimensions of q, T_k = k.shape\[-2\], then d_v\), got \(2, 4, 2\)"),
    (lambda: bf.attention_forward(t(2, 6, 4), t(2, 5, 4), t(1, 5, 2)), ValueError, r"attention_forward: argument 'v' must have shape \(2, 5, any\)"),
    (lambda: bf.attention_forward(t(2, 4), t(3, 4, dtype=torch.float32), t(3, 2)), TypeError, r"attention_forward: argument 'k' has dtype torch.float32 but 'q' has dtype torch.float64"),
    (lambda: bf.attention_forward(t(2, 4), t(3, 4), t(3, 2, device="meta")), ValueError, r"attention_forward: argument 'v' is on device meta but 'q' is on cpu"),
    (lambda: bf.attention_forward(t(2, 4), t(3, 4), t(3, 2), causal="yes"), TypeError, r"attention_forward: argument 'causal' must be True or False, got str 'yes'"),
    (lambda: bf.attention_forward(t(2, 4), t(3, 4), t(3, 2), scale="0.5"), TypeError, r"attention_forward: argument 'scale' must be a real number, got str '0.5'"),
    (lambda: bf.attention_forward(t(2, 4), t(3, 4), t(3, 2), scale=float("inf")), ValueError, r"attention_forward: argument 'scale' must be finite, got inf"),
    (lambda: bf.attention_forward(t(2, 0), t(3, 0), t(3, 2)), ValueError, r"attention_forward: argument 'q' has d = q.shape\[-1\] = 0, so the default scale 1/sqrt\(d\) is undefined"),
    (lambda: bf.attention_backward(t(2, 4), bf.attention_forward(t(2, 4), t(3, 4), t(3, 2))[1]), ValueError, r"attention_backward: argument 'dout' must have shape \(2, 2\) \(the shape \(..., T_q, d_v\) of the forward output\), got \(2, 4\)"),
    (lambda: bf.attention_backward(t(3, 2, 2), bf.attention_forward(t(2, 4), t(3, 4), t(3, 2))[1]), ValueError, r"attention_backward: argument 'dout' must have shape \(2, 2\)"),
    (lambda: bf.attention_backward(t(2, 2, dtype=torch.float32), bf.attention_forward(t(2, 4), t(3, 4), t(3, 2))[1]), TypeError, r"attention_backward: argument 'dout' has dtype torch.float32 but 'q \(from cache\)' has dtype torch.float64"),
    (lambda: bf.attention_backward(None, bf.attention_forward(t(2, 4), t(3, 4), t(3, 2))[1]), TypeError, r"attention_backward: argument 'dout' must be a torch.Tensor, got NoneType"),
]


@pytest.mark.parametrize("call, error, pattern", SOFTMAX + DROPOUT + BATCH_NORM + LAYER_NORM + ATTENTION)
def test_layer_errors(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


def test_what_the_checks_allow():
    """The boundary cases the checks let through: eval-mode batch norm with m = 1 and eps = 0, p = 0, T_k = 0."""
    out, _ = bn(t(1, 3), train=False, eps=0.0, **stats(3))
    assert out.shape == (1, 3)
    assert bf.dropout_forward(t(3), 0, generator=gen())[0].shape == (3,)
    out, _ = bf.attention_forward(t(2, 4), t(0, 4), t(0, 5))  # no keys: every output row is the empty sum, 0
    assert torch.equal(out, t(2, 5))
