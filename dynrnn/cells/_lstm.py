from __future__ import annotations

import jax
import jax.numpy as jnp

from ._base import ParamSpec, ProjectedCell, cell_dataclass, layer_norm, linear, masked


@cell_dataclass
class LSTMCell(ProjectedCell):
    """DyNet's `VanillaLSTMBuilder` cell (Hochreiter & Schmidhuber 1997; Gers et al. 2000).

    Gates are stacked **[i, f, o, g]** in one 4H pre-activation::

        a   = W_x·x_t + W_h·h_{t−1} + b                 (with ln: LN(W_x·x) + LN(W_h·h) + b,
                                                         LN(W_h·h) left out at a first step)
        i, f, o, g = split(a, 4)
        c_t = σ(f + forget_bias) ⊙ c_{t−1} + σ(i) ⊙ tanh(g)
        h_t = σ(o) ⊙ tanh(c_t)                          (with ln: tanh(LN(c_t)))

    `forget_bias` is a constant (the stored `b` starts at 0). Layer norm follows DyNet
    (Ba et al. 2016), see `layer_norm`; as in DyNet, a sequence's first step — from a state
    that is all zeros, as `initial_state()` makes it — has no recurrent term at all (LN of
    W_h·0 would be b_h). (DyNet keeps it for an explicit initial state even of zeros; here a
    state of zeros is a first step however it was made.) Parameters: `[W_x (4H×I), W_h (4H×H), b (4H)]`,
    and with `ln`: `[g_x, b_x, g_h, b_h (4H each), g_c, b_c (H each)]`. State: `(c, h)`.
    """

    input_dim: int
    hidden_dim: int
    ln: bool = False
    forget_bias: float = 1.0

    def param_specs(self):
        H, n_in = self.hidden_dim, self.input_dim
        specs = (ParamSpec("W_x", (4 * H, n_in)), ParamSpec("W_h", (4 * H, H)), ParamSpec("b", (4 * H,), 0.0))
        if self.ln:
            specs += (ParamSpec("g_x", (4 * H,), 1.0), ParamSpec("b_x", (4 * H,), 0.0),
                      ParamSpec("g_h", (4 * H,), 1.0), ParamSpec("b_h", (4 * H,), 0.0),
                      ParamSpec("g_c", (H,), 1.0), ParamSpec("b_c", (H,), 0.0))
        return specs

    def state_sizes(self):
        return (self.hidden_dim, self.hidden_dim)

    def project_input(self, params, x):
        """W_x·x, the part of the pre-activation that does not depend on the state."""
        return linear(params[0], x)

    def step_projected(self, params, state, px, h_mask=None):
        W_h, b = params[1:3]
        c, h = state
        ah = linear(W_h, masked(h, h_mask))
        if self.ln:
            g_x, b_x, g_h, b_h = params[3:7]
            begun = jnp.any(h != 0, axis=-1, keepdims=True) | jnp.any(c != 0, axis=-1, keepdims=True)
            px, ah = layer_norm(px, g_x, b_x), jnp.where(begun, layer_norm(ah, g_h, b_h), 0.0)
        i, f, o, g = jnp.split(px + ah + b, 4, axis=-1)
        c = jax.nn.sigmoid(f + self.forget_bias) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        c_out = layer_norm(c, *params[7:9]) if self.ln else c  # g_c, b_c
        return c, jax.nn.sigmoid(o) * jnp.tanh(c_out)

