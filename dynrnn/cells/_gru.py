from __future__ import annotations

import jax
import jax.numpy as jnp

from ._base import ParamSpec, ProjectedCell, cell_dataclass, linear, masked


@cell_dataclass
class GRUCell(ProjectedCell):
    """DyNet's `GRUBuilder` cell, Cho et al. (2014) form — reset before the product::

        z_t = σ(W_zx·x_t + W_zh·h_{t−1} + b_z)
        r_t = σ(W_rx·x_t + W_rh·h_{t−1} + b_r)
        h̃_t = tanh(W_hx·x_t + W_hh·(r_t ⊙ h_{t−1}) + b_h)
        h_t = (1 − z_t) ⊙ h_{t−1} + z_t ⊙ h̃_t

    Parameters: `[W_zx, W_zh, b_z, W_rx, W_rh, b_r, W_hx, W_hh, b_h]`. State: `(h,)`.
    """

    input_dim: int
    hidden_dim: int

    def param_specs(self):
        H, n_in = self.hidden_dim, self.input_dim
        specs = ()
        for g in ("z", "r", "h"):
            specs += (ParamSpec(f"W_{g}x", (H, n_in)), ParamSpec(f"W_{g}h", (H, H)), ParamSpec(f"b_{g}", (H,), 0.0))
        return specs

    def project_input(self, params, x):
        """[W_zx·x; W_rx·x; W_hx·x], the parts that do not depend on the state."""
        return jnp.concatenate([linear(params[0], x), linear(params[3], x), linear(params[6], x)], axis=-1)

    def step_projected(self, params, state, px, h_mask=None):
        _, W_zh, b_z, _, W_rh, b_r, _, W_hh, b_h = params
        (h,) = state
        zx, rx, hx = jnp.split(px, 3, axis=-1)
        hm = masked(h, h_mask)
        z = jax.nn.sigmoid(zx + linear(W_zh, hm) + b_z)
        r = jax.nn.sigmoid(rx + linear(W_rh, hm) + b_r)
        candidate = jnp.tanh(hx + linear(W_hh, r * hm) + b_h)
        return ((1.0 - z) * h + z * candidate,)

