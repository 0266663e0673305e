"""pad_batch / length_buckets: padding against a hand-built NumPy array, buckets cover every
example once with few distinct padded lengths, clear errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dynrnn as dy


def test_pad_batch_time_major_against_hand_built():
    batch, lengths = dy.pad_batch([[1, 2, 3], [4], [5, 6]], batch_size=4, multiple=4, pad=-1)
    expected = np.array([[1, 2, 3, -1], [4, -1, -1, -1], [5, 6, -1, -1], [-1, -1, -1, -1]]).T
    np.testing.assert_array_equal(batch, expected)
    np.testing.assert_array_equal(lengths, [3, 1, 2, 0])
    assert lengths.dtype == np.int32


def test_pad_batch_features_and_batch_major():
    seqs = [np.ones((2, 3)), 2 * np.ones((5, 3))]
    batch, lengths = dy.pad_batch(seqs, multiple=8, time_major=False)
    assert batch.shape == (2, 8, 3)
    np.testing.assert_array_equal(batch[1, :5], 2.0)
    assert not batch[0, 2:].any() and not batch[1, 5:].any()
    np.testing.assert_array_equal(lengths, [2, 5])


def test_padded_batch_feeds_transduce_like_unpadded():
    pc = dy.ParameterCollection(seed=0)
    lstm = dy.LSTMBuilder(1, 3, 4, pc)
    rng = np.random.default_rng(0)
    seqs = [rng.normal(size=(n, 3)).astype(np.float32) for n in (5, 2, 7)]
    batch, lengths = dy.pad_batch(seqs)
    out = np.asarray(lstm.initial_state().transduce(batch, lengths=lengths))
    for j, s in enumerate(seqs):
        alone = np.asarray(lstm.initial_state().transduce(s))
        np.testing.assert_allclose(out[:len(s), j], alone, rtol=1e-5, atol=1e-6)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(1, 60), min_size=1, max_size=200), st.integers(1, 40), st.integers(0, 3))
def test_length_buckets_cover_every_example_once(lengths, batch_size, seed):
    buckets = dy.length_buckets(lengths, batch_size, rng=np.random.default_rng(seed))
    flat = np.concatenate(buckets)
    assert sorted(flat.tolist()) == list(range(len(lengths)))
    assert all(len(b) == batch_size for b in sorted(buckets, key=len)[1:])
    # sorted by length: batches do not overlap in length except at their edges
    spans = sorted((min(lengths[i] for i in b), max(lengths[i] for i in b)) for b in buckets)
    assert all(hi <= lo2 for (_, hi), (lo2, _) in zip(spans, spans[1:]))


def test_buckets_need_fewer_shapes_than_per_batch_padding():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 80, 2000)
    buckets = dy.length_buckets(lengths, 32, rng=rng)
    exact = {int(lengths[b].max()) for b in buckets}                      # padded to each batch's longest
    rounded = {dy.padded_length(int(lengths[b].max())) for b in buckets}  # rounded up to a multiple of 8
    assert len(rounded) <= 10 < 40 < len(exact)


def test_drop_last():
    assert [len(b) for b in dy.length_buckets([3] * 10, 4, drop_last=True)] == [4, 4]


def test_errors():
    with pytest.raises(ValueError, match="no sequences"):
        dy.pad_batch([])
    with pytest.raises(ValueError, match="do not fit in batch_size=1"):
        dy.pad_batch([[1], [2]], batch_size=1)
    with pytest.raises(ValueError, match=r"sequence 1 has shape \(2, 4\)"):
        dy.pad_batch([np.zeros((2, 3)), np.zeros((2, 4))])
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        dy.length_buckets([1, 2], 0)
    with pytest.raises(ValueError, match="multiple must be a positive integer"):
        dy.padded_length(5, 0)


def _padding(lengths, weights, buckets):
    """Total padded size when each length goes up to the smallest bucket that holds it."""
    b = np.sort(np.asarray(buckets))
    return sum(w * b[np.searchsorted(b, n)] for n, w in zip(lengths, weights))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 25), min_size=1, max_size=30), st.integers(1, 5), st.integers(0, 3))
def test_bucket_lengths_are_the_best_choice_of_that_many(lengths, n, seed):
    import itertools

    weights = np.random.default_rng(seed).integers(1, 5, len(lengths))
    got = dy.bucket_lengths(lengths, n, weights=weights)
    assert got == sorted(set(got)) and 1 <= len(got) <= n and got[-1] == max(lengths)
    assert all(isinstance(b, int) for b in got)
    # brute force: every choice of at most n buckets among the lengths that includes the longest
    others = sorted(set(lengths) - {max(lengths)})
    best = min(_padding(lengths, weights, list(c) + [max(lengths)])
               for k in range(min(n, len(others) + 1)) for c in itertools.combinations(others, k))
    assert _padding(lengths, weights, got) == best


def test_bucket_lengths_beat_rounding_at_the_same_number_of_shapes():
    lengths = np.random.default_rng(0).integers(2, 61, 500)
    rounded = sorted({dy.padded_length(int(n)) for n in lengths})
    chosen = dy.bucket_lengths(lengths, len(rounded))
    ones = np.ones_like(lengths)
    assert _padding(lengths, ones, chosen) < _padding(lengths, ones, rounded)
    assert dy.bucket_lengths([3, 5, 5, 9], 10) == [3, 5, 9]  # enough buckets: no padding at all


def test_pad_batch_to_given_bucket_lengths():
    batch, lengths = dy.pad_batch([[1, 2, 3], [4]], buckets=[2, 5, 9], pad=-1)
    assert batch.shape == (5, 2)
    np.testing.assert_array_equal(lengths, [3, 1])
    batch, _ = dy.pad_batch([[1, 2]], buckets=[2, 5, 9])
    assert batch.shape == (2, 1)
    with pytest.raises(ValueError, match=r"longest sequence \(length 10\) is longer than the largest bucket \(9\)"):
        dy.pad_batch([list(range(10))], buckets=[2, 5, 9])
    with pytest.raises(ValueError, match="buckets must be positive integers"):
        dy.pad_batch([[1]], buckets=[0, 4])
    with pytest.raises(ValueError, match="either multiple or buckets"):
        dy.pad_batch([[1]], buckets=[4], multiple=4)


def test_bucket_lengths_errors():
    with pytest.raises(ValueError, match="n_buckets must be a positive integer"):
        dy.bucket_lengths([1, 2], 0)
    with pytest.raises(ValueError, match=r"lengths must be positive integers; given \[3, 0\]"):
        dy.bucket_lengths([3, 0], 2)
    with pytest.raises(ValueError, match="no lengths"):
        dy.bucket_lengths([], 2)
    with pytest.raises(ValueError, match=r"weights must be one non-negative number per length; given shape \(1,\)"):
        dy.bucket_lengths([3, 4], 2, weights=[1])


def test_reuse_size_pads_to_a_compiled_size_within_the_factor():
    from dynrnn._batching import reuse_size
    sizes: set = set()
    assert reuse_size(sizes, 40) == 64 and sizes == {64}     # nothing compiled: the power of two
    assert reuse_size(sizes, 12) == 64                         # 16 -> 64 is within 4x: reused
    assert reuse_size(sizes, 3) == 4 and sizes == {4, 64}      # 4 -> 64 is 16x: its own size
    assert reuse_size(sizes, 9) == 64                          # 16 -> the smallest fit is 64 (4 < 16)
    assert reuse_size(sizes, 2) == 4                           # 2 -> 4 (within 4x), not 2
    assert reuse_size(sizes, 100) == 128 and sizes == {4, 64, 128}
    assert reuse_size(sizes, 40, factor=1) == 64
