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
    ("md", """DyNet's tutorial code runs as written, with these changes only:
`import dynet as dy` → `import dynrnn as dy`; `y.npvalue()` → `np.asarray(y)` (a JAX array has no
`npvalue`); `dy.ParameterCollection(seed=0)` for reproducible numbers. Every expression is a
`jax.Array`."""),
    ("code", """import time
import jax, jax.numpy as jnp, numpy as np
import dynrnn as dy

pc = dy.ParameterCollection(seed=0)
NUM_LAYERS = 2
INPUT_DIM = 50
HIDDEN_DIM = 10
builder = dy.LSTMBuilder(NUM_LAYERS, INPUT_DIM, HIDDEN_DIM, pc)
[[p.shape() for p in layer] for layer in builder.get_parameters()]"""),
    ("md", """Each layer holds DyNet's `[W_x, W_h, b]`, with the four gates stacked as **[i, f, o, g]**.

## States: `add_input`, `output()`, `h()`, `s()`
`initial_state()` is a state with defined zeros (DyNet returned `None` here). `add_input`
returns a *new* state; the old one is unchanged."""),
    ("code", """s0 = builder.initial_state()
x1 = dy.vecInput(INPUT_DIM)
s1 = s0.add_input(x1)
y1 = s1.output()
print(np.asarray(y1).shape, "| initial output all zeros:", bool(jnp.all(s0.output() == 0)))
s2 = s1.add_input(x1)
y2 = s2.output()
print("h():", [h.shape for h in s2.h()])      # one h per layer
print("s():", len(s2.s()), "vectors: c_1, c_2, h_1, h_2")
x1 = dy.inputVector(np.random.default_rng(0).normal(size=INPUT_DIM))   # a non-zero input for what follows
s1 = s0.add_input(x1)"""),
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
its history. Parameters live in their collection, not in the state: compile code that steps a
builder with `dy.jit(f, pc)`, which passes every parameter of `pc` to the compiled function as an
argument, so it sees each update. (Plain `jax.jit` would compile the parameters' current values
in as constants, stale after the next update; dynrnn refuses that with `dy.StaleParameterError`.)"""),
    ("code", """step = dy.jit(lambda s, x: s.add_input(x), pc)
print("jit:", bool(jnp.allclose(step(s1, xs[0]).output(), s2.output(), atol=1e-6)))
per_example = jax.vmap(lambda seq: s0.transduce(seq), in_axes=1, out_axes=1)(batch)
print("vmap ≡ batch:", bool(jnp.allclose(per_example, s0.transduce(batch), atol=1e-6)))
g = jax.grad(lambda x: jnp.sum(s0.add_input(x).add_input(x).output()))(x1)
print("d output / d x:", g.shape, "leaves in a state:", len(jax.tree_util.tree_leaves(s3)))"""),
    ("md", """## The tutorial's character language model
`examples/char_lm.py` ports the tutorial's `do_one_sentence` line for line and trains it
with `dy.SimpleSGDTrainer`; `notebooks/char_lm.ipynb` goes further (real text, minibatches).
SimpleRNN against LSTM:"""),
    ("code", """import sys, os
sys.path.insert(0, os.path.join(os.getcwd(), "..", "examples"))
import char_lm
for cls in (dy.SimpleRNNBuilder, dy.LSTMBuilder):
    print(cls.__name__)
    model, loss = char_lm.train_tutorial(cls, "a quick brown fox jumped over the lazy dog", 200, report_every=50)"""),
    ("md", "## Saving and loading (no pickle)"),
    ("code", """import tempfile
path = os.path.join(tempfile.mkdtemp(), "lstm.npz")
dy.save(path, [builder])
(restored,) = dy.load(path, dy.ParameterCollection())
print(restored, bool(jnp.allclose(restored.initial_state().transduce(seq), s0.transduce(seq))))"""),
]


CHAR_LM = [
    ("md", """# Character language models: DyNet's tutorial, then a real book

Part 1 is DyNet's RNN tutorial as DyNet wrote it — a new computation graph per sentence,
`loss.value()`, `loss.backward()`, `trainer.update()` — running in dynrnn's graph mode.
The rest trains the same kind of model the compiled way (`trainer.step`), on a real book. The
model code lives in `examples/char_lm.py`; this notebook runs it and looks at what it does."""),
    ("code", """import os, sys, time
