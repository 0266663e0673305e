"""The stack-LSTM parser example: CoNLL-U and UAS/LAS on hand-made trees, the arc-standard
oracle on the real dev set, eager (DyNet-style) ≡ batched (compiled) in loss, gradients
and parses, well-formed output trees, overfitting a tiny treebank, save/load and the CLI."""

import json
import os
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest

import dynrnn as dy

from .conftest import SHARED_DATA

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")
sys.path.insert(0, EXAMPLES)

import arc_standard as ts  # noqa: E402
import conllu  # noqa: E402
import stack_lstm_parser as P  # noqa: E402

EWT_DEV = os.path.join(SHARED_DATA, "ud-english-ewt", "en_ewt-ud-dev.conllu")
needs_ewt = pytest.mark.skipif(not os.path.exists(EWT_DEV), reason="../shared/data/ud-english-ewt is absent")


def _tree(*rows):
    """CoNLL-U lines from (form, upos, head, deprel) rows."""
    return "\n".join(f"{i}\t{f}\t{f.lower()}\t{u}\t_\t_\t{h}\t{r}\t_\t_" for i, (f, u, h, r) in enumerate(rows, 1))


TINY = "\n\n".join([
    "# sent_id = 1\n" + _tree(("Dogs", "NOUN", 2, "nsubj"), ("bark", "VERB", 0, "root"), (".", "PUNCT", 2, "punct")),
    "# sent_id = 2\n" + _tree(("The", "DET", 2, "det"), ("cat", "NOUN", 3, "nsubj"), ("saw", "VERB", 0, "root"),
                              ("a", "DET", 5, "det"), ("dog", "NOUN", 3, "obj"), (".", "PUNCT", 3, "punct")),
    "# sent_id = 3\n" + _tree(("I", "PRON", 2, "nsubj"), ("gave", "VERB", 0, "root"), ("her", "PRON", 2, "iobj"),
                              ("the", "DET", 5, "det"), ("book", "NOUN", 2, "obj")),
    "# sent_id = 4\n" + _tree(("Birds", "NOUN", 2, "nsubj"), ("sing", "VERB", 0, "root"), ("in", "ADP", 4, "case"),
                              ("spring", "NOUN", 2, "obl"), (".", "PUNCT", 2, "punct")),
    "# sent_id = 5\n1-2\tdon't\t_\t_\t_\t_\t_\t_\t_\t_\n" + _tree(("do", "AUX", 3, "aux"), ("n't", "PART", 3, "advmod"),
                                                                 ("go", "VERB", 0, "root"),
                                                                 ("home", "ADV", 3, "advmod:lmod")),
    "# sent_id = 6\n" + _tree(("Big", "ADJ", 2, "amod"), ("dogs", "NOUN", 3, "nsubj"), ("chase", "VERB", 0, "root"),
                              ("small", "ADJ", 5, "amod"), ("cats", "NOUN", 3, "obj"), ("quickly", "ADV", 3, "advmod")),
]) + "\n\n"  # CoNLL-U ends every sentence with a blank line


@pytest.fixture(scope="module")
def tiny():
    return conllu.parse_conllu(TINY)


def test_arc_standard_command_checks_the_oracle_on_a_treebank(tmp_path, capsys):
    """`python examples/arc_standard.py FILE` rebuilds every projective tree from its oracle
    transitions (2n of them) and reports the deepest stacks."""
    path = tmp_path / "tiny.conllu"
    path.write_text(TINY)
    out = ts.main([str(path)])
    assert out["sentences"] == 6 and out["projective"] == 6
    assert out["transitions_mean"] == pytest.approx(2 * np.mean([3, 6, 5, 5, 4, 6]))
    # "Big dogs chase small cats quickly": ROOT chase small cats is the deepest (4, ROOT counted)
    assert out["deepest_stack_max"] == 4
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == out


# -- CoNLL-U and evaluation ---------------------------------------------------------------


def test_conllu_reads_words_skips_multiword_lines_and_round_trips(tiny):
    assert len(tiny) == 6
    s = tiny[4]
    assert s.words == ["do", "n't", "go", "home"] and s.heads == [3, 3, 0, 3]
    assert conllu.format_conllu(tiny) == TINY
    out = conllu.format_conllu([s], heads=[[2, 3, 0, 1]], rels=[["a", "b", "root", "c"]])
    assert "1-2\tdon't" in out and "\t2\ta\t_\t_" in out.splitlines()[2]


