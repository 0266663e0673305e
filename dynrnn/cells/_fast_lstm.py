from __future__ import annotations

import jax
import jax.numpy as jnp

from ._base import ParamSpec, cell_dataclass, linear, masked
from ._coupled_lstm import CoupledLSTMCell


@cell_dataclass
class FastLSTMCell(CoupledLSTMCell):
    """DyNet's `FastLSTMBuilder` cell (2.1.2): coupled input/forget gates, no peepholes::

        i_t = σ(x2i·x_t + h2i·h_{t−1} + bi)
        f_t = 1 − i_t
        c_t = f_t ⊙ c_{t−1} + i_t ⊙ tanh(x2c·x_t + h2c·h_{t−1} + bc)
        o_t = σ(x2o·x_t + h2o·h_{t−1} + bo)
        h_t = o_t ⊙ tanh(c_t)

    Parameters: `[x2i, h2i, c2i, bi, x2o, h2o, c2o, bo, x2c, h2c, bc]` (x2* H×I, h2* H×H,
    c2* H×1, b* H). DyNet 2.1.2 creates the peephole vectors c2i, c2o but leaves them out
    of its equations (a TODO in fast-lstm.cc); so does this cell, so that saved models and
    results agree. State: `(c, h)`. The input projection is `CoupledLSTMCell`'s.
    """

    def param_specs(self):
        H = self.hidden_dim
        return tuple(ParamSpec(s.name, (H, 1)) if s.name.startswith("c2") else s for s in super().param_specs())

    def step_projected(self, params, state, px, h_mask=None):
        _, h2i, _, bi, _, h2o, _, bo, _, h2c, bc = params
        c_prev, h = state
        ph = linear(jnp.concatenate([h2i, h2o, h2c]), masked(h, h_mask))
        xi, xo, xc = jnp.split(px + ph + jnp.concatenate([bi, bo, bc]), 3, axis=-1)
        i = jax.nn.sigmoid(xi)
        c = (1.0 - i) * c_prev + i * jnp.tanh(xc)
        return c, jax.nn.sigmoid(xo) * jnp.tanh(c)
