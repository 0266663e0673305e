from __future__ import annotations

import jax
import jax.numpy as jnp

from ._base import ParamSpec, ProjectedCell, cell_dataclass, linear, masked


@cell_dataclass
class CoupledLSTMCell(ProjectedCell):
    """DyNet's `CoupledLSTMBuilder` cell: coupled input/forget gates and full peepholes
    (the cell of Dyer et al. 2015's stack-LSTM parser)::

        i_t = σ(x2i·x_t + h2i·h_{t−1} + c2i·c_{t−1} + bi)
        f_t = 1 − i_t
        c_t = f_t ⊙ c_{t−1} + i_t ⊙ tanh(x2c·x_t + h2c·h_{t−1} + bc)
        o_t = σ(x2o·x_t + h2o·h_{t−1} + c2o·c_t + bo)
        h_t = o_t ⊙ tanh(c_t)

    Parameters: `[x2i, h2i, c2i, bi, x2o, h2o, c2o, bo, x2c, h2c, bc]` (x2* H×I,
    h2*/c2* H×H, b* H). State: `(c, h)`.
    """

    input_dim: int
    hidden_dim: int

    def param_specs(self):
        H, n_in = self.hidden_dim, self.input_dim
        specs = ()
        for gate, peephole in (("i", True), ("o", True), ("c", False)):
            specs += (ParamSpec(f"x2{gate}", (H, n_in)), ParamSpec(f"h2{gate}", (H, H)))
            if peephole:
                specs += (ParamSpec(f"c2{gate}", (H, H)),)
            specs += (ParamSpec(f"b{gate}", (H,), 0.0),)
        return specs

    def state_sizes(self):
        return (self.hidden_dim, self.hidden_dim)

    # The gates' matrices are stacked for the products (four per step instead of eight:
    # [x2i; x2o; x2c]·x, [h2i; h2o; h2c]·h, c2i·c_{t−1}, c2o·c_t); inside a compiled loop
    # XLA stacks the loop-invariant weights once, outside the loop.
    def project_input(self, params, x):
        """[x2i·x; x2o·x; x2c·x], the parts that do not depend on the state."""
        return linear(jnp.concatenate([params[0], params[4], params[8]]), x)

    def step_projected(self, params, state, px, h_mask=None):
        _, h2i, c2i, bi, _, h2o, c2o, bo, _, h2c, bc = params
        c_prev, h = state
        ph = linear(jnp.concatenate([h2i, h2o, h2c]), masked(h, h_mask))
        xi, xo, xc = jnp.split(px + ph + jnp.concatenate([bi, bo, bc]), 3, axis=-1)
        i = jax.nn.sigmoid(xi + linear(c2i, c_prev))
        c = (1.0 - i) * c_prev + i * jnp.tanh(xc)
        o = jax.nn.sigmoid(xo + linear(c2o, c))
        return c, o * jnp.tanh(c)