def test_xpos_tags_are_read_and_can_refine_the_pos_embedding(tiny):
    """With tag_columns="upos+xpos" the POS embedding's tag is the (UPOS, XPOS) pair, so
    "saw" (VBD) and "sees" (VBZ) get different tags where UPOS gives both VERB; the choice
    travels with the saved vocabulary."""
    text = _tree(("He", "PRON", 2, "nsubj"), ("saw", "VERB", 0, "root")).replace("\tVERB\t_", "\tVERB\tVBD")
    text += "\n\n" + _tree(("She", "PRON", 2, "nsubj"), ("sees", "VERB", 0, "root")).replace("\tVERB\t_",
                                                                                             "\tVERB\tVBZ")
    sents = conllu.parse_conllu(text + "\n\n")
    assert sents[0].xpos == ["_", "VBD"] and tiny[0].xpos == ["_", "_", "_"]
    assert conllu.format_conllu(sents) == text + "\n\n"
    plain, both = P.Vocab.build(sents), P.Vocab.build(sents, "upos+xpos")
    assert plain.encode(sents[0])[1][2] == plain.encode(sents[1])[1][2]
    assert both.encode(sents[0])[1][2] != both.encode(sents[1])[1][2]
    assert both.tags[both.encode(sents[1])[1][2]] == "VERB|VBZ"
    assert P.Vocab(**json.loads(json.dumps(both.to_json()))) == both
    with pytest.raises(ValueError, match="tag_columns must be one of"):
        P.Vocab.build(sents, "feats")
    with pytest.raises(ValueError, match="no XPOS column"):
        both.encode(conllu.Sentence(["x"], ["VERB"], [0], ["root"]))


def test_uas_las_on_hand_made_trees(tiny):
    gold = tiny[:2]  # 3 + 6 words; 2 of them punctuation
    heads = [[2, 0, 1], [2, 3, 0, 5, 3, 5]]  # wrong: "." of s1; "a"→5 right; "." of s2 → 5 wrong
    rels = [["nsubj", "root", "punct"], ["det", "obj", "root", "det", "obj", "punct"]]
    # heads right: s1 2/3, s2 5/6 → UAS 7/9; labels also right: s1 2, s2 4 ("cat" is nsubj, given obj)
    got = conllu.evaluate(gold, heads, rels)
    assert got["uas"] == pytest.approx(100 * 7 / 9) and got["las"] == pytest.approx(100 * 6 / 9)
    assert got["uas_no_punct"] == pytest.approx(100 * 7 / 7) and got["las_no_punct"] == pytest.approx(100 * 6 / 7)
    assert got["words"] == 9 and got["words_no_punct"] == 7
    # LAS compares universal labels unless asked for subtypes
    s5 = [tiny[4]]
    assert conllu.evaluate(s5, [[3, 3, 0, 3]], [["aux", "advmod", "root", "advmod"]])["las"] == 100.0
    assert conllu.evaluate(s5, [[3, 3, 0, 3]], [["aux", "advmod", "root", "advmod"]], full_labels=True)["las"] == 75.0
    with pytest.raises(ValueError, match="sentence 0 has 3 words but 2 heads"):
        conllu.evaluate(gold[:1], [[2, 0]], [["a", "b"]])


def test_malformed_conllu_names_the_line():
    with pytest.raises(ValueError, match=r"<string>:2: expected 10 tab-separated"):
        conllu.parse_conllu("# c\n1\tx\n")
    with pytest.raises(ValueError, match=r"<string>:2: word ID '3' out of sequence; expected 2"):
        conllu.parse_conllu(_tree(("a", "X", 0, "root"), ("b", "X", 1, "dep")).replace("\n2\t", "\n3\t"))


def test_eval_script_cli(tmp_path, tiny):
    gold, system = tmp_path / "g.conllu", tmp_path / "s.conllu"
    conllu.write_conllu(str(gold), tiny)
    conllu.write_conllu(str(system), tiny, heads=[[0] * len(s) for s in tiny], rels=[s.rels for s in tiny])
    out = subprocess.run([sys.executable, os.path.join(EXAMPLES, "conllu.py"), str(gold), str(system)],
                         capture_output=True, text=True, check=True).stdout
    scores = json.loads(out)
    assert scores["words"] == 29 and scores["uas"] == pytest.approx(100 * 6 / 29)  # the 6 roots are right


# -- the transition system ----------------------------------------------------------------


def test_oracle_rebuilds_hand_made_trees_and_refuses_crossing_arcs(tiny):
    for s in tiny:
        rels = list(range(len(s)))
        actions = ts.oracle(s.heads, rels)
        assert len(actions) == 2 * len(s)
        assert ts.apply(actions, len(s)) == (s.heads, rels)
    crossing = [3, 4, 0, 3]  # 1→3 and 2→4 cross
    assert not ts.is_projective(crossing) and ts.oracle(crossing, [0] * 4) is None
    with pytest.raises(ValueError, match="illegal at step 0"):
        ts.apply([ts.left(0)], 2)


def test_legal_actions():
    assert ts.legal(1, 3, 2).tolist() == [True, False, False, False, False]
    assert ts.legal(2, 0, 2).tolist() == [False, False, True, False, True]  # only RIGHT onto ROOT
    assert ts.legal(2, 1, 2).tolist() == [True, False, False, False, False]
    assert ts.legal(3, 0, 1).tolist() == [False, True, True]


