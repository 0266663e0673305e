from __future__ import annotations

import jax.numpy as jnp

from ._base import ParamSpec, ProjectedCell, cell_dataclass, linear, masked


@cell_dataclass
class SimpleRNNCell(ProjectedCell):
    """Elman RNN: h_t = tanh(W_hx·x_t + W_hh·h_{t−1} + b).

    Parameters, in DyNet's order: `[W_hx (H×I), W_hh (H×H), b (H)]`. State: `(h,)`.
    """

    input_dim: int
    hidden_dim: int

    def param_specs(self):
        H, n_in = self.hidden_dim, self.input_dim
        return (ParamSpec("W_hx", (H, n_in)), ParamSpec("W_hh", (H, H)), ParamSpec("b", (H,), 0.0))

    def project_input(self, params, x):
        return linear(params[0], x)

    def step_projected(self, params, state, px, h_mask=None):
        _, W_hh, b = params
        (h,) = state
        return (jnp.tanh(px + linear(W_hh, masked(h, h_mask)) + b),)

