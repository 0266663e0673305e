"""dynrnn: DyNet's RNN builder API on JAX — immutable states, compiled steps.

Example:
  >>> import jax.numpy as jnp, dynrnn as dy
  >>> pc = dy.ParameterCollection(seed=0)
  >>> lstm = dy.LSTMBuilder(2, 8, 16, pc)
  >>> s0 = lstm.initial_state()
  >>> s1 = s0.add_input(jnp.ones(8))
  >>> s1.output().shape, len(s1.s()), s1.prev() is s0
  ((16,), 4, True)
"""

from . import cells as cells

# DyNet's expression vocabulary: graph nodes on expressions, array functions on arrays
# (dynrnn/graph/_api.py; the array functions are in dynrnn/_expressions.py)
from . import graph as graph

# training
from ._autodiff import jit as jit
from ._autodiff import value_and_grad as value_and_grad

# minibatches of variable-length sequences
from ._batching import bucket_lengths as bucket_lengths
from ._batching import length_buckets as length_buckets
from ._batching import pad_batch as pad_batch
from ._batching import padded_length as padded_length
from ._bidirectional import BiRNNBuilder as BiRNNBuilder
from ._bidirectional import reverse_sequences as reverse_sequences

# builders and states
from ._builders import CompactVanillaLSTMBuilder as CompactVanillaLSTMBuilder
from ._builders import CoupledLSTMBuilder as CoupledLSTMBuilder
from ._builders import FastLSTMBuilder as FastLSTMBuilder
from ._builders import GRUBuilder as GRUBuilder
from ._builders import LSTMBuilder as LSTMBuilder
from ._builders import RNNBuilder as RNNBuilder
from ._builders import SimpleRNNBuilder as SimpleRNNBuilder
from ._builders import SparseLSTMBuilder as SparseLSTMBuilder
from ._builders import VanillaLSTMBuilder as VanillaLSTMBuilder

# incremental decoding
from ._decoding import Hypothesis as Hypothesis
from ._decoding import beam_search as beam_search
from ._decoding import beam_search_batched as beam_search_batched
from ._decoding import greedy_decode as greedy_decode
from ._devices import DeviceInfo as DeviceInfo
from ._devices import available_devices as available_devices
from ._devices import get_device_info as get_device_info

# many devices
from ._distributed import data_parallel_mesh as data_parallel_mesh
from ._distributed import shard_batch as shard_batch

# errors
from ._errors import NonFiniteError as NonFiniteError
from ._init import ConstInitializer as ConstInitializer
from ._init import FromFileInitializer as FromFileInitializer
from ._init import GlorotInitializer as GlorotInitializer
from ._init import HeInitializer as HeInitializer
from ._init import IdentityInitializer as IdentityInitializer
from ._init import Initializer as Initializer
from ._init import NormalInitializer as NormalInitializer
from ._init import NumpyInitializer as NumpyInitializer
from ._init import PyInitializer as PyInitializer
from ._init import SaxeInitializer as SaxeInitializer
from ._init import UniformInitializer as UniformInitializer

# files
from ._io import load as load
from ._io import load_generator as load_generator
from ._io import load_metadata as load_metadata
from ._io import save as save

# losses
from ._losses import bits_per_char as bits_per_char
from ._losses import norm_stabilizer as norm_stabilizer
from ._losses import perplexity as perplexity
from ._losses import sequence_cross_entropy as sequence_cross_entropy