@needs_ewt
def test_oracle_rebuilds_every_projective_dev_tree():
    dev = conllu.read_conllu(EWT_DEV)
    rel_ids = {r: i for i, r in enumerate(sorted({r for s in dev for r in s.rels}))}
    projective = 0
    for s in dev:
        rels = [rel_ids[r] for r in s.rels]
        actions = ts.oracle(s.heads, rels)
        assert (actions is not None) == ts.is_projective(s.heads)
        if actions is not None:
            projective += 1
            assert ts.apply(actions, len(s)) == (s.heads, rels)
    assert projective > 0.9 * len(dev)


@needs_ewt
def test_a_word_budget_gives_batches_of_long_sentences_fewer_rows():
    dev = conllu.read_conllu(EWT_DEV)[:400]
    vocab = P.Vocab.build(dev)
    examples = [e for e in (P.oracle_example(vocab, s) for s in dev) if e is not None]

    def batches(**budget):
        out = P.training_batches(vocab, examples, 64, np.random.default_rng(0), plans=False, **budget)
        return [(b[0].shape[0], b[0].shape[1] - 1, b[2]) for b, _ in out]  # rows, N, lengths

    fixed, budgeted = batches(), batches(max_words=64 * 16)
    assert {rows for rows, _, _ in fixed} == {64}
    assert {rows for rows, _, _ in budgeted} == {8, 16, 32, 64}
    for got in (fixed, budgeted):  # every sentence in one batch, once
        assert sorted(int(k) for _, _, n in got for k in n if k > 0) == sorted(e.n for e in examples)
    for rows, N, n in budgeted:
        assert rows * N <= 64 * 16 or rows == 8
        assert N >= n.max()
    slots = sum(rows * N for rows, N, _ in budgeted)
    assert slots < 0.8 * sum(rows * N for rows, N, _ in fixed)  # less padding


# -- the parser: eager ≡ batched ------------------------------------------------------------


def _parser(sentences, cell="coupled", seed=0):
    config = P.Config(word_dim=8, pos_dim=4, token_dim=12, hidden=10, action_dim=6, rel_dim=5, state_dim=10,
                      cell=cell)
    return P.Parser(P.Vocab.build(sentences), config, seed=seed)


@pytest.mark.parametrize("cell", ["coupled", "lstm"])
def test_batched_loss_and_gradients_equal_the_eager_dynet_style_version(tiny, cell):
    parser = _parser(tiny, cell)
    examples = [P.oracle_example(parser.vocab, s) for s in tiny]
    (batch, capacity), = P.training_batches(parser.vocab, examples, 8, np.random.default_rng(0), shuffle=False)

    def eager(*_):
        return sum(parser.sentence_loss_eager(e.words, e.tags, e.actions) for e in examples) / 8

    le, ge = dy.value_and_grad(eager, parser.pc, jit=False)(0.0)
    # the oracle-planned loss for both cells; the lockstep one, at the tight capacity training
    # uses, for one cell: the cell does not change how the stack is stepped
    lockstep = (parser.loss(capacity),) if cell == "coupled" else ()
    for loss in (parser.batch_loss, *lockstep):
        lb, gb = dy.value_and_grad(loss, parser.pc)(*batch)
        np.testing.assert_allclose(lb, le, rtol=1e-5)
        for k in ge:
            np.testing.assert_allclose(gb[k], ge[k], rtol=2e-4, atol=1e-6, err_msg=k)
    assert sum(float(jnp.abs(g).sum()) for g in gb.values()) > 0
    # the compositions run `comp_steps` steps, each holding one; the steps after are padding
    # (they write the scratch row only), which the scan skips
    plan = batch[-1]
    scratch = int(plan.comp_rows.max())
    k = int(plan.comp_steps)
    assert 0 < k <= plan.comp_rows.shape[0]
    assert (plan.comp_rows[:k] != scratch).any(axis=1).all()
    assert (plan.comp_rows[k:] == scratch).all()


def _check_tree(heads, n):
    """Every word has one head in 0..n, exactly one word hangs from ROOT, and no cycles."""
    assert len(heads) == n and all(0 <= h <= n for h in heads)
    assert sum(h == 0 for h in heads) == 1
    for i in range(1, n + 1):
        seen, j = set(), i
        while j != 0:
            assert j not in seen, f"cycle through word {j}"
            seen.add(j)
            j = heads[j - 1]


def test_compiled_greedy_parses_equal_eager_parses_and_are_trees(tiny):
    parser = _parser(tiny, seed=3)
    heads, rels = parser.parse(tiny, batch_size=4)
    for s, h, r in zip(tiny, heads, rels):
        eh, er = parser.parse_eager(s)
        assert (h, r) == (eh, er)
        _check_tree(h, len(s))
        assert set(r) <= set(parser.vocab.rels)


