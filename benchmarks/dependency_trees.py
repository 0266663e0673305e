"""UD dependency trees as binary trees, for the Tree-LSTM benchmark (benchmarks/tree_lstm.py)
and its DyNet side (benchmarks/dynet_tree_lstm.py). Pure Python: it runs in DyNet's
environment too.

Each word is a preterminal node labelled with its UPOS tag over the word; a head collects
its dependents outward, nearest first (right ones, then left ones), one binary node per
dependent, labelled with that dependent's relation — n preterminals and n − 1 binary nodes,
every one with a label the treebank gives. As an s-expression, DyNet's
examples/treelstm format: `(label (label word) ...)`.
"""

from __future__ import annotations


def _clean(word: str) -> str:
    return word.replace("(", "-LRB-").replace(")", "-RRB-").replace(" ", "_")


def binarize(sentence, tag_ids: dict, rel_ids: dict):
    """(s-expression, nodes): nodes in post-order, each (label, word or None, children) —
    children as indices into nodes. Labels: UPOS ids for preterminals, len(tag_ids) +
    relation id for binary nodes."""
    n = len(sentence.words)
    deps = {h: [] for h in range(n + 1)}
    for i, h in enumerate(sentence.heads, 1):
        deps[h].append(i)
    nodes: list[tuple[int, str | None, list[int]]] = []

    def build(h: int) -> tuple[int, str]:
        """(node index, s-expression) of word h's subtree."""
        nodes.append((tag_ids[sentence.upos[h - 1]], _clean(sentence.words[h - 1]), []))
        node, sexpr = len(nodes) - 1, f"({tag_ids[sentence.upos[h - 1]]} {_clean(sentence.words[h - 1])})"
        right = sorted(d for d in deps[h] if d > h)
        left = sorted((d for d in deps[h] if d < h), reverse=True)
        for d in right + left:
            child, child_sexpr = build(d)
            label = len(tag_ids) + rel_ids[sentence.rels[d - 1]]
            pair = [node, child] if d > h else [child, node]
            spair = [sexpr, child_sexpr] if d > h else [child_sexpr, sexpr]
            nodes.append((label, None, pair))
            node, sexpr = len(nodes) - 1, f"({label} {spair[0]} {spair[1]})"
        return node, sexpr

    roots = deps[0]
    if len(roots) != 1:
        return None
    _, sexpr = build(roots[0])
    return sexpr, nodes


def label_maps(sentences) -> tuple[dict, dict]:
    tags = sorted({t for s in sentences for t in s.upos})
    rels = sorted({r for s in sentences for r in s.rels})
    return {t: i for i, t in enumerate(tags)}, {r: i for i, r in enumerate(rels)}


def load(path: str, count: int):
    """The first `count` binarized trees of a CoNLL-U file: ([(s-expression, nodes)], number
    of labels). Labels are counted over the whole file."""
    import conllu  # examples/conllu.py, on the caller's path

    sents = conllu.read_conllu(path)
    tag_ids, rel_ids = label_maps(sents)
    trees = []
    for s in sents:
        b = binarize(s, tag_ids, rel_ids)
        if b is not None:
            trees.append(b)
        if len(trees) == count:
            break
    return trees, len(tag_ids) + len(rel_ids)