# parameters and initializers
from ._params import LookupParameters as LookupParameters
from ._params import Model as Model
from ._params import ParameterCollection as ParameterCollection
from ._params import Parameters as Parameters
from ._params import StaleParameterError as StaleParameterError
from ._random import reset_random_seed as reset_random_seed
from ._random import set_random_seed as set_random_seed
from ._stack import RNNStack as RNNStack
from ._stacked_state import StackedRNNState as StackedRNNState
from ._state import RNNState as RNNState
from ._trainers import AdadeltaTrainer as AdadeltaTrainer
from ._trainers import AdagradTrainer as AdagradTrainer
from ._trainers import AdamTrainer as AdamTrainer
from ._trainers import AmsgradTrainer as AmsgradTrainer
from ._trainers import CyclicalSGDTrainer as CyclicalSGDTrainer
from ._trainers import MomentumSGDTrainer as MomentumSGDTrainer
from ._trainers import OptaxTrainer as OptaxTrainer
from ._trainers import RMSPropTrainer as RMSPropTrainer
from ._trainers import SimpleSGDTrainer as SimpleSGDTrainer
from ._trainers import Trainer as Trainer
from ._tree import TreeSchedule as TreeSchedule
from ._tree import level_scan as level_scan
from ._tree import pack_levels as pack_levels
from ._tree import tree_schedule as tree_schedule
from ._tree_lstm import BottomUpSchedule as BottomUpSchedule
from ._tree_lstm import ChildSumTreeLSTMBuilder as ChildSumTreeLSTMBuilder
from ._tree_lstm import NaryTreeLSTMBuilder as NaryTreeLSTMBuilder
from ._tree_lstm import TreeLSTMBuilder as TreeLSTMBuilder
from ._tree_lstm import bottom_up_schedule as bottom_up_schedule
from .graph import Expression as Expression
from .graph import GraphError as GraphError
from .graph import Tensor as Tensor
from .graph._api import abs as abs
from .graph._api import acos as acos
from .graph._api import acosh as acosh
from .graph._api import affine_transform as affine_transform
from .graph._api import argmax as argmax
from .graph._api import asin as asin
from .graph._api import asinh as asinh
from .graph._api import atan as atan
from .graph._api import atanh as atanh
from .graph._api import average as average
from .graph._api import binary_log_loss as binary_log_loss
from .graph._api import block_dropout as block_dropout
from .graph._api import bmax as bmax
from .graph._api import bmin as bmin
from .graph._api import cdiv as cdiv
from .graph._api import ceil as ceil
from .graph._api import cg_checkpoint as cg_checkpoint
from .graph._api import cg_revert as cg_revert
from .graph._api import cg_version as cg_version
from .graph._api import circ_conv as circ_conv
from .graph._api import circ_corr as circ_corr
from .graph._api import cmult as cmult
from .graph._api import colwise_add as colwise_add
from .graph._api import concatenate as concatenate
from .graph._api import concatenate_cols as concatenate_cols
from .graph._api import concatenate_to_batch as concatenate_to_batch
from .graph._api import config as config
from .graph._api import const_parameter as const_parameter
from .graph._api import constant as constant
from .graph._api import constrained_softmax as constrained_softmax
from .graph._api import contract3d_1d as contract3d_1d
from .graph._api import contract3d_1d_1d as contract3d_1d_1d
from .graph._api import contract3d_1d_1d_bias as contract3d_1d_1d_bias
from .graph._api import contract3d_1d_bias as contract3d_1d_bias
from .graph._api import conv2d as conv2d
from .graph._api import conv2d_bias as conv2d_bias
from .graph._api import cos as cos
from .graph._api import cosh as cosh
from .graph._api import cube as cube
from .graph._api import cumsum as cumsum
from .graph._api import dot_product as dot_product
from .graph._api import dropout as dropout
from .graph._api import dropout_batch as dropout_batch
from .graph._api import dropout_dim as dropout_dim
from .graph._api import elu as elu
from .graph._api import emax as emax
from .graph._api import erf as erf
from .graph._api import esum as esum
from .graph._api import exp as exp
from .graph._api import filter1d_narrow as filter1d_narrow
from .graph._api import flip_gradient as flip_gradient
from .graph._api import floor as floor
from .graph._api import fold_rows as fold_rows
from .graph._api import forward as forward
from .graph._api import hinge as hinge
from .graph._api import hinge_batch as hinge_batch
from .graph._api import hinge_dim as hinge_dim
from .graph._api import huber_distance as huber_distance
from .graph._api import inputMatrix as inputMatrix
from .graph._api import inputTensor as inputTensor
from .graph._api import inputVector as inputVector
from .graph._api import inverse as inverse
from .graph._api import kmax_pooling as kmax_pooling
from .graph._api import kmh_ngram as kmh_ngram
from .graph._api import l1_distance as l1_distance
from .graph._api import l2_norm as l2_norm
from .graph._api import layer_norm as layer_norm
from .graph._api import lgamma as lgamma
from .graph._api import log as log
from .graph._api import log_sigmoid as log_sigmoid
from .graph._api import log_softmax as log_softmax
from .graph._api import logdet as logdet
from .graph._api import logistic as logistic
from .graph._api import logsumexp as logsumexp
from .graph._api import logsumexp_dim as logsumexp_dim
from .graph._api import lookup as lookup
from .graph._api import lookup_batch as lookup_batch
from .graph._api import matInput as matInput
from .graph._api import max_dim as max_dim
from .graph._api import maxpooling2d as maxpooling2d
from .graph._api import mean_batches as mean_batches
from .graph._api import mean_dim as mean_dim
from .graph._api import mean_elems as mean_elems
from .graph._api import min_dim as min_dim
from .graph._api import moment_batches as moment_batches
from .graph._api import moment_dim as moment_dim
from .graph._api import moment_elems as moment_elems
from .graph._api import nobackprop as nobackprop
from .graph._api import noise as noise
from .graph._api import npvalues as npvalues
from .graph._api import one_hot as one_hot
from .graph._api import ones as ones
from .graph._api import pairwise_rank_loss as pairwise_rank_loss
from .graph._api import parameter as parameter
from .graph._api import pick as pick
from .graph._api import pick_batch as pick_batch
from .graph._api import pick_batch_elem as pick_batch_elem
from .graph._api import pick_batch_elems as pick_batch_elems
from .graph._api import pick_range as pick_range
from .graph._api import pickneglogsoftmax as pickneglogsoftmax
from .graph._api import pickneglogsoftmax_batch as pickneglogsoftmax_batch
from .graph._api import pickrange as pickrange
from .graph._api import poisson_loss as poisson_loss
from .graph._api import pow as pow
from .graph._api import random_bernoulli as random_bernoulli
from .graph._api import random_gumbel as random_gumbel
from .graph._api import random_normal as random_normal
from .graph._api import random_uniform as random_uniform
from .graph._api import rectify as rectify
from .graph._api import renew_cg as renew_cg
from .graph._api import reshape as reshape
from .graph._api import round as round
from .graph._api import scalarInput as scalarInput
from .graph._api import scale_gradient as scale_gradient
from .graph._api import select_cols as select_cols
from .graph._api import select_rows as select_rows
from .graph._api import selu as selu
from .graph._api import silu as silu
from .graph._api import sin as sin
from .graph._api import sinh as sinh
from .graph._api import softmax as softmax
from .graph._api import softsign as softsign
from .graph._api import sparse_inputTensor as sparse_inputTensor
from .graph._api import sparsemax as sparsemax
from .graph._api import sqrt as sqrt
from .graph._api import square as square
from .graph._api import squared_distance as squared_distance
from .graph._api import squared_norm as squared_norm
from .graph._api import std_batches as std_batches
from .graph._api import std_dim as std_dim
from .graph._api import std_elems as std_elems
from .graph._api import strided_select as strided_select
from .graph._api import sum_batches as sum_batches
from .graph._api import sum_dim as sum_dim
from .graph._api import sum_elems as sum_elems
from .graph._api import tan as tan
from .graph._api import tanh as tanh
from .graph._api import to_device as to_device
from .graph._api import trace_of_product as trace_of_product
from .graph._api import transpose as transpose
from .graph._api import values as values
from .graph._api import vanilla_lstm_c as vanilla_lstm_c
from .graph._api import vanilla_lstm_gates as vanilla_lstm_gates
from .graph._api import vanilla_lstm_gates_concat as vanilla_lstm_gates_concat
from .graph._api import vanilla_lstm_gates_dropout as vanilla_lstm_gates_dropout
from .graph._api import vanilla_lstm_gates_dropout_concat as vanilla_lstm_gates_dropout_concat
from .graph._api import vanilla_lstm_h as vanilla_lstm_h
from .graph._api import vecInput as vecInput
from .graph._api import weight_norm as weight_norm
from .graph._api import zeroes as zeroes
from .graph._api import zeros as zeros
from .graph._setup import ComputationGraph as ComputationGraph
from .graph._setup import DynetParams as DynetParams
from .graph._setup import cg as cg
from .graph._setup import dump_cg as dump_cg
from .graph._setup import dynet_config as dynet_config
from .graph._setup import init as init
from .graph._setup import init_from_params as init_from_params
from .graph._setup import print_graphviz as print_graphviz
from .graph._setup import print_text_graphviz as print_text_graphviz
from .graph._softmax import ClassFactoredSoftmaxBuilder as ClassFactoredSoftmaxBuilder
from .graph._softmax import SoftmaxBuilder as SoftmaxBuilder
from .graph._softmax import StandardSoftmaxBuilder as StandardSoftmaxBuilder