@needs_ewt
def test_every_dev_sentence_gets_a_well_formed_tree():
    dev = conllu.read_conllu(EWT_DEV)
    parser = _parser(dev[:500], seed=1)  # untrained: any legal action sequence must give a tree
    heads, _ = parser.parse(dev)
    for s, h in zip(dev, heads):
        _check_tree(h, len(s))


def test_overfits_a_tiny_treebank_to_100_percent_then_saves_and_reloads(tiny, tmp_path):
    parser = _parser(tiny, seed=0)
    parser = P.Parser(parser.vocab, P.Config(word_dim=16, pos_dim=8, token_dim=24, hidden=24, action_dim=8,
                                             rel_dim=8, state_dim=24, unk_prob=0.0), seed=0)
    examples = [P.oracle_example(parser.vocab, s) for s in tiny]
    (batch, capacity), = P.training_batches(parser.vocab, examples, 8, np.random.default_rng(0), shuffle=False)
    trainer = dy.AdamTrainer(parser.pc, 0.01)
    losses = [trainer.step(parser.batch_loss, *batch) for _ in range(150)]
    assert losses[-1] < 0.05 * losses[0]
    scores = P.evaluate(parser, tiny)
    assert scores["uas"] == 100.0 and scores["las"] == 100.0
    path = str(tmp_path / "tiny.npz")
    parser.save(path)
    again = P.Parser.load(path)
    assert again.parse(tiny) == parser.parse(tiny)
    with pytest.raises(ValueError, match="not a saved stack_lstm_parser"):
        other = dy.ParameterCollection()
        other.add_parameters(3)
        other.save(str(tmp_path / "other.npz"))
        P.Parser.load(str(tmp_path / "other.npz"))

    # the CLI parses CoNLL-U with the saved model, and the output scores what evaluate() says
    src, out = tmp_path / "in.conllu", tmp_path / "out.conllu"
    src.write_text(TINY)
    subprocess.run([sys.executable, os.path.join(EXAMPLES, "stack_lstm_parser.py"), "--load", path,
                    "--parse", str(src), "--output", str(out)], check=True, capture_output=True)
    parsed = conllu.read_conllu(str(out))
    assert [s.words for s in parsed] == [s.words for s in tiny]
    assert conllu.evaluate(tiny, [s.heads for s in parsed], [s.rels for s in parsed])["las"] == 100.0


def test_bad_configuration_is_refused(tiny):
    with pytest.raises(ValueError, match="cell must be one of"):
        P.Parser(P.Vocab.build(tiny), P.Config(cell="gru"))
    with pytest.raises(ValueError, match="loss must be 'auto', 'lockstep' or 'levels'; given 'scan'"):
        P.train(_parser(tiny), tiny, loss="scan", log=None)


def test_dev_schedule_halves_after_patience_epochs_and_stops_at_the_floor():
    s = P.DevSchedule(1.0, decay=0.5, patience=2, floor=1 / 4)
    seen = [(s.improved(score), s.learning_rate) for score in
            [80.0, 81.0, 80.5, 80.9, 80.0, 80.2, 82.0, 81.0, 81.0, 81.0, 81.0, 81.0, 81.0]]
    assert [kept for kept, _ in seen] == [True, True, False, False, False, False, True] + [False] * 6
    assert [lr for _, lr in seen] == [1.0, 1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25]
    with pytest.raises(ValueError, match="patience >= 1"):
        P.DevSchedule(1.0, patience=0)


def test_parameter_average_is_the_decayed_mean_and_applies_only_inside_its_block():
    pc = dy.ParameterCollection(seed=0)
    w = pc.add_parameters((3, 2))
    start = np.asarray(w.value).copy()
    avg = P.ParameterAverage(pc.parameter_values(), decay=0.9)
    expect, rng = start.astype(np.float64), np.random.default_rng(0)
    for t in range(1, 31):
        new = rng.normal(size=(3, 2)).astype(np.float32)
        w.set_value(new)
        avg.update(pc.parameter_values())
        d = min(0.9, (1 + t) / (10 + t))
        expect = d * expect + (1 - d) * new
    np.testing.assert_allclose(np.asarray(avg.values[w.name()]), expect, rtol=1e-5, atol=1e-6)
    with avg.applied(pc):
        kept = pc.parameter_values()
        np.testing.assert_allclose(np.asarray(w.value), expect, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(w.value), new)  # the trained values are back
    avg.update(pc.parameter_values())  # donates the average's buffers: what the block handed out survives
    np.testing.assert_allclose(np.asarray(kept[w.name()]), expect, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="decay must be in"):
        P.ParameterAverage(pc.parameter_values(), decay=1.0)
