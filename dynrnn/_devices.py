"""DyNet's device names, on JAX's devices.

DyNet places each parameter and expression on a named device ("CPU", "GPU:0", ...), given
by `device=` when it is made, and copies values between devices with `to_device`. dynrnn
runs everything on JAX's default device (a GPU jaxlib's first GPU, else the CPU), so that
device's DyNet name is the one a program may give. Any other name is refused with an
error, not ignored: a program that spreads its model over several devices would otherwise
run somewhere it did not ask for.
"""

from __future__ import annotations

from typing import Any

import jax


class DeviceInfo:
    """DyNet's `get_device_info` result: the device's name, its id and its type."""

    def __init__(self, name: str, id: int, type: str):  # noqa: A002 - DyNet's attribute names
        self.name, self.id, self.type = name, id, type

    def __repr__(self) -> str:
        return f"DeviceInfo(name={self.name!r}, id={self.id}, type={self.type!r})"


def _dynet_name(d: Any) -> str:
    return "CPU" if d.platform == "cpu" else f"{d.platform.upper()}:{d.id}"


def default_device_name() -> str:
    """The DyNet name of JAX's default device: "CPU", or "GPU:0" on a GPU jaxlib."""
    return _dynet_name(jax.devices()[0])


def available_devices() -> list[str]:
    """DyNet's `available_devices()`: the devices a program may name — here JAX's default
    device only (dynrnn does not place parts of a model on other devices)."""
    return [default_device_name()]


def check_device(where: str, device: Any) -> None:
    """Accepts DyNet's `device=` argument when it is empty (DyNet's default device) or names
    JAX's default device; raises otherwise."""
    if device is None or (isinstance(device, str) and device == ""):
        return
    if not isinstance(device, str):
        raise TypeError(f"{where}: device must be a device name (a str such as 'CPU' or 'GPU:0'); "
                        f"given {type(device).__name__}.")
    default = default_device_name()
    if device != default:
        raise ValueError(f"{where}: device {device!r} is not available: dynrnn runs every parameter and expression "
                         f"on JAX's default device, {default!r} (placing parts of a model on other devices, as "
                         f"DyNet's --dynet-devices does, is not supported); give device={default!r} or leave it out.")


def get_device_info(name: str) -> DeviceInfo:
    """DyNet's `get_device_info(name)` for an available device."""
    check_device("dy.get_device_info", name)
    d = jax.devices()[0]
    return DeviceInfo(default_device_name(), d.id, d.platform.upper())
