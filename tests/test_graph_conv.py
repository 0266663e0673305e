"""DyNet's convolution and pooling in graph mode (`conv2d`, `conv2d_bias`, `maxpooling2d`,
`filter1d_narrow`): values and DyNet dims against plain-loop NumPy references (TensorFlow's
"VALID"/"SAME" rules, which DyNet follows: checked against DyNet 2.1.2 when written),
minibatches, autobatched groups, gradients against finite differences (float64), and the
errors for bad arguments."""

from __future__ import annotations

import math

import numpy as np
import pytest

import dynrnn as dy

from .helpers import check_graph_case, check_graph_gradient, dy_config

R = np.random.default_rng(11)
X = R.normal(size=(7, 6, 3)).astype(np.float32)       # an image: height, width, channels
XB = R.normal(size=(7, 6, 3, 2)).astype(np.float32)   # two of them (DyNet layout: batch last)
F = R.normal(size=(3, 2, 3, 4)).astype(np.float32)    # filters: height, width, in, out
B = R.normal(size=4).astype(np.float32)
XG = R.normal(size=(7, 6)).astype(np.float32)         # a grey image: height, width (one channel)
XGB = R.normal(size=(7, 6, 2)).astype(np.float32)     # two of them
FG = R.normal(size=(3, 2, 1, 4)).astype(np.float32)   # filters of one channel in
XM = R.normal(size=(4, 9)).astype(np.float32)
FM = R.normal(size=(4, 3)).astype(np.float32)
FM3 = R.normal(size=(4, 3, 5)).astype(np.float32)
inp = dy.inputTensor


