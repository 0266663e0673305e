"""DyNet's LSTM node operations — the pieces its `VanillaLSTMBuilder` is made of, for
programs that write their own LSTM (Wx, Wh, b of 4·hidden rows: i, f, o, g):

    gates_t = vanilla_lstm_gates(x_t, h_tm1, Wx, Wh, b)   # [σ(i); σ(f + 1); σ(o); tanh(g)]
    c_t = vanilla_lstm_c(c_tm1, gates_t)                   # f ⊙ c_tm1 + i ⊙ g
    h_t = vanilla_lstm_h(c_t, gates_t)                     # o ⊙ tanh(c_t)

with a forget-gate bias of 1 added inside, as DyNet does; `_dropout` variants multiply x and
h by masks first, `_concat` variants take x as a list of expressions. Values and gradients
were compared with DyNet 2.1.2's own. (dynrnn's builders run a whole step as one node; these
are for code written against DyNet's operations.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from ._graph import Expression
from ._ops import Op, concatenate, expr, node


def _gates_fn(static: Any, x, h, wx, wh, b, *masks):
    if masks:
        x, h = x * masks[0], h * masks[1]
    v = wx @ x + wh @ h + b
    n = h.shape[0]
    return jnp.concatenate([jax.nn.sigmoid(v[:n]), jax.nn.sigmoid(v[n:2 * n] + 1.0), jax.nn.sigmoid(v[2 * n:3 * n]),
                            jnp.tanh(v[3 * n:])])


GATES = Op("vanilla_lstm_gates", _gates_fn)
CELL = Op("vanilla_lstm_c", lambda s, c, g: g[c.shape[0]:2 * c.shape[0]] * c + g[:c.shape[0]] * g[3 * c.shape[0]:])
HIDDEN = Op("vanilla_lstm_h", lambda s, c, g: g[2 * c.shape[0]:3 * c.shape[0]] * jnp.tanh(c))


def _no_weight_noise(where: str, weightnoise_std: float) -> None:
    if weightnoise_std != 0.0:
        raise ValueError(f"dy.{where}: weightnoise_std is not supported (given {weightnoise_std!r}); add "
                         f"dy.noise to the weights instead.")


def _gates(where: str, x: Any, h_tm1: Any, Wx: Any, Wh: Any, b: Any, masks: Sequence[Any] = ()) -> Expression:
    es = [expr(a, where) for a in (x, h_tm1, Wx, Wh, b, *masks)]
    x_e, h_e, wx, wh, be = es[:5]
    n = h_e.dims[0] if len(h_e.dims) == 1 else -1
    ok = (len(x_e.dims) == 1 and n > 0 and wx.dims == (4 * n, x_e.dims[0]) and wh.dims == (4 * n, n)
          and be.dims == (4 * n,) and all(m.dims == a.dims for m, a in zip(es[5:], (x_e, h_e))))
    if not ok:
        raise ValueError(f"dy.{where}: expected x (d,), h_tm1 (n,), Wx (4n, d), Wh (4n, n), b (4n,)"
                         f"{' and masks of the dims of x and h_tm1' if masks else ''}; given dims "
                         f"{[e.dims for e in es]}.")
    return node(GATES, es, where=where)


def vanilla_lstm_gates(x_t: Any, h_tm1: Any, Wx: Any, Wh: Any, b: Any, weightnoise_std: float = 0.0) -> Expression:
    """[σ(i); σ(f + 1); σ(o); tanh(g)] of Wx·x_t + Wh·h_tm1 + b, (4n,)."""
    _no_weight_noise("vanilla_lstm_gates", weightnoise_std)
    return _gates("vanilla_lstm_gates", x_t, h_tm1, Wx, Wh, b)


def vanilla_lstm_gates_concat(x_t: Sequence[Any], h_tm1: Any, Wx: Any, Wh: Any, b: Any,
                              weightnoise_std: float = 0.0) -> Expression:
    """`vanilla_lstm_gates` of the concatenation of the expressions x_t."""
    _no_weight_noise("vanilla_lstm_gates_concat", weightnoise_std)
    return _gates("vanilla_lstm_gates_concat", concatenate(list(x_t)), h_tm1, Wx, Wh, b)


def vanilla_lstm_gates_dropout(x_t: Any, h_tm1: Any, Wx: Any, Wh: Any, b: Any, dropout_mask_x: Any,
                               dropout_mask_h: Any, weightnoise_std: float = 0.0) -> Expression:
    """`vanilla_lstm_gates` of x_t ⊙ dropout_mask_x and h_tm1 ⊙ dropout_mask_h."""
    _no_weight_noise("vanilla_lstm_gates_dropout", weightnoise_std)
    return _gates("vanilla_lstm_gates_dropout", x_t, h_tm1, Wx, Wh, b, (dropout_mask_x, dropout_mask_h))


def vanilla_lstm_gates_dropout_concat(x_t: Sequence[Any], h_tm1: Any, Wx: Any, Wh: Any, b: Any, dropout_mask_x: Any,
                                      dropout_mask_h: Any, weightnoise_std: float = 0.0) -> Expression:
    """`vanilla_lstm_gates_dropout` of the concatenation of the expressions x_t."""
    _no_weight_noise("vanilla_lstm_gates_dropout_concat", weightnoise_std)
    return _gates("vanilla_lstm_gates_dropout_concat", concatenate(list(x_t)), h_tm1, Wx, Wh, b,
                  (dropout_mask_x, dropout_mask_h))


def _state_and_gates(where: str, s: Any, gates_t: Any) -> list[Expression]:
    es = [expr(s, where), expr(gates_t, where)]
    if len(es[0].dims) != 1 or es[1].dims != (4 * es[0].dims[0],):
        raise ValueError(f"dy.{where}: expected a state (n,) and gates (4n,); given dims {es[0].dims} and "
                         f"{es[1].dims}.")
    return es


def vanilla_lstm_c(c_tm1: Any, gates_t: Any) -> Expression:
    """c_t = f ⊙ c_tm1 + i ⊙ g."""
    return node(CELL, _state_and_gates("vanilla_lstm_c", c_tm1, gates_t))


def vanilla_lstm_h(c_t: Any, gates_t: Any) -> Expression:
    """h_t = o ⊙ tanh(c_t)."""
    return node(HIDDEN, _state_and_gates("vanilla_lstm_h", c_t, gates_t))