import jax, jax.numpy as jnp, numpy as np
import matplotlib.pyplot as plt
import dynrnn as dy
sys.path.insert(0, os.path.join(os.getcwd(), "..", "examples"))
import char_lm
QUICK = os.environ.get("DYNRNN_NOTEBOOK_QUICK") == "1"   # the test suite runs a shorter version"""),
    ("md", """## Part 1: DyNet's RNN tutorial, as DyNet wrote it
The code below is the tutorial's, verbatim but for two lines: `import dynet as dy` became
`import dynrnn as dy` (above), and `dy.ParameterCollection(seed=0)` makes the numbers
reproducible (optional). `dy.renew_cg()` starts a graph; every expression is a node of it;
one `add_input` is one node that runs every layer's compiled step; `loss.value()` runs the
graph forward (nodes of the same kind, e.g. the softmaxes of all steps, as one call each, and
the recurrence as one scan), `loss.backward()` runs it back into the parameters' gradients,
and `trainer.update()` applies them. Nothing of this program is compiled: each operation's
kernel is compiled once per shape, so a new sentence costs no compilation."""),
    ("code", """import random
LAYERS, INPUT_DIM, HIDDEN_DIM = 1, 50, 50
characters = list("abcdefghijklmnopqrstuvwxyz ")
characters.append("<EOS>")

int2char = list(characters)
char2int = {c:i for i,c in enumerate(characters)}

VOCAB_SIZE = len(characters)

pc = dy.ParameterCollection(seed=0)

srnn = dy.SimpleRNNBuilder(LAYERS, INPUT_DIM, HIDDEN_DIM, pc)
lstm = dy.LSTMBuilder(LAYERS, INPUT_DIM, HIDDEN_DIM, pc)

params = {}
params["lookup"] = pc.add_lookup_parameters((VOCAB_SIZE, INPUT_DIM))
params["R"] = pc.add_parameters((VOCAB_SIZE, HIDDEN_DIM))
params["bias"] = pc.add_parameters((VOCAB_SIZE))

# return compute loss of RNN for one sentence
def do_one_sentence(rnn, sentence):
    # setup the sentence
    dy.renew_cg()
    s0 = rnn.initial_state()

    R = dy.parameter(params["R"])
    bias = dy.parameter(params["bias"])
    lookup = params["lookup"]
    sentence = ["<EOS>"] + list(sentence) + ["<EOS>"]
    sentence = [char2int[c] for c in sentence]
    s = s0
    loss = []
    for char,next_char in zip(sentence,sentence[1:]):
        s = s.add_input(lookup[char])
        probs = dy.softmax(R*s.output() + bias)
        loss.append( -dy.log(dy.pick(probs,next_char)) )
    loss = dy.esum(loss)
    return loss

# generate from model:
def generate(rnn):
    def sample(probs):
        rnd = random.random()
        for i,p in enumerate(probs):
            rnd -= p
            if rnd <= 0: break
        return i

    # setup the sentence
    dy.renew_cg()
    s0 = rnn.initial_state()

    R = dy.parameter(params["R"])
    bias = dy.parameter(params["bias"])
    lookup = params["lookup"]

    s = s0.add_input(lookup[char2int["<EOS>"]])
    out=[]
    while True:
        probs = dy.softmax(R*s.output() + bias)
        probs = probs.vec_value()
        next_char = sample(probs)
        out.append(int2char[next_char])
        if out[-1] == "<EOS>" or len(out) > 100: break
        s = s.add_input(lookup[next_char])
    return "".join(out[:-1]) # strip the <EOS>

# train, and generate every 5 samples
def train(rnn, sentence):
    trainer = dy.SimpleSGDTrainer(pc)
    for i in range(20 if QUICK else 200):
        loss = do_one_sentence(rnn, sentence)
        loss_value = loss.value()
        loss.backward()
        trainer.update()
        if i % 5 == 0:
            print("%.10f" % loss_value, end="\t")
            print(generate(rnn))"""),
    ("code", """random.seed(0)
sentence = "a quick brown fox jumped over the lazy dog"
t0 = time.perf_counter()
train(srnn, sentence)
print(f"{time.perf_counter() - t0:.1f} s")"""),
    ("code", """train(lstm, sentence)"""),
    ("md", "The model can learn other sentences too:"),
    ("code", """train(srnn, "these pretzels are making me thirsty")"""),
    ("md", """The same function also runs compiled: `trainer.step(do_one_sentence, rnn, sentence)`
traces it once per argument signature (inside a compiled step, `dy.renew_cg()` does nothing and
expressions are arrays) and then runs one call per update — the last factor of speed, for
programs whose shapes repeat. `dy.graph.end_graph()` leaves graph mode, so that the eager
code below works on arrays again."""),
    ("code", """dy.graph.end_graph()
trainer = dy.SimpleSGDTrainer(pc)
t0 = time.perf_counter()
for i in range(20 if QUICK else 200):
    loss_value = trainer.step(do_one_sentence, lstm, sentence)
print(f"compiled: {time.perf_counter() - t0:.1f} s, loss {float(loss_value):.4f}")"""),
    ("md", """## Gradients, trainers, compilation
`dy.value_and_grad(loss_fn, pc)` returns the loss and `{parameter name: gradient}`; a trainer
applies them. Both compile once per shape signature: a loop over sentences of a few lengths
compiles a few times, then never again."""),
    ("code", """model = char_lm.Tutorial(dy.LSTMBuilder, "abcdefgh ", seed=0)
trainer = dy.AdamTrainer(model.pc, alpha=0.01)
sentences = [jnp.array([model.char2int[c] for c in [char_lm.EOS] + list(s) + [char_lm.EOS]])
             for s in ("abc", "bad cafe", "fed", "ace", "bead", "dab", "face bag")]
times = []
for epoch in range(3):
    for ids in sentences:
        t = time.perf_counter(); trainer.step(char_lm.sentence_loss, model.rnn, model.params, ids)
        times.append(1e3 * (time.perf_counter() - t))
print("ms per step, first epoch (compiling per new length):", [round(x) for x in times[:7]])
print("ms per step, third epoch:", [round(x, 2) for x in times[-7:]])
loss, grads = dy.value_and_grad(char_lm.sentence_loss, model.pc)(model.rnn, model.params, sentences[0])
print(float(loss), {k: v.shape for k, v in list(grads.items())[:3]})"""),
    ("md", """## Carrying state across batches (truncated BPTT)
Torch's `rnn` called it `remember()`: the final state of one chunk seeds the next, with
gradients stopped at the boundary. With immutable states that is explicit: return the final
state from the loss (`has_aux=True`), `detach()` it, and pass it back in. Here 16 parallel
streams of the book are read in chunks of 50 characters; `forget()` is simply starting again
from `initial_state()`."""),
    ("code", """text = "\\n".join(char_lm.load_lines())   # the book, blank lines dropped
lm = char_lm.CharLM(text, layers=1, embed=32, hidden=128, seed=0)
ids = np.array([lm.char2int.get(c, 0) for c in text], np.int32)
B, K = 16, 50
streams = ids[: B * (len(ids) // B)].reshape(B, -1).T          # (time, 16)

def chunk_loss(chunk, state):
    hs, final = state.transduce(lm.E.batch(chunk[:-1]), return_state=True)
    logits = hs @ lm.R.T + lm.b.expr()
    return dy.sequence_cross_entropy(logits, chunk[1:], reduction="mean"), final.detach()

trainer = dy.AdamTrainer(lm.pc, alpha=0.01)
state = lm.rnn.initial_state([jnp.zeros((B, 128))] * 2)       # c and h for a batch of 16
n_chunks = 60 if QUICK else (streams.shape[0] - 1) // K
curve = []
for i in range(n_chunks):
    loss, state = trainer.step(chunk_loss, streams[i * K: i * K + K + 1], state, has_aux=True)
    curve.append(loss / np.log(2))
print(f"{n_chunks} chunks; bits/char over the last 10: {np.mean(curve[-10:]):.2f}")"""),
    ("md", """## Part 2: a 2-layer LSTM on *Alice's Adventures in Wonderland*
One line of the book per sequence, minibatches of 32 lines padded to a multiple of 16 steps,
`transduce(lengths=)` so that padding never touches a state, Adam, and the last 10% of the book
held out. Variational dropout (0.2, one mask per line) helps on a book this small.
The budget is 600 updates (not seconds), so a fresh run of this cell reproduces the figures below
on any machine."""),
    ("code", """lines = char_lm.load_lines()
train, held = char_lm.split(lines)
steps = 30 if QUICK else 600     # a budget in updates: the same model on any machine
model, hist = char_lm.train_lm(train, held, max_steps=steps, dropout=0.2, progress=False, sample_every=steps // 3)
print(f"{hist['steps']} updates, {hist['chars_per_second']:,.0f} characters/s, held-out {hist['held_out_bpc']:.3f} bits/char")"""),
    ("code", """losses = np.array(hist["loss"]) / np.log(2)
w = max(5, len(losses) // 50)
plt.figure(figsize=(7, 3.5))
plt.plot(hist["step"], losses, lw=0.5, alpha=0.4, label="training batches")
plt.plot(hist["step"][w - 1:], np.convolve(losses, np.ones(w) / w, mode="valid"), label=f"running mean ({w})")
plt.axhline(hist["held_out_bpc"], color="k", ls="--", label="held out")
plt.xlabel("update"); plt.ylabel("bits per character"); plt.legend(); plt.show()"""),
    ("code", """for seed, prefix in enumerate(["Alice ", "The Queen ", "`Why"]):
    print(repr(model.sample(160, seed=seed, temperature=0.6, prefix=prefix)))"""),
]


