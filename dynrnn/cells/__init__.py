"""Pure step math for each recurrent cell, and the protocol a user cell follows."""

from ._base import Cell as Cell
from ._base import InputProjection as InputProjection
from ._base import ParamSpec as ParamSpec
from ._base import ProjectedCell as ProjectedCell
from ._base import cell_dataclass as cell_dataclass
from ._base import layer_norm as layer_norm
from ._base import linear as linear
from ._coupled_lstm import CoupledLSTMCell as CoupledLSTMCell
from ._fast_lstm import FastLSTMCell as FastLSTMCell
from ._gru import GRUCell as GRUCell
from ._lstm import LSTMCell as LSTMCell
from ._simple import SimpleRNNCell as SimpleRNNCell
from ._sparse_lstm import SparseLSTMCell as SparseLSTMCell
from ._tree_lstm import ChildSumTreeLSTMCell as ChildSumTreeLSTMCell
from ._tree_lstm import NaryTreeLSTMCell as NaryTreeLSTMCell

__all__ = ["Cell", "ParamSpec", "cell_dataclass", "layer_norm", "linear",
           "SimpleRNNCell", "LSTMCell", "CoupledLSTMCell", "FastLSTMCell", "GRUCell",
           "ChildSumTreeLSTMCell", "NaryTreeLSTMCell"]
