"""Every bad input fails in Python with a message naming what was expected and given."""

import jax.numpy as jnp
import numpy as np
import pytest

import dynrnn as dy


@pytest.fixture
def lstm():
    return dy.LSTMBuilder(2, 50, 8, dy.ParameterCollection(seed=0))


def test_wrong_input_dimension(lstm):
    with pytest.raises(ValueError, match=r"VanillaLSTMBuilder.add_input: x has shape \(3, 64\).*input_dim=50; "
                                         r"expected \(50,\) or \(batch, 50\)"):
        lstm.initial_state().add_input(jnp.ones((3, 64)))
    with pytest.raises(ValueError, match=r"shape \(2, 3, 50\)"):
        lstm.initial_state().add_input(jnp.ones((2, 3, 50)))


def test_wrong_batch_size_against_batched_state(lstm):
    s = lstm.initial_state().add_input(jnp.ones((4, 50)))
    with pytest.raises(ValueError, match=r"x has shape \(3, 50\).*batch size 4; expected \(4, 50\)"):
        s.add_input(jnp.ones((3, 50)))
    with pytest.raises(ValueError, match=r"batch size 4"):
        s.transduce(jnp.ones((5, 3, 50)))


def test_integer_and_bool_inputs_are_refused(lstm):
    with pytest.raises(TypeError, match=r"floating dtype.*given int32.*LookupParameters"):
        lstm.initial_state().add_input(jnp.ones(50, jnp.int32))
    with pytest.raises(TypeError, match=r"given bool"):
        lstm.initial_state().transduce(np.ones((3, 50), bool))
    with pytest.raises(TypeError, match=r"given int64"):
        lstm.initial_state().add_input([1] * 50)


def test_float64_numpy_inputs_are_cast_to_the_parameters_dtype(lstm):
    out = lstm.initial_state().add_input(np.ones(50, np.float64)).output()
    assert out.dtype == jnp.float32


def test_wrong_number_of_vectors(lstm):
    with pytest.raises(ValueError, match=r"vecs has 2 vectors.*2 layer\(s\) and needs 4 \(c_1..c_2, h_1..h_2\)"):
        lstm.initial_state([jnp.zeros(8)] * 2)
    s = lstm.initial_state()
    with pytest.raises(ValueError, match=r"ss has 3 vectors.*needs 4"):
        s.set_s([jnp.zeros(8)] * 3)
    with pytest.raises(ValueError, match=r"hs has 1 vectors.*needs 2"):
        s.set_h([jnp.zeros(8)])
    with pytest.raises(ValueError, match=r"hs\[1\] has shape \(7,\).*size=8"):
        s.set_h([jnp.zeros(8), jnp.zeros(7)])
    with pytest.raises(TypeError, match="list of 2 vectors"):
        s.set_h(jnp.zeros((2, 8)))


def test_mixed_batches_in_vecs(lstm):
    with pytest.raises(ValueError, match=r"batch size 2"):
        lstm.initial_state([jnp.zeros((2, 8)), jnp.zeros((3, 8)), jnp.zeros((2, 8)), jnp.zeros((2, 8))])


def test_bad_sequences_and_lengths(lstm):
    s = lstm.initial_state()
    with pytest.raises(ValueError, match="xs is empty"):
        s.transduce([])
    with pytest.raises(ValueError, match=r"xs\[1\] has shape \(2, 50\) but xs\[0\] has shape \(50,\)"):
        s.transduce([jnp.ones(50), jnp.ones((2, 50))])
    with pytest.raises(ValueError, match=r"lengths has shape \(3,\); expected \(2,\)"):
        s.transduce(jnp.ones((4, 2, 50)), lengths=np.array([1, 2, 3]))
    with pytest.raises(ValueError, match=r"lengths must lie in \[0, 4\]"):
        s.transduce(jnp.ones((4, 2, 50)), lengths=np.array([1, 5]))
    with pytest.raises(TypeError, match="lengths must be integers"):
        s.transduce(jnp.ones((4, 2, 50)), lengths=np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="needs a batched sequence"):
        s.transduce(jnp.ones((4, 50)), lengths=np.array([2]))


def test_bad_builder_arguments():
    pc = dy.ParameterCollection(seed=0)
    with pytest.raises(ValueError, match="layers must be >= 1; given 0"):
        dy.LSTMBuilder(0, 3, 4, pc)
    with pytest.raises(TypeError, match="input_dim must be an int"):
        dy.GRUBuilder(1, 3.0, 4, pc)
    with pytest.raises(TypeError, match="pc must be a ParameterCollection"):
        dy.SimpleRNNBuilder(1, 3, 4, None)
    with pytest.raises(ValueError, match="hidden_dim must be even"):
        dy.BiRNNBuilder(1, 3, 5, pc, dy.LSTMBuilder)


def test_errors_are_raised_under_jit_too(lstm):
    f = dy.jit(lambda x: lstm.initial_state().add_input(x).output(), lstm.param_collection())
    with pytest.raises(ValueError, match="input_dim=50"):
        f(jnp.ones(49))