PARSER = [
    ("md", """# A stack-LSTM parser, compiled and batched

[Dyer et al. (2015)](https://aclanthology.org/P15-1033/) parse with three LSTMs: a **stack**
LSTM that pushes with `add_input` and pops back to an earlier state, a **buffer** LSTM read
right to left, and an **action-history** LSTM. In DyNet the stack is a chain of states, one
sentence at a time. This notebook shows that version running unchanged on dynrnn, then the
same model batched and compiled with `dy.RNNStack`, trained on UD English EWT.

Model code: `examples/stack_lstm_parser.py`; transitions: `examples/arc_standard.py`."""),
    ("code", """import os, sys, time
import jax, jax.numpy as jnp, numpy as np
import matplotlib.pyplot as plt
import dynrnn as dy
sys.path.insert(0, os.path.join("..", "examples"))
import conllu, arc_standard as ts, stack_lstm_parser as P

QUICK = bool(os.environ.get("DYNRNN_NOTEBOOK_QUICK"))
EWT = os.path.join("..", "..", "shared", "data", "ud-english-ewt")
train_sents = conllu.read_conllu(os.path.join(EWT, "en_ewt-ud-train.conllu"))
dev_sents = conllu.read_conllu(os.path.join(EWT, "en_ewt-ud-dev.conllu"))
print(len(train_sents), "training sentences,", len(dev_sents), "dev sentences")"""),
    ("md", """## A stack of states is a chain of `prev()` links
Push = `add_input`, pop = `prev()`. States are immutable, so popping never loses anything and
the element below the top is still there when a reduced subtree is pushed in its place."""),
    ("code", """pc = dy.ParameterCollection(seed=0)
lstm = dy.CoupledLSTMBuilder(1, 4, 8, pc)
x = jnp.asarray(np.random.default_rng(0).normal(size=(5, 4)), jnp.float32)
top = lstm.initial_state().add_input(x[0]).add_input(x[1]).add_input(x[2])
below = top.prev().prev()                        # pop two ...
reduced = below.add_input(x[3])                  # ... and push their composition
print("the reduced element sits on the old state:", reduced.prev() is below, "| top unchanged:", top.prev().prev() is below)"""),
    ("md", """## The same in a batch: `dy.RNNStack`
An `RNNStack` holds a fixed-capacity stack of states *per example*, as arrays, so it can live
in a `lax.scan` carry. `push(x, where=m)` and `pop(where=m)` act only on the examples where the
mask is true: different sentences take different transitions at the same step. Popping is O(1)
(it moves a pointer); reading the top is free."""),
    ("code", """stack = dy.RNNStack(lstm.initial_state(), capacity=4, batch_size=3)
stack = stack.push(x[:3])                                           # all three push
stack = stack.pop(where=np.array([True, False, False]))              # only the first pops
stack = stack.push(x[1:4], where=np.array([False, True, True]))      # the others push again
print("depths:", stack.depth)
# the same programs, one Python chain of states per example (DyNet style)
chains = [lstm.initial_state(), lstm.initial_state().add_input(x[1]).add_input(x[2]),
          lstm.initial_state().add_input(x[2]).add_input(x[3])]
print("equal to the prev() chains:", all(bool(jnp.allclose(stack.output()[b], chains[b].output(), atol=1e-6)) for b in range(3)))"""),
    ("md", """## The parser, both ways
`Parser.sentence_loss_eager` is the parser as a DyNet user writes it: a Python loop over
transitions, `add_input` and `prev()`. `Parser.batch_loss` is the same model for B sentences in
one compiled function: buffer and action LSTMs are `transduce` scans (their inputs are known
from the oracle), the stack is an `RNNStack` in a `lax.scan`, and the parser-state MLP and the
softmax over legal actions run once over all steps (compiled with `dy.jit`, which passes the
parameters as arguments). They compute the same loss:"""),
    ("code", """vocab = P.Vocab.build(train_sents)
parser = P.Parser(vocab, P.Config())          # the original code's sizes: token 60, hidden 64, coupled LSTMs
examples = [e for e in (P.oracle_example(vocab, s) for s in dev_sents[:8]) if e is not None]
(batch, capacity), = P.training_batches(vocab, examples, 8, np.random.default_rng(0), shuffle=False)
eager = sum(float(parser.sentence_loss_eager(e.words, e.tags, e.actions)) for e in examples) / 8
batched = dy.jit(parser.batch_loss, parser.pc)
print(f"eager {eager:.4f}   batched {float(batched(*batch)):.4f}")"""),
    ("code", """trainer = dy.AdamTrainer(parser.pc, 1e-3)
vg = dy.value_and_grad(lambda e: parser.sentence_loss_eager(e.words, e.tags, e.actions), parser.pc, jit=False)
t = time.perf_counter(); vg(examples[0]); eager_s = time.perf_counter() - t
trainer.step(parser.loss(capacity), *batch)                    # compile
t = time.perf_counter(); trainer.step(parser.loss(capacity), *batch); batched_s = (time.perf_counter() - t) / 8
print(f"one sentence op by op: {eager_s * 1e3:.0f} ms; in a compiled batch of 8: {batched_s * 1e3:.2f} ms per sentence")"""),
    ("md", """## Training on EWT
Batches of 32 sentences of similar length (lengths bucketed, so only a few shapes are
compiled), Adam, singletons replaced by UNK half of the time. The full run
(`python examples/stack_lstm_parser.py`: LSTM cells, token 128, hidden 200, dropout 0.3, 45
minutes on 2 cores) reaches test UAS 88.12 / LAS 86.11 (88.39 / 86.10 without punctuation);
here 3 epochs with the paper's sizes (a budget in epochs: a fresh run reproduces the figures)."""),
    ("code", """parser = P.Parser(vocab, P.Config(), seed=0)
short = lambda sents: [s for s in sents if len(s) <= 10]     # QUICK (the tests): few shapes to compile
subset, dev_subset = (short(train_sents)[:300], short(dev_sents)[:60]) if QUICK else (train_sents, dev_sents)
hist = P.train(parser, subset, dev_subset, minutes=None, max_epochs=1 if QUICK else 3, batch_size=32)
epochs = hist["epochs"]
plt.figure(figsize=(6, 3))
plt.plot([e["epoch"] for e in epochs], [e["dev"]["uas"] for e in epochs], "o-", label="dev UAS")
plt.plot([e["epoch"] for e in epochs], [e["dev"]["las"] for e in epochs], "o-", label="dev LAS")
plt.xlabel("epoch"); plt.legend(); plt.show()"""),
    ("md", """## Parsing new text
`Parser.parse` runs the greedy decoder for a whole batch inside one compiled `lax.scan`: the
stack, the action history and the chosen transitions never leave the device. Its output is
CoNLL-U."""),
    ("code", """text = conllu.parse_conllu(conllu.format_conllu(dev_sents[:2]))
heads, rels = parser.parse(text)
print(conllu.format_conllu(text[:1], heads[:1], rels[:1]))
s, h = text[0], heads[0]
plt.figure(figsize=(9, 2.4))
for i, w in enumerate(s.words, 1):
    plt.text(i, 0, w, ha="center", va="top", fontsize=9)
for d, hd in enumerate(h, 1):
    if hd:
        mid, r = (d + hd) / 2, abs(d - hd) / 2
        t = np.linspace(0, np.pi, 30)
        plt.plot(mid + r * np.cos(t), 0.15 + 0.35 * r * np.sin(t), color="C1" if hd == s.heads[d - 1] else "C3")
        plt.text(mid, 0.17 + 0.35 * r, rels[0][d - 1], ha="center", fontsize=7)
plt.xlim(0.3, len(s) + 0.7); plt.ylim(-0.4, 0.6 + 0.175 * len(s)); plt.axis("off")
plt.title("predicted arcs (orange: right head, red: wrong)"); plt.show()"""),
    ("code", """scores = P.evaluate(parser, dev_subset)
print({k: round(v, 2) for k, v in scores.items()})"""),
]


