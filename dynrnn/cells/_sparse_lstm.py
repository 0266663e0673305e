from __future__ import annotations

import jax

from ._base import ParamSpec, cell_dataclass, linear
from ._lstm import LSTMCell


@cell_dataclass
class SparseLSTMCell(LSTMCell):
    """DyNet's `SparseLSTMBuilder` cell: `LSTMCell` with fixed 0/1 masks on its weights
    (Narang et al. 2017), `W_x ⊙ M_x` and `W_h ⊙ M_h` in place of `W_x` and `W_h`::

        a = (W_x ⊙ M_x)·x_t + (W_h ⊙ M_h)·h_{t−1} + b,   then as `LSTMCell`.

    The masks are parameters (initially all ones) that no gradient reaches; the builder's
    `set_sparsity` sets them. Parameters: `[W_x, W_h, b, M_x (4H×I), M_h (4H×H)]`, then the
    layer-norm gains of `LSTMCell` with `ln`.
    """

    def param_specs(self):
        H, n_in = self.hidden_dim, self.input_dim
        dense = super().param_specs()
        return dense[:3] + (ParamSpec("M_x", (4 * H, n_in), 1.0), ParamSpec("M_h", (4 * H, H), 1.0)) + dense[3:]

    def _dense(self, params):
        """The parameters as `LSTMCell` takes them, with the masks applied."""
        return (params[0] * jax.lax.stop_gradient(params[3]), params[1] * jax.lax.stop_gradient(params[4]),
                params[2]) + tuple(params[5:])

    def project_input(self, params, x):
        return linear(params[0] * jax.lax.stop_gradient(params[3]), x)

    def step_projected(self, params, state, px, h_mask=None):
        return super().step_projected(self._dense(params), state, px, h_mask)
