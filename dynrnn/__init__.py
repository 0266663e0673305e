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

# parameters and initializers
from ._params import LookupParameters as LookupParameters
from ._params import Model as Model
from ._params import ParameterCollection as ParameterCollection
from ._params import Parameters as Parameters
from ._init import ConstInitializer as ConstInitializer
from ._init import GlorotInitializer as GlorotInitializer
from ._init import HeInitializer as HeInitializer
from ._init import IdentityInitializer as IdentityInitializer
from ._init import Initializer as Initializer
from ._init import NormalInitializer as NormalInitializer
from ._init import NumpyInitializer as NumpyInitializer
from ._init import SaxeInitializer as SaxeInitializer
from ._init import UniformInitializer as UniformInitializer

# builders and states
from ._builders import CoupledLSTMBuilder as CoupledLSTMBuilder
from ._builders import GRUBuilder as GRUBuilder
from ._builders import LSTMBuilder as LSTMBuilder
from ._builders import RNNBuilder as RNNBuilder
from ._builders import SimpleRNNBuilder as SimpleRNNBuilder
from ._builders import VanillaLSTMBuilder as VanillaLSTMBuilder
from ._bidirectional import BiRNNBuilder as BiRNNBuilder
from ._bidirectional import reverse_sequences as reverse_sequences
from ._state import RNNState as RNNState
from ._stack import RNNStack as RNNStack

# incremental decoding
from ._decoding import Hypothesis as Hypothesis
from ._decoding import beam_search as beam_search
from ._decoding import beam_search_batched as beam_search_batched
from ._decoding import greedy_decode as greedy_decode

# training
from ._autodiff import jit as jit
from ._autodiff import value_and_grad as value_and_grad
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

# minibatches of variable-length sequences
from ._batching import bucket_lengths as bucket_lengths
from ._batching import length_buckets as length_buckets
from ._batching import pad_batch as pad_batch
from ._batching import padded_length as padded_length

# many devices
from ._distributed import data_parallel_mesh as data_parallel_mesh
from ._distributed import shard_batch as shard_batch

# losses
from ._losses import bits_per_char as bits_per_char
from ._losses import norm_stabilizer as norm_stabilizer
from ._losses import perplexity as perplexity
from ._losses import sequence_cross_entropy as sequence_cross_entropy

# DyNet's expression vocabulary (see dynrnn/_expressions.py for the conventions)
from ._expressions import renew_cg as renew_cg
from ._expressions import inputTensor as inputTensor
from ._expressions import inputVector as inputVector
from ._expressions import vecInput as vecInput
from ._expressions import scalarInput as scalarInput
from ._expressions import lookup as lookup
from ._expressions import lookup_batch as lookup_batch
from ._expressions import parameter as parameter
from ._expressions import const_parameter as const_parameter
from ._expressions import zeros as zeros
from ._expressions import ones as ones
from ._expressions import random_normal as random_normal
from ._expressions import affine_transform as affine_transform
from ._expressions import concatenate as concatenate
from ._expressions import concatenate_cols as concatenate_cols
from ._expressions import reshape as reshape
from ._expressions import transpose as transpose
from ._expressions import cmult as cmult
from ._expressions import cdiv as cdiv
from ._expressions import dot_product as dot_product
from ._expressions import sum_elems as sum_elems
from ._expressions import mean_elems as mean_elems
from ._expressions import esum as esum
from ._expressions import average as average
from ._expressions import sum_batches as sum_batches
from ._expressions import pick as pick
from ._expressions import pick_batch as pick_batch
from ._expressions import select_rows as select_rows
from ._expressions import max_dim as max_dim
from ._expressions import emax as emax
from ._expressions import tanh as tanh
from ._expressions import logistic as logistic
from ._expressions import rectify as rectify
from ._expressions import elu as elu
from ._expressions import selu as selu
from ._expressions import softmax as softmax
from ._expressions import log_softmax as log_softmax
from ._expressions import exp as exp
from ._expressions import log as log
from ._expressions import square as square
from ._expressions import sqrt as sqrt
from ._expressions import abs as abs
from ._expr_losses import pickneglogsoftmax as pickneglogsoftmax
from ._expr_losses import pickneglogsoftmax_batch as pickneglogsoftmax_batch
from ._expr_losses import binary_log_loss as binary_log_loss
from ._expr_losses import squared_distance as squared_distance
from ._expr_losses import l1_distance as l1_distance
from ._expr_losses import hinge as hinge
from ._expr_losses import dropout as dropout
from ._expr_losses import block_dropout as block_dropout
from ._expr_losses import noise as noise
from ._params import set_random_seed as set_random_seed

# files
from ._io import load as load
from ._io import load_metadata as load_metadata
from ._io import save as save

# errors
from ._errors import NonFiniteError as NonFiniteError
from ._params import StaleParameterError as StaleParameterError

__version__ = "0.1.0"

__all__ = [
    "cells",
    "ParameterCollection", "Model", "Parameters", "LookupParameters",
    "Initializer", "GlorotInitializer", "HeInitializer", "UniformInitializer", "NormalInitializer",
    "ConstInitializer", "IdentityInitializer", "SaxeInitializer", "NumpyInitializer",
    "RNNStack", "greedy_decode", "beam_search", "beam_search_batched", "Hypothesis", "RNNBuilder", "SimpleRNNBuilder", "VanillaLSTMBuilder", "LSTMBuilder", "CoupledLSTMBuilder",
    "GRUBuilder", "BiRNNBuilder", "reverse_sequences", "RNNState",
    "jit", "value_and_grad", "Trainer", "SimpleSGDTrainer", "CyclicalSGDTrainer", "MomentumSGDTrainer",
    "AdagradTrainer", "AdadeltaTrainer", "RMSPropTrainer", "AdamTrainer", "AmsgradTrainer", "OptaxTrainer",
    "sequence_cross_entropy", "norm_stabilizer", "perplexity", "bits_per_char",
    "renew_cg", "inputTensor", "inputVector", "vecInput", "scalarInput", "lookup", "lookup_batch", "parameter", "const_parameter", "zeros", "ones", "random_normal", "affine_transform", "concatenate", "concatenate_cols", "reshape", "transpose", "cmult", "cdiv", "dot_product", "sum_elems", "mean_elems", "esum", "average", "sum_batches", "pick", "pick_batch", "select_rows", "max_dim", "emax", "tanh", "logistic", "rectify", "elu", "selu", "softmax", "log_softmax", "exp", "log", "square", "sqrt", "abs", "pickneglogsoftmax", "pickneglogsoftmax_batch", "binary_log_loss", "squared_distance", "l1_distance", "hinge", "dropout", "block_dropout", "noise", "set_random_seed",
    "save", "load", "load_metadata",
    "NonFiniteError", "StaleParameterError",
    "__version__",
]