DECODING = [
    ("md", """# Incremental decoding with immutable states

A decoder is a step function `step(state, token) -> (state, log_probs)`. Because an
`RNNState` never changes, a beam is just a list of (score, state, tokens): extending a
hypothesis never disturbs its siblings, and rescoring, forced prefixes or two decoders in
lockstep are a few lines each. `dy.beam_search_batched` runs the same search for a batch
as one compiled `lax.while_loop`.

The model: `examples/translate.py` — a BiLSTM encoder and an LSTM decoder with MLP
(Bahdanau-style) attention, Luong's attentional vector and input feeding — on Multi30k
English→German. With `DYNRNN_TRANSLATE_MODEL=ende.npz` this notebook loads the model that
`python examples/translate.py --minutes 55 --dropout 0.3 --save ende.npz` trains (under an
hour on two CPU cores: test BLEU 34.50 greedy, 35.84 beam 5); without it — as for the outputs
stored here — it trains a smaller model for 3 epochs (a budget in epochs, so a fresh run of this
notebook reproduces the figures below)."""),
    ("code", """import os, sys, time
import jax, jax.numpy as jnp, numpy as np
import matplotlib.pyplot as plt
import dynrnn as dy
sys.path.insert(0, os.path.join("..", "examples"))
import translate as T, bleu

QUICK = bool(os.environ.get("DYNRNN_NOTEBOOK_QUICK"))
DATA = os.path.join("..", "..", "shared", "data", "multi30k")
read = lambda split, lang: T.read_lines(os.path.join(DATA, f"{split}.lc.norm.tok.{lang}"))
train_en, train_de = read("train", "en"), read("train", "de")
test_en, test_de = read("test_2016_flickr", "en"), read("test_2016_flickr", "de")
SAVED = os.environ.get("DYNRNN_TRANSLATE_MODEL", "")     # a model saved by examples/translate.py --save
if SAVED and os.path.exists(SAVED) and not QUICK:
    model = T.Translator.load(SAVED)
    print("loaded", SAVED)
else:   # a short run: 3 epochs (QUICK, in the tests: 1 epoch of 2,000 short sentences)
    pairs = [(e, d) for e, d in zip(train_en, train_de) if len(e) <= (10 if QUICK else 100)]
    pairs = pairs[:2000] if QUICK else pairs
    model = T.Translator(T.Vocab.build([e for e, _ in pairs]), T.Vocab.build([d for _, d in pairs]),
                         embed=128 if QUICK else 256, hidden=128 if QUICK else 256)
    T.train(model, [e for e, _ in pairs], [d for _, d in pairs], minutes=None, max_epochs=1 if QUICK else 3)
test = list(zip(test_en, test_de))[:100 if QUICK else 1000]"""),
    ("md", """## Greedy and beam search, compiled and batched
Corpus BLEU on test_2016_flickr (`examples/bleu.py`, the `multi-bleu.perl` definition)."""),
    ("code", """for beam in (1, 5):
    t = time.perf_counter()
    hyps = model.translate([e for e, _ in test], beam=beam)
    score = bleu.corpus_bleu(hyps, [[d] for _, d in test])["bleu"]
    print(f"beam {beam}: BLEU {score:.2f}, {len(test) / (time.perf_counter() - t):.0f} sentences/s")
for (e, d), h in list(zip(test, hyps))[:3]:
    print("src:", " ".join(e)); print("ref:", " ".join(d)); print("hyp:", " ".join(h)); print()"""),
    ("md", """## Attention
Where the decoder looked while producing each German word."""),
    ("code", """fig, axes = plt.subplots(1, 2, figsize=(13, 6))
for ax, (e, _) in zip(axes, [test[1], test[7]]):
    out = model.translate([e], beam=5)[0]
    a = model.attention(e, out)
    ax.imshow(a, cmap="Greys", vmin=0, vmax=1)
    ax.set_xticks(range(len(e)), e, rotation=60); ax.set_yticks(range(len(out) + 1), out + ["</s>"])
ax.figure.suptitle("attention: German words (rows) over English words (columns)"); plt.show()"""),
    ("md", """## A step function, eagerly
The eager searches call the step function with one hypothesis's state at a time. Here the
state is a pair (decoder `RNNState`, attentional vector) for one sentence."""),
    ("code", """def encoder_step(model, src_tokens):
    ids = np.array(model.src_vocab.encode(src_tokens), np.int32)[:, None]
    memory, keys, mask, (state, h_tilde) = model.encode(ids, np.array([len(ids)], np.int32))
    def step(carry, token):
        carry, out, _ = model.step(carry, jnp.asarray([token]), memory, keys, mask)
        return carry, jax.nn.log_softmax(model.logits(out))[0]
    return (state, h_tilde), step

carry0, step = encoder_step(model, e)
V = model.tgt_vocab
greedy = dy.greedy_decode(step, carry0, T.BOS, T.EOS, 30)
nbest = dy.beam_search(step, carry0, T.BOS, T.EOS, beam_size=5, max_len=30)
print("greedy:", " ".join(V.decode(greedy.tokens)), f"({greedy.score:.2f})")
for h in nbest:
    print(f"{h.normalized:7.3f} {h.score:7.2f}", " ".join(V.decode(h.tokens)))"""),
    ("md", """## Constrained decoding: a forced prefix
Feed the prefix through the step function, then search from the state it leaves — the
states before the prefix are untouched, so any number of prefixes can branch from one encoding."""),
    ("code", """prefix = ["ein"] if "ein" in V.index else V.decode(greedy.tokens)[:1]
carry, score = carry0, 0.0
token = T.BOS
for w in prefix:
    carry, logp = step(carry, token)
    token = V.index.get(w, T.UNK)
    score += float(logp[token])
rest = dy.beam_search(step, carry, token, T.EOS, beam_size=5, max_len=30)[0]
print("forced", prefix, "→", " ".join(prefix + V.decode(rest.tokens)), f"(log p = {score + rest.score:.2f})")"""),
    ("md", """## Rescoring with a second model's states
Score the n-best list with a second decoder (here: the same model read right to left is not
available, so a second model with another seed, trained briefly) — each hypothesis is forced
through the second model's step function, from its own initial state."""),
    ("code", """def force(step, carry, tokens):
    total, token = 0.0, T.BOS
    for t in tokens:
        carry, logp = step(carry, token)
        total += float(logp[t]); token = t
    return total

second = T.Translator(model.src_vocab, model.tgt_vocab, **model.dims, seed=1)
sub = [(a, b) for a, b in zip(train_en, train_de) if len(a) <= 10][:500 if QUICK else 2000]
T.train(second, [a for a, _ in sub], [b for _, b in sub], minutes=None, max_epochs=1, log=lambda m: None)
carry2, step2 = encoder_step(second, e)
for h in nbest:
    print(f"first {h.score:7.2f}  second {force(step2, carry2, h.tokens):7.2f}  ", " ".join(V.decode(h.tokens)))"""),
    ("md", """## Two decoders in lockstep: an ensemble
One step function whose state is the pair of states, whose scores are the average of the
two models' log-probabilities: beam search does not need to know."""),
    ("code", """def ensemble_step(carry, token):
    (c1, c2) = carry
    c1, l1 = step(c1, token)
    c2, l2 = step2(c2, token)
    return (c1, c2), jax.nn.log_softmax((l1 + l2) / 2)

best = dy.beam_search(ensemble_step, (carry0, carry2), T.BOS, T.EOS, beam_size=5, max_len=30)[0]
print("ensemble:", " ".join(V.decode(best.tokens)))"""),
]


NOTEBOOKS = {"rnn_tutorial.ipynb": RNN_TUTORIAL, "char_lm.ipynb": CHAR_LM, "stack_lstm_parser.ipynb": PARSER,
             "incremental_decoding.ipynb": DECODING}

if __name__ == "__main__":
    # python tools/make_notebooks.py [NAME.ipynb ...] [--execute]: (re)writes the named notebooks
    # (default: all; this drops their stored outputs), executing them with --execute.
    argv = __import__("sys").argv
    names = [a for a in argv[1:] if a.endswith(".ipynb")] or list(NOTEBOOKS)
    os.makedirs(OUT, exist_ok=True)
    for name in names:
        nbf.write(notebook(NOTEBOOKS[name]), os.path.join(OUT, name))
    if "--execute" in argv:
        from nbclient import NotebookClient
        for name in names:
            path = os.path.join(OUT, name)
            nb = nbf.read(path, as_version=4)
            NotebookClient(nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": OUT}}).execute()
            nbf.write(nb, path)