def _padding(size: int, k: int, s: int, valid: bool) -> tuple[int, int]:
    """(output size, padding before): TensorFlow's rule (SAME: the odd row goes after)."""
    if valid:
        return (size - k) // s + 1, 0
    out = -(-size // s)
    return out, max((out - 1) * s + k - size, 0) // 2


def _conv_ref(x, f, stride, valid):
    (h, w, _), (kh, kw, _, co) = x.shape, f.shape
    (oh, top), (ow, left) = _padding(h, kh, stride[0], valid), _padding(w, kw, stride[1], valid)
    y = np.zeros((oh, ow, co))
    for i in range(oh):
        for j in range(ow):
            for a in range(kh):
                for b in range(kw):
                    r, c = i * stride[0] + a - top, j * stride[1] + b - left
                    if 0 <= r < h and 0 <= c < w:
                        y[i, j] += x[r, c] @ f[a, b]
    return y


def _pool_ref(x, k, stride, valid):
    h, w, ch = x.shape
    (oh, top), (ow, left) = _padding(h, k[0], stride[0], valid), _padding(w, k[1], stride[1], valid)
    y = np.full((oh, ow, ch), -np.inf)
    for i in range(oh):
        for j in range(ow):
            for a in range(k[0]):
                for b in range(k[1]):
                    r, c = i * stride[0] + a - top, j * stride[1] + b - left
                    if 0 <= r < h and 0 <= c < w:
                        y[i, j] = np.maximum(y[i, j], x[r, c])
    return y


def _filter1d_ref(x, f):
    f3 = f.reshape(f.shape[:2] + (-1,))
    n, k, o = f3.shape
    m = x.shape[1] - k + 1
    return np.array([[sum(x[i, j + t] * f3[i, t, q] for i in range(n) for t in range(k)) for j in range(m)]
                     for q in range(o)])


CASES = {}
for _valid in (True, False):
    for _s in ((1, 1), (2, 1), (2, 3)):
        _oh, _ow = (_padding(7, 3, _s[0], _valid)[0], _padding(6, 2, _s[1], _valid)[0])
        CASES[f"conv2d {'valid' if _valid else 'same'} stride {_s}"] = (
            lambda s=_s, v=_valid: dy.conv2d(inp(X), inp(F), list(s), is_valid=v),
            lambda s=_s, v=_valid: _conv_ref(X, F, s, v), ((_oh, _ow, 4), 1))
        CASES[f"conv2d_bias of a minibatch {'valid' if _valid else 'same'} stride {_s}"] = (
            lambda s=_s, v=_valid: dy.conv2d_bias(inp(XB, batched=True), inp(F), inp(B), list(s), is_valid=v),
            lambda s=_s, v=_valid: np.stack([_conv_ref(XB[..., i], F, s, v) + B for i in range(2)], -1),
            ((_oh, _ow, 4), 2))
    for _k, _s in (((2, 2), (2, 2)), ((3, 2), (1, 2)), ((3, 3), (2, 2))):
        _oh, _ow = (_padding(7, _k[0], _s[0], _valid)[0], _padding(6, _k[1], _s[1], _valid)[0])
        CASES[f"maxpooling2d {'valid' if _valid else 'same'} window {_k} stride {_s}"] = (
            lambda k=_k, s=_s, v=_valid: dy.maxpooling2d(inp(X), list(k), list(s), is_valid=v),
            lambda k=_k, s=_s, v=_valid: _pool_ref(X, k, s, v), ((_oh, _ow, 3), 1))
# DyNet takes an image of dims (height, width) as one channel (`dy.inputTensor(images,
# batched=True)` of a list of 28x28 images, in its mnist_dynet_minibatch.py): conv2d gives
# (H', W', Co), maxpooling2d (H', W')
CASES["conv2d of a grey image"] = (lambda: dy.conv2d(inp(XG), inp(FG), [1, 1], is_valid=False),
                                   lambda: _conv_ref(XG[..., None], FG, (1, 1), False), ((7, 6, 4), 1))
CASES["conv2d_bias of grey images, a minibatch"] = (
    lambda: dy.conv2d_bias(inp(XGB, batched=True), inp(FG), inp(B), [2, 1]),
    lambda: np.stack([_conv_ref(XGB[..., i, None], FG, (2, 1), True) + B for i in range(2)], -1), ((3, 5, 4), 2))
CASES["maxpooling2d of a grey image"] = (lambda: dy.maxpooling2d(inp(XG), [2, 2], [2, 2], is_valid=False),
                                         lambda: _pool_ref(XG[..., None], (2, 2), (2, 2), False)[..., 0], ((4, 3), 1))
CASES["filter1d_narrow"] = (lambda: dy.filter1d_narrow(inp(XM), inp(FM)), lambda: _filter1d_ref(XM, FM), ((1, 7), 1))
CASES["filter1d_narrow, 5 filters"] = (lambda: dy.filter1d_narrow(inp(XM), inp(FM3)), lambda: _filter1d_ref(XM, FM3),
                                       ((5, 7), 1))


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("batched", [True, False], ids=["autobatch", "sequential"])
def test_values_and_dims_match_numpy(name, batched):
    check_graph_case(*CASES[name], autobatch=batched, atol=2e-5)


def test_mnist_layers_autobatched_equal_one_by_one():
    """DyNet's MNIST example's convolutional layers (conv2d_bias, rectify, maxpooling2d,
    reshape, a linear layer) over several images in one graph: autobatched groups give the
    values and parameter gradients of the nodes run one by one."""
    pc = dy.ParameterCollection()
    f1, b1 = pc.add_parameters((3, 3, 1, 4)), pc.add_parameters((4,))
    f2, b2 = pc.add_parameters((3, 3, 4, 6)), pc.add_parameters((6,))
    w = pc.add_parameters((10, 2 * 2 * 6))
    images = [R.normal(size=(8, 8, 1)).astype(np.float32) for _ in range(5)]
    got = {}
    for batched in (True, False):
        with dy_config(autobatch=batched):
            dy.renew_cg()
            losses = []
            for k, im in enumerate(images):
                x = dy.conv2d_bias(inp(im), f1, b1, [1, 1], is_valid=False)
                x = dy.rectify(dy.maxpooling2d(x, [2, 2], [2, 2]))
                x = dy.conv2d_bias(x, f2, b2, [1, 1], is_valid=False)
                x = dy.rectify(dy.maxpooling2d(x, [2, 2], [2, 2]))
                losses.append(dy.pickneglogsoftmax(w * dy.reshape(x, (2 * 2 * 6,)), k))
            loss = dy.esum(losses)
            value = loss.value()
            loss.backward()
            got[batched] = (value, [p.grad_as_array().copy() for p in (f1, b1, f2, b2, w)])
            for p in (f1, b1, f2, b2, w):
                p.clear_grad()
    assert math.isfinite(got[True][0])
    np.testing.assert_allclose(got[True][0], got[False][0], rtol=1e-5)
    for a, b in zip(got[True][1], got[False][1]):
        assert np.abs(b).max() > 0
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


GRADIENTS = {
    "conv2d valid, d/dx": (lambda x: dy.conv2d(x, inp(F.astype(np.float64)), [2, 1]), X),
    "conv2d same, d/dx": (lambda x: dy.conv2d(x, inp(F.astype(np.float64)), [2, 3], is_valid=False), X),
    "conv2d same, d/df": (lambda f: dy.conv2d(inp(X.astype(np.float64)), f, [1, 1], is_valid=False), F),
    "conv2d_bias, d/db": (lambda b: dy.conv2d_bias(inp(X.astype(np.float64)), inp(F.astype(np.float64)), b, [1, 2]),
                          B),
    "conv2d of a grey image, d/dx": (lambda x: dy.conv2d(x, inp(FG.astype(np.float64)), [1, 2], is_valid=False), XG),
    "maxpooling2d of a grey image": (lambda x: dy.maxpooling2d(x, [2, 3], [2, 2]), XG),
    "maxpooling2d valid": (lambda x: dy.maxpooling2d(x, [3, 2], [1, 2]), X),
    "maxpooling2d same": (lambda x: dy.maxpooling2d(x, [3, 3], [2, 2], is_valid=False), X),
    "filter1d_narrow, d/dx": (lambda x: dy.filter1d_narrow(x, inp(FM3.astype(np.float64))), XM),
    "filter1d_narrow, d/df": (lambda f: dy.filter1d_narrow(inp(XM.astype(np.float64)), f), FM3),
}


@pytest.mark.parametrize("name", list(GRADIENTS))
def test_gradients_match_finite_differences(name, x64):
    """d(c · f(x))/dx by backward() against central differences of the graph's own value,
    in float64."""
    f, x0 = GRADIENTS[name]
    check_graph_gradient(name, f, x0)


def test_bad_arguments_say_what_was_expected():
    dy.renew_cg()
    x, f = inp(X), inp(F)
    cases = [
        (lambda: dy.conv2d(inp(XM[0]), f, [1, 1]), r"x must be an image of dims \(height, width, channels\) or "
                                                    r"\(height, width\) \(and a batch\); given dims \(9,\)"),
        (lambda: dy.maxpooling2d(inp(XB), [2, 2], [1, 1]), r"x must be an image .* given dims \(7, 6, 3, 2\)"),
        (lambda: dy.conv2d(inp(XG), f, [1, 1]), r"f takes 3 channels in; x has 1"),
        (lambda: dy.conv2d(x, inp(FM3), [1, 1]), r"f must be filters of dims"),
        (lambda: dy.conv2d(x, inp(np.ones((3, 2, 2, 4), np.float32)), [1, 1]), "f takes 2 channels in; x has 3"),
        (lambda: dy.conv2d(x, f, [1]), r"stride must be two positive ints \[rows, cols\]; given \[1\]"),
        (lambda: dy.conv2d(x, f, [0, 1]), "stride must be two positive ints"),
        (lambda: dy.conv2d(x, inp(np.ones((9, 2, 3, 4), np.float32)), [1, 1]), "does not fit in a 7x6 image"),
        (lambda: dy.conv2d_bias(x, f, inp(np.ones(3, np.float32)), [1, 1]), "b must be a vector of the 4 output"),
        (lambda: dy.maxpooling2d(x, [8, 2], [1, 1]), "a 8x2 window does not fit in a 7x6 image"),
        (lambda: dy.maxpooling2d(x, 2, [1, 1]), "ksize must be two positive ints"),
        (lambda: dy.filter1d_narrow(inp(XM), inp(np.ones((3, 3), np.float32))), r"f dims \(3, 3\)"),
    ]
    for call, text in cases:
        with pytest.raises(ValueError, match=text):
            call()
