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

# training
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

# losses
from ._losses import bits_per_char as bits_per_char
from ._losses import norm_stabilizer as norm_stabilizer
from ._losses import perplexity as perplexity
from ._losses import sequence_cross_entropy as sequence_cross_entropy

# files
from ._io import load as load
from ._io import save as save

# errors
from ._errors import NonFiniteError as NonFiniteError

__version__ = "0.1.0"

__all__ = [
    "cells",
    "ParameterCollection", "Model", "Parameters", "LookupParameters",
    "Initializer", "GlorotInitializer", "HeInitializer", "UniformInitializer", "NormalInitializer",
    "ConstInitializer", "IdentityInitializer", "SaxeInitializer", "NumpyInitializer",
    "RNNBuilder", "SimpleRNNBuilder", "VanillaLSTMBuilder", "LSTMBuilder", "CoupledLSTMBuilder",
    "GRUBuilder", "BiRNNBuilder", "reverse_sequences", "RNNState",
    "value_and_grad", "Trainer", "SimpleSGDTrainer", "CyclicalSGDTrainer", "MomentumSGDTrainer",
    "AdagradTrainer", "AdadeltaTrainer", "RMSPropTrainer", "AdamTrainer", "AmsgradTrainer", "OptaxTrainer",
    "sequence_cross_entropy", "norm_stabilizer", "perplexity", "bits_per_char",
    "save", "load",
    "NonFiniteError",
    "__version__",
]
