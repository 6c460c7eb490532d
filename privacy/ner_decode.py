"""spaCy's named-entity recogniser with its greedy decoding loop vectorised over the batch.

spaCy's compiled loop checks every move of every state one by one and, as built with Cython 3,
takes and drops the GIL inside each check; on clinical notes that loop cost as much as the
network. Here the network runs through spaCy's own layers and weights, the scores come from the
same BLIS routine spaCy's loop calls, and only the choice of move (the BILUO validity rules of
`spacy/pipeline/_parser_internals/ner.pyx`, for documents without preset entities) is done with
numpy for all documents of a batch at once. `TextDeidentifier` uses `nlp.pipe` for a model of
another shape; tests check that both find the same entities.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

BEGIN, IN, LAST, UNIT, OUT = range(5)
_KINDS = {"B": BEGIN, "I": IN, "L": LAST, "U": UNIT, "O": OUT}


class GreedyNer:
    """The NER component of `nlp`, decoded batch-wise; `None` from `create` if its shape differs."""

    def __init__(self, nlp: Any) -> None:
        from blis.py import gemm

        self.nlp = nlp
        self.ner = nlp.get_pipe("ner")
        model = self.ner.model
        self.tok2vec = model.get_ref("tok2vec")
        self.lower = model.get_ref("lower")
        upper = model.get_ref("upper")
        self.weights = upper.get_param("W")
        self.bias = upper.get_param("b")
        self.gemm = gemm
        names = [self.ner.moves.get_class_name(i) for i in range(self.ner.moves.n_moves)]
        self.kinds = np.array([_KINDS[name[0]] for name in names])
        labels = [name[2:] for name in names]
        self.label_names = sorted({label for label in labels if label})
        label_ids = {label: i + 1 for i, label in enumerate(self.label_names)}
        self.labels = np.array([label_ids.get(label, 0) for label in labels])
        unseen = model.attrs.get("unseen_classes") or ()
        self.unseen = np.array(sorted(unseen), dtype=int)
        self.valid = self._valid_table()

    @classmethod
    def create(cls, nlp: Any) -> GreedyNer | None:
        """Only the shape this decoder reproduces: NER alone after the tokenizer, three state
        features, maxout hidden layer, an output layer."""
        if nlp.pipe_names != ["ner"]:
            return None
        model = nlp.get_pipe("ner").model
        if not all(model.has_ref(ref) for ref in ("tok2vec", "lower", "upper")):
            return None
        lower = model.get_ref("lower")
        if lower.get_dim("nF") != 3 or lower.get_dim("nP") < 2 or not model.get_ref("upper").has_param("W"):
            return None
        return cls(nlp)

    def pipe(self, texts: Iterable[str], batch_size: int) -> Iterator[Any]:
        """Docs with `ents` set, like `nlp.pipe`, batched as spaCy's parser does it: each batch
        sorted by length and decoded a quarter at a time (smaller arrays, similar lengths)."""
        from spacy.util import minibatch

        docs = self.nlp.tokenizer.pipe(texts, batch_size=batch_size)
        for batch in minibatch(docs, size=batch_size):
            for part in minibatch(sorted(batch, key=len), size=max(batch_size // 4, 2)):
                self._annotate(part)
            yield from batch

    def _annotate(self, docs: list[Any]) -> None:
        from spacy.attrs import IS_SPACE
        from spacy.tokens import Span

        docs_with_tokens = [doc for doc in docs if len(doc)]
        if docs_with_tokens:
            tokvecs = self.tok2vec.predict(docs_with_tokens)
            cached = self.lower.predict(tokvecs)  # (tokens + 1, features, hidden, pieces); row 0 pads
            spaces = np.concatenate([doc.to_array(IS_SPACE) for doc in docs_with_tokens]).astype(bool)
            found = self._decode(cached, [len(doc) for doc in docs_with_tokens], spaces)
            for index, doc in enumerate(docs_with_tokens):
                doc.set_ents(
                    [
                        Span(doc, start, end, label=self.label_names[label - 1])
                        for start, end, label in found[index]
                    ],
                    default="outside",
                )

    def _decode(self, cached: np.ndarray, lengths: Sequence[int], spaces: np.ndarray) -> list[list[tuple]]:
        """(start, end, label id) of each document's entities; all documents step one token at a
        time together, since every NER move consumes exactly one token."""
        n_tokens, n_features, hidden, pieces = cached.shape
        cached = cached.reshape(n_tokens, n_features, hidden * pieces)
        lower_bias = self.lower.get_param("b").reshape(hidden * pieces)
        lengths_array = np.asarray(lengths)
        offsets = np.concatenate([[0], np.cumsum(lengths_array)[:-1]])
        n_docs = len(lengths)
        opened = np.zeros(n_docs, dtype=bool)
        label = np.zeros(n_docs, dtype=int)
        start = np.zeros(n_docs, dtype=int)
        found: list[list[tuple]] = [[] for _ in range(n_docs)]
        kinds, labels = self.kinds, self.labels
        for step in range(int(lengths_array.max())):
            active = np.flatnonzero(lengths_array > step)
            b0 = offsets[active] + step
            is_open = opened[active]
            e0 = np.where(is_open, offsets[active] + start[active], -1)
            before = np.where(is_open, b0 - 1, -1)
            # spaCy adds the features in this order, then the bias, in float32.
            summed = cached[b0 + 1, 0] + cached[e0 + 1, 1]
            summed += cached[before + 1, 2]
            summed += lower_bias
            hiddens = np.ascontiguousarray(summed.reshape(len(active), hidden, pieces).max(axis=2))
            scores = self.gemm(hiddens, self.weights, trans2=True)
            scores += self.bias
            if len(self.unseen):
                scores[:, self.unseen] = scores.min()
            open_label = np.where(is_open, label[active], 0)
            more = (lengths_array[active] - step >= 2).astype(int)
            scores[~self.valid[open_label, more, spaces[b0].astype(int)]] = -np.inf
            moves = scores.argmax(axis=1)
            kind = kinds[moves]
            for index in np.flatnonzero((kind == LAST) | (kind == UNIT)):
                doc = active[index]
                begin = start[doc] if kind[index] == LAST else step
                found[doc].append(
                    (begin, step + 1, label[doc] if kind[index] == LAST else labels[moves[index]])
                )
            begins = kind == BEGIN
            start[active[begins]] = step
            label[active[begins]] = labels[moves[begins]]
            opened[active] = begins | (kind == IN)
        return found

    def _valid_table(self) -> np.ndarray:
        """Which moves a state may take, per `ner.pyx` for documents without preset entities, by
        state: the open entity's label (0: none), whether a token follows, whether B0 is a space."""
        kinds, labels = self.kinds, self.labels
        labelled = labels != 0
        table = np.zeros((len(self.label_names) + 1, 2, 2, len(kinds)), dtype=bool)
        for open_label in range(len(self.label_names) + 1):
            is_open, same = open_label != 0, labels == open_label
            for more in (False, True):
                for space in (False, True):
                    table[open_label, int(more), int(space)] = (
                        ((kinds == BEGIN) & (not is_open) & more & labelled & (not space))
                        | ((kinds == IN) & is_open & more & labelled & same)
                        | ((kinds == LAST) & is_open & labelled & same)
                        | ((kinds == UNIT) & (not is_open) & labelled & (not space))
                        | ((kinds == OUT) & (not is_open))
                    )
        return table