__version__ = "0.1.0"

__all__ = [
    "cells",
    "ParameterCollection", "Model", "Parameters", "LookupParameters",
    "Initializer", "GlorotInitializer", "HeInitializer", "UniformInitializer", "NormalInitializer",
    "ConstInitializer", "IdentityInitializer", "SaxeInitializer", "NumpyInitializer",
    "RNNStack", "greedy_decode", "beam_search", "beam_search_batched", "Hypothesis", "RNNBuilder", "SimpleRNNBuilder",
    "VanillaLSTMBuilder", "CompactVanillaLSTMBuilder", "LSTMBuilder", "CoupledLSTMBuilder", "FastLSTMBuilder",
    "SparseLSTMBuilder",
    "GRUBuilder", "BiRNNBuilder", "reverse_sequences", "RNNState", "TreeSchedule", "tree_schedule", "level_scan",
    "pack_levels", "TreeLSTMBuilder", "ChildSumTreeLSTMBuilder", "NaryTreeLSTMBuilder",
    "BottomUpSchedule", "bottom_up_schedule",
    "jit", "value_and_grad", "Trainer", "SimpleSGDTrainer", "CyclicalSGDTrainer", "MomentumSGDTrainer",
    "AdagradTrainer", "AdadeltaTrainer", "RMSPropTrainer", "AdamTrainer", "AmsgradTrainer", "OptaxTrainer",
    "sequence_cross_entropy", "norm_stabilizer", "perplexity", "bits_per_char",
    "graph", "Expression", "GraphError", "StandardSoftmaxBuilder", "ClassFactoredSoftmaxBuilder", "matInput",
    "sparse_inputTensor", "constant", "random_uniform", "random_bernoulli", "cube", "erf", "softsign", "sin", "cos",
    "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "lgamma", "log_sigmoid", "silu", "round",
    "ceil", "floor", "squared_norm", "l2_norm", "colwise_add", "layer_norm", "pick_batch_elem", "pick_batch_elems",
    "pickrange", "select_cols", "concatenate_to_batch", "sum_dim", "mean_dim", "min_dim", "mean_batches", "logsumexp",
    "huber_distance", "nobackprop", "flip_gradient", "sparsemax", "pow", "config", "dynet_config", "forward", "values",
    "npvalues", "cg_version", "renew_cg", "inputTensor", "inputVector", "vecInput", "scalarInput", "lookup",
    "lookup_batch", "parameter", "const_parameter", "zeros", "ones", "random_normal", "affine_transform", "concatenate",
    "concatenate_cols", "reshape", "transpose", "cmult", "cdiv", "dot_product", "sum_elems", "mean_elems", "esum",
    "average", "sum_batches", "pick", "pick_batch", "select_rows", "max_dim", "emax", "tanh", "logistic", "rectify",
    "elu", "selu", "softmax", "log_softmax", "exp", "log", "square", "sqrt", "abs", "pickneglogsoftmax",
    "pickneglogsoftmax_batch", "binary_log_loss", "squared_distance", "l1_distance", "hinge", "dropout",
    "block_dropout", "noise", "set_random_seed", "reset_random_seed", "available_devices", "get_device_info",
    "DeviceInfo", "to_device", "DynetParams", "init", "init_from_params", "cg", "ComputationGraph",
    "print_text_graphviz",
    "argmax", "bmax", "bmin", "circ_conv", "circ_corr", "constrained_softmax", "cumsum", "dropout_batch",
    "dropout_dim", "fold_rows",
    "hinge_dim", "inputMatrix", "inverse", "kmax_pooling", "logdet", "logsumexp_dim", "moment_batches",
    "moment_dim", "moment_elems", "pairwise_rank_loss", "pick_range", "poisson_loss", "random_gumbel",
    "scale_gradient", "std_batches", "std_dim", "std_elems", "strided_select", "trace_of_product", "weight_norm",
    "zeroes", "conv2d", "conv2d_bias", "maxpooling2d", "filter1d_narrow",
    "kmh_ngram", "contract3d_1d", "contract3d_1d_bias", "contract3d_1d_1d", "contract3d_1d_1d_bias", "hinge_batch",
    "one_hot", "vanilla_lstm_gates", "vanilla_lstm_gates_concat", "vanilla_lstm_gates_dropout",
    "vanilla_lstm_gates_dropout_concat", "vanilla_lstm_c", "vanilla_lstm_h", "cg_checkpoint", "cg_revert",
    "save", "load", "load_generator", "load_metadata",
    "Tensor", "StackedRNNState", "SoftmaxBuilder", "PyInitializer", "FromFileInitializer", "dump_cg", "print_graphviz",
    "NonFiniteError", "StaleParameterError",
    "__version__",
]


def __getattr__(name: str) -> object:
    if name == "HAVE_CUDA":  # DyNet's flag; asked only when read (it starts JAX's backend)
        import jax
        return any(d.platform == "gpu" for d in jax.devices())
    raise AttributeError(f"module 'dynrnn' has no attribute {name!r}")
