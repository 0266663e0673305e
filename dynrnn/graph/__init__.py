"""DyNet's computation graph on compiled kernels (graph mode).

Expressions are nodes of a per-example graph (`renew_cg()` starts a new one); each node
runs a kernel compiled once per (operation, shapes) signature — never the user's program —
and autobatching runs same-signature nodes of many examples as one call. The layers:

* `_graph` — `Expression`, the graph and its lifetime;
* `_ops` — DyNet's operations on expressions (pure per-example math + argument checks):
  the node constructor, inputs and parameters, arithmetic, elementwise functions,
  reductions, shapes;
* `_loss_ops` — its losses, dropout and noise, gradient modifiers (on `_ops`' node
  constructor); `_more_ops` — its less common operations; `_conv` — its convolutions and
  pooling; `_lstm_ops` — its LSTM node operations;
* `_rnn` — builders in the graph: `GraphState`, one coarse node per `add_input`;
* `_kernels` — the kernel cache (node, group and chain kernels and their VJPs);
* `_schedule` — forward (agenda autobatching, recurrent chains as scans) and backward;
* `_api` — the public DyNet names, which build graph nodes from expressions and run the
  array functions of `dynrnn._expressions` on arrays (inside `jax.jit`, training steps).

The array layer never imports this package: it calls `dynrnn._hooks.GRAPH`, set here.
"""

from .. import _hooks
from ._bridge import Bridge
from ._graph import Expression as Expression
from ._graph import GraphError as GraphError
from ._graph import end_graph as end_graph
from ._graph import open_by_default as open_by_default
from ._tensor import Tensor as Tensor

_hooks.GRAPH = Bridge
