"""DyNet's device names: programs may name JAX's default device (where dynrnn runs
everything) and nothing else; `to_device` to it keeps the value."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import dynrnn as dy

D = jax.devices()[0]
HERE = "CPU" if D.platform == "cpu" else f"{D.platform.upper()}:{D.id}"  # DyNet's spelling
ELSEWHERE = "GPU:1" if HERE != "GPU:1" else "CPU"


def test_the_default_device_is_the_one_available():
    assert dy.available_devices() == [HERE]
    info = dy.get_device_info(HERE)
    assert (info.name, info.id, info.type) == (HERE, D.id, D.platform.upper())


def _program(device):
    """DyNet's xor-multidevice pattern on one device: every maker given `device`."""
    kw = {} if device is None else {"device": device}
    pc = dy.ParameterCollection(seed=3)
    W = pc.add_parameters((4, 2), **kw)
    E = pc.add_lookup_parameters((5, 2), **kw)
    b = pc.parameters_from_numpy(np.arange(4, dtype=np.float32), **kw)
    T = pc.lookup_parameters_from_numpy(np.ones((3, 4), np.float32), **kw)
    dy.renew_cg()
    x = dy.inputTensor(np.array([0.5, -1.0]), **kw) + dy.inputVector([0.1, 0.2], **kw) + dy.vecInput(2, **kw)
    h = dy.tanh(W * (x + E[1]) + b)
    h = dy.to_device(h, HERE) if device is not None else h
    s = dy.one_hot(4, 2, **kw) + dy.sparse_inputTensor([[1]], [2.0], (4,), **kw) + dy.scalarInput(0.5, **kw)
    loss = dy.dot_product(h, s) + dy.sum_elems(T[0])
    value = loss.scalar_value()
    loss.backward()
    return value, W.grad_as_array(), E.grad_as_array()


def test_naming_the_default_device_changes_nothing():
    plain, named = _program(None), _program(HERE)
    assert named[0] == plain[0]
    np.testing.assert_array_equal(named[1], plain[1])
    np.testing.assert_array_equal(named[2], plain[2])


def test_array_mode_takes_the_device_names_too():
    a = dy.inputTensor(np.ones((2, 3)), batched=True, device=HERE)
    assert a.shape == (3, 2)
    assert dy.to_device(a, HERE) is a
    np.testing.assert_array_equal(np.asarray(dy.inputVector([1.0, 2.0], device=HERE)), [1.0, 2.0])


@pytest.mark.parametrize("make", [
    lambda pc, d: pc.add_parameters((2, 2), device=d),
    lambda pc, d: pc.add_lookup_parameters((3, 2), device=d),
    lambda pc, d: pc.parameters_from_numpy(np.ones(2), device=d),
    lambda pc, d: dy.inputTensor(np.ones(2), device=d),
    lambda pc, d: dy.inputVector([1.0], device=d),
    lambda pc, d: dy.scalarInput(1.0, device=d),
    lambda pc, d: dy.vecInput(2, device=d),
    lambda pc, d: dy.one_hot(3, 1, device=d),
    lambda pc, d: dy.to_device(dy.inputTensor(np.ones(2)), d),
], ids=["add_parameters", "add_lookup_parameters", "parameters_from_numpy", "inputTensor", "inputVector",
        "scalarInput", "vecInput", "one_hot", "to_device"])
def test_another_device_is_refused_by_name(make):
    pc = dy.ParameterCollection()
    dy.renew_cg()
    with pytest.raises(ValueError, match=rf"device '{ELSEWHERE}' is not available.*default device, '{HERE}'"):
        make(pc, ELSEWHERE)
    with pytest.raises(TypeError, match="device must be a device name"):
        make(pc, 0)


def test_dynet_argument_order_and_stale_expressions():
    pc = dy.ParameterCollection()
    # DyNet's order: add_parameters(dim, init, name, device, scale, ...): a scale given in
    # the place of the device is an error, not a device
    with pytest.raises(TypeError, match="device must be a device name"):
        pc.add_parameters((2, 2), "uniform", "w", 0.5)
    assert pc.add_parameters((2, 2), "uniform", "w", HERE, 0.5).shape() == (2, 2)
    dy.renew_cg()
    e = dy.inputVector([1.0])
    dy.renew_cg()
    with pytest.raises(dy.GraphError, match="dy.to_device: this expression belongs to computation graph"):
        dy.to_device(e, HERE)
