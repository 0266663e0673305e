"""Plain-NumPy oracles for every cell, written from the equations (column vectors, one
example at a time, float64) — independent of dynrnn's code."""

from __future__ import annotations

import numpy as np


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def ln(a, g, b):
    """DyNet layer_norm: g * (a - mean) / (std + 1e-8) + b."""
    mu = a.mean()
    return g * (a - mu) / (np.sqrt(((a - mu) ** 2).mean()) + 1e-8) + b


def simple_rnn(p, state, x):
    """h = tanh(W_hx x + W_hh h + b)."""
    W_hx, W_hh, b = p
    (h,) = state
    return (np.tanh(W_hx @ x + W_hh @ h + b),)


def vanilla_lstm(p, state, x, ln_lstm=False, forget_bias=1.0):
    """Gates [i, f, o, g]; c = σ(f + fb)c + σ(i)tanh(g); h = σ(o)tanh(c) (LN variants)."""
    W_x, W_h, b = p[:3]
    c, h = state
    H = h.shape[0]
    ax, ah = W_x @ x, W_h @ h
    if ln_lstm:  # (DyNet: no recurrent term at a sequence's first step, from a state of zeros)
        g_x, b_x, g_h, b_h, g_c, b_c = p[3:]
        ax, ah = ln(ax, g_x, b_x), (ln(ah, g_h, b_h) if h.any() or c.any() else 0.0 * ah)
    a = ax + ah + b
    i, f, o, g = a[:H], a[H:2 * H], a[2 * H:3 * H], a[3 * H:]
    c_new = sigmoid(f + forget_bias) * c + sigmoid(i) * np.tanh(g)
    h_new = sigmoid(o) * np.tanh(ln(c_new, g_c, b_c) if ln_lstm else c_new)
    return c_new, h_new


def sparse_lstm(p, state, x, ln_lstm=False, forget_bias=1.0):
    """The vanilla LSTM with weights W_x ⊙ M_x, W_h ⊙ M_h (p = [W_x, W_h, b, M_x, M_h, ln...])."""
    return vanilla_lstm([p[0] * p[3], p[1] * p[4], p[2]] + list(p[5:]), state, x, ln_lstm, forget_bias)


def coupled_lstm(p, state, x):
    """i with peephole on c_{t-1}; f = 1 - i; o with peephole on c_t."""
    x2i, h2i, c2i, bi, x2o, h2o, c2o, bo, x2c, h2c, bc = p
    c, h = state
    i = sigmoid(x2i @ x + h2i @ h + c2i @ c + bi)
    c_new = (1 - i) * c + i * np.tanh(x2c @ x + h2c @ h + bc)
    o = sigmoid(x2o @ x + h2o @ h + c2o @ c_new + bo)
    return c_new, o * np.tanh(c_new)


def fast_lstm(p, state, x):
    """DyNet 2.1.2's FastLSTM: coupled gates, the c2i/c2o peepholes created but unused."""
    x2i, h2i, _, bi, x2o, h2o, _, bo, x2c, h2c, bc = p
    c, h = state
    i = sigmoid(x2i @ x + h2i @ h + bi)
    c_new = (1 - i) * c + i * np.tanh(x2c @ x + h2c @ h + bc)
    return c_new, sigmoid(x2o @ x + h2o @ h + bo) * np.tanh(c_new)


def gru(p, state, x):
    """Cho form: h = (1 - z) h + z tanh(W_hx x + W_hh (r ⊙ h) + b_h)."""
    W_zx, W_zh, b_z, W_rx, W_rh, b_r, W_hx, W_hh, b_h = p
    (h,) = state
    z = sigmoid(W_zx @ x + W_zh @ h + b_z)
    r = sigmoid(W_rx @ x + W_rh @ h + b_r)
    return ((1 - z) * h + z * np.tanh(W_hx @ x + W_hh @ (r * h) + b_h),)


def run_stack(cell, layer_params, xs, state0=None, **kw):
    """Runs a multi-layer stack on one sequence xs (T, I); returns (outputs (T, H), per-step
    states as lists of per-layer tuples). state0: per-layer tuples (zeros if None)."""
    L = len(layer_params)
    n_comp = 2 if cell in (vanilla_lstm, sparse_lstm, coupled_lstm, fast_lstm) else 1
    H = layer_params[0][1].shape[1] if cell is not coupled_lstm else layer_params[0][1].shape[0]
    if state0 is None:
        state0 = [tuple(np.zeros(H) for _ in range(n_comp)) for _ in range(L)]
    states, outs, cur = [], [], [tuple(np.asarray(a, np.float64) for a in s) for s in state0]
    for x in xs:
        inp = np.asarray(x, np.float64)
        new = []
        for li in range(L):
            st = cell([np.asarray(a, np.float64) for a in layer_params[li]], cur[li], inp, **kw)
            new.append(st)
            inp = st[-1]
        cur = new
        states.append(new)
        outs.append(inp)
    return np.array(outs), states
