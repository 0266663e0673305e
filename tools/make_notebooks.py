"""Writes notebooks/*.ipynb from the cell sources below (so that diffs stay readable).

Run: .venv/bin/python tools/make_notebooks.py  (then the tests execute them)
"""

import os

import nbformat as nbf

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "notebooks")


def notebook(cells):
    nb = nbf.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for kind, src in cells:
        nb.cells.append(nbf.v4.new_markdown_cell(src) if kind == "md" else nbf.v4.new_code_cell(src))
    return nb


RNN_TUTORIAL = [
    ("md", """# DyNet's RNN tutorial, with dynrnn

This walks through [DyNet's RNN tutorial](https://dynet.readthedocs.io/en/latest/tutorials_notebooks/RNNs.html)
with dynrnn: the same builders and states, but every state is an immutable JAX value and
every step is compiled by `jax.jit`."""),
    ("code", """import time
import jax, jax.numpy as jnp, numpy as np
import dynrnn as dy

pc = dy.ParameterCollection(seed=0)
NUM_LAYERS, INPUT_DIM, HIDDEN_DIM = 2, 10, 20
builder = dy.LSTMBuilder(NUM_LAYERS, INPUT_DIM, HIDDEN_DIM, pc)
[[p.shape() for p in layer] for layer in builder.get_parameters()]"""),
    ("md", """Each layer holds DyNet's `[W_x, W_h, b]`, with the four gates stacked as **[i, f, o, g]**.

## States: `add_input`, `output()`, `h()`, `s()`
`initial_state()` is a state with defined zeros (DyNet returned `None` here). `add_input`
returns a *new* state; the old one is unchanged."""),
    ("code", """s0 = builder.initial_state()
x1 = jnp.asarray(np.random.default_rng(0).normal(size=INPUT_DIM), jnp.float32)
s1 = s0.add_input(x1)
y1 = s1.output()
print("output", y1.shape, "| initial output all zeros:", bool(jnp.all(s0.output() == 0)))
print("h():", [h.shape for h in s1.h()])             # one h per layer
print("s():", len(s1.s()), "vectors: c_1, c_2, h_1, h_2")
assert jnp.allclose(s1.s()[-1], y1)"""),
    ("md", """## States are a stack: `prev()`
A stack-LSTM parser pushes with `add_input` and pops with `prev()`. Branching from an old
state is free, and never disturbs the other branch."""),
    ("code", """xs = [jnp.asarray(v, jnp.float32) for v in np.random.default_rng(1).normal(size=(4, INPUT_DIM))]
s2 = s1.add_input(xs[0]); s3 = s2.add_input(xs[1])
popped = s3.prev().prev()
print("pop twice gives s1 back:", popped is s1)
branch = s1.add_input(xs[2])            # a sibling of s2
print("s2 unchanged by the sibling:", bool(jnp.allclose(s2.output(), s1.add_input(xs[0]).output())))"""),
    ("md", """## `add_inputs` vs `transduce`
`add_inputs(xs)` returns every intermediate state; `transduce(xs)` returns only the outputs,
as one compiled `lax.scan` — the fast way when the inputs are known in advance."""),
    ("code", """states = s0.add_inputs(xs)
outs = s0.transduce(xs)
print(len(states), "states;", len(outs), "outputs; equal:",
      all(bool(jnp.allclose(s.output(), o, atol=1e-6)) for s, o in zip(states, outs)))

seq = jnp.asarray(np.random.default_rng(2).normal(size=(100, INPUT_DIM)), jnp.float32)
def loop(s, xs):
    for x in xs:
        s = s.add_input(x)
    return s.output()
loop(s0, list(seq)).block_until_ready(); s0.transduce(seq).block_until_ready()   # compile once
t = time.perf_counter(); loop(s0, list(seq)).block_until_ready(); t_loop = time.perf_counter() - t
t = time.perf_counter(); s0.transduce(seq).block_until_ready(); t_scan = time.perf_counter() - t
print(f"100 steps: add_input loop {1e3 * t_loop:.2f} ms, transduce {1e3 * t_scan:.2f} ms")"""),
    ("md", """## Minibatches and lengths
Inputs may carry a batch axis: `(batch, input_dim)` per step, or `(time, batch, input_dim)` for
`transduce`. With `lengths=`, each sequence's state stops at its own end."""),
    ("code", """batch = jnp.asarray(np.random.default_rng(3).normal(size=(6, 3, INPUT_DIM)), jnp.float32)
outs, final = s0.transduce(batch, lengths=jnp.array([6, 4, 2]), return_state=True)
print(outs.shape, final.output().shape)
alone = s0.transduce(batch[:4, 1])
print("sequence 1 (length 4) ends where it would alone:", bool(jnp.allclose(final.output()[1], alone[-1], atol=1e-6)))"""),
    ("md", """## States are JAX values
A state crosses `jax.jit`, `jax.vmap` and `jax.grad` as a pytree of its layers' arrays — never
its history."""),
    ("code", """step = jax.jit(lambda s, x: s.add_input(x))
print("jit:", bool(jnp.allclose(step(s1, xs[0]).output(), s2.output(), atol=1e-6)))
per_example = jax.vmap(lambda seq: s0.transduce(seq), in_axes=1, out_axes=1)(batch)
print("vmap ≡ batch:", bool(jnp.allclose(per_example, s0.transduce(batch), atol=1e-6)))
g = jax.grad(lambda x: jnp.sum(s0.add_input(x).add_input(x).output()))(x1)
print("d output / d x:", g.shape, "leaves in a state:", len(jax.tree_util.tree_leaves(s3)))"""),
    ("md", """## The tutorial's character language model
`examples/demo.py` holds the tutorial's model — lookup table, RNN, softmax — and trains it
with a jitted SGD step over `pc.parameter_values()`. SimpleRNN against LSTM:"""),
    ("code", """import sys, os
sys.path.insert(0, os.path.join(os.getcwd(), "..", "examples"))
import demo
for cls in (dy.SimpleRNNBuilder, dy.LSTMBuilder):
    print(cls.__name__)
    loss, text, secs, model = demo.train(cls, "a quick brown fox jumped over the lazy dog", 200, report_every=50)
demo.train(dy.LSTMBuilder, "these pretzels are making me thirsty", 200, report_every=50);"""),
    ("md", "## Saving and loading (no pickle)"),
    ("code", """import tempfile
path = os.path.join(tempfile.mkdtemp(), "lstm.npz")
dy.save(path, [builder])
(restored,) = dy.load(path, dy.ParameterCollection())
print(restored, bool(jnp.allclose(restored.initial_state().transduce(seq), s0.transduce(seq))))"""),
]


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    nbf.write(notebook(RNN_TUTORIAL), os.path.join(OUT, "rnn_tutorial.ipynb"))
    if "--execute" in __import__("sys").argv:
        from nbclient import NotebookClient
        for name in ("rnn_tutorial.ipynb",):
            path = os.path.join(OUT, name)
            nb = nbf.read(path, as_version=4)
            NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": OUT}}).execute()
            nbf.write(nb, path)
