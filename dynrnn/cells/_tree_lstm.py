"""Tree-LSTM cells (Tai, Socher & Manning 2015): a node's state from its input and its
children's states. Pure math over arrays; children come as `(..., K, H)` blocks in which
an absent child is a row of zeros (which adds nothing to any sum below)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ._base import ParamSpec, cell_dataclass, linear, masked


def _finish(px_iou, hidden_iou, f, child_c):
    """c = σ(i) ⊙ tanh(u) + Σ_k f_k ⊙ c_k,  h = σ(o) ⊙ tanh(c)  (no children: f = None)."""
    i, o, u = jnp.split(px_iou + hidden_iou, 3, axis=-1)
    c = jax.nn.sigmoid(i) * jnp.tanh(u)
    if f is not None:
        c = c + jnp.sum(f * child_c, axis=-2)
    return c, jax.nn.sigmoid(o) * jnp.tanh(c)


class _TreeLSTMCell:
    """What the two Tree-LSTM cells share: the state `(c, h)`, the input part
    `[W_iou·x, W_f·x]` and the leaf; each defines `param_specs` and `combine_projected`."""

    hidden_dim: int

    def state_sizes(self):
        return (self.hidden_dim, self.hidden_dim)

    def project_input(self, params, x):
        """[W_iou·x, W_f·x]: the part that reads only the node's input, `(..., 4H)`."""
        return jnp.concatenate([linear(params[0], x), linear(params[3], x)], axis=-1)

    def combine_projected(self, params, px, child_c, child_h, h_mask=None):
        raise NotImplementedError

    def combine_leaf(self, params, px):
        """`combine_projected` for a node without children (every U·h term is zero):
        c = σ(i) ⊙ tanh(u), h = σ(o) ⊙ tanh(c), without the products by zeros."""
        return _finish(px[..., :3 * self.hidden_dim], params[2], None, None)

    def combine(self, params, x, child_c, child_h, h_mask=None):
        """The node's `(c, h)` from its input `x (..., I)` and its children's `(..., K, H)`
        (an absent child: zeros)."""
        return self.combine_projected(params, self.project_input(params, x), child_c, child_h, h_mask)


@cell_dataclass
class ChildSumTreeLSTMCell(_TreeLSTMCell):
    """The Child-Sum Tree-LSTM (Tai et al. 2015, eqs. 2–8), for trees whose children are
    unordered and of any number (dependency trees)::

        h̃   = Σ_k h_k
        i   = σ(W_i·x + U_i·h̃ + b_i),   o = σ(W_o·x + U_o·h̃ + b_o),   u = tanh(W_u·x + U_u·h̃ + b_u)
        f_k = σ(W_f·x + U_f·h_k + b_f)                       (one forget gate per child)
        c   = i ⊙ u + Σ_k f_k ⊙ c_k,    h = o ⊙ tanh(c)

    Parameters: `[W_iou (3H×I), U_iou (3H×H), b_iou (3H), W_f (H×I), U_f (H×H), b_f (H)]`
    (gates stacked [i, o, u]). State: `(c, h)`. A leaf has no children: h̃ = 0.
    """

    input_dim: int
    hidden_dim: int

    def param_specs(self):
        H, n_in = self.hidden_dim, self.input_dim
        return (ParamSpec("W_iou", (3 * H, n_in)), ParamSpec("U_iou", (3 * H, H)), ParamSpec("b_iou", (3 * H,), 0.0),
                ParamSpec("W_f", (H, n_in)), ParamSpec("U_f", (H, H)), ParamSpec("b_f", (H,), 0.0))

    def combine_projected(self, params, px, child_c, child_h, h_mask=None):
        _, U_iou, b_iou, _, U_f, b_f = params
        H = self.hidden_dim
        child_h = masked(child_h, None if h_mask is None else h_mask[..., None, :])
        f = jax.nn.sigmoid(px[..., None, 3 * H:] + linear(U_f, child_h) + b_f)
        return _finish(px[..., :3 * H], linear(U_iou, jnp.sum(child_h, axis=-2)) + b_iou, f, child_c)


@cell_dataclass
class NaryTreeLSTMCell(_TreeLSTMCell):
    """The N-ary Tree-LSTM (Tai et al. 2015, eqs. 9–14), for trees whose children have
    positions (k = 1..N; binary constituency trees: N = 2)::

        i   = σ(W_i·x + Σ_l U_i^l·h_l + b_i)    (likewise o, and u with tanh)
        f_k = σ(W_f·x + Σ_l U_f^{kl}·h_l + b_f)
        c   = i ⊙ u + Σ_k f_k ⊙ c_k,    h = o ⊙ tanh(c)

    Parameters: `[W_iou (3H×I), U_iou (3H×NH), b_iou (3H), W_f (H×I), U_f (NH×NH), b_f (H)]`
    — `U_iou`'s column block l is U^l; `U_f`'s row block k, column block l is U_f^{kl};
    `b_f` is shared by the N forget gates. State `(c, h)`; an absent child is zeros.
    DyNet's `examples/treelstm` model is this cell with N = 2, x = 0 at inner nodes and
    no children at the leaves.
    """

    input_dim: int
    hidden_dim: int
    arity: int = 2

    def param_specs(self):
        H, n_in, N = self.hidden_dim, self.input_dim, self.arity
        return (ParamSpec("W_iou", (3 * H, n_in)), ParamSpec("U_iou", (3 * H, N * H)),
                ParamSpec("b_iou", (3 * H,), 0.0), ParamSpec("W_f", (H, n_in)), ParamSpec("U_f", (N * H, N * H)),
                ParamSpec("b_f", (H,), 0.0))

    def combine_projected(self, params, px, child_c, child_h, h_mask=None):
        _, U_iou, b_iou, _, U_f, b_f = params
        H, N = self.hidden_dim, self.arity
        child_h = masked(child_h, None if h_mask is None else h_mask[..., None, :])
        flat = child_h.reshape(child_h.shape[:-2] + (N * H,))
        uf = linear(U_f, flat).reshape(flat.shape[:-1] + (N, H))
        f = jax.nn.sigmoid(px[..., None, 3 * H:] + uf + b_f)
        return _finish(px[..., :3 * H], linear(U_iou, flat) + b_iou, f, child_c)
