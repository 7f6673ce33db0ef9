"""A small text classifier learned from example sentences: which label a sentence is closest to.

Phrases (`Lexicon`) catch what operators know callers say. Callers say more: "I've been saving
up my pills", "ya regalé todas mis cosas". The classifier reads a sentence the way a phrase
list cannot, by every word, word pair and piece of a word it shares with sentences callers
said before (config/examples.yaml), so an unseen wording of a known meaning still scores.

Training is scikit-learn's multinomial logistic regression (a maintained, well-understood
model; deterministic for the same examples). Scoring is a dictionary look-up per feature in
plain Python, so a webhook pays tens of microseconds, not a library call.

Features of a sentence (all folded: lower case, no accents, see `ivr.language.text`):
- `w:` each word and `s:` each word's stem in each language ("cutting" and "cut" meet);
- `b:` each pair of neighbouring stems ("end it", "took all");
- `c:` pieces of 4 letters inside each word (with its edges marked), so speech-recognition
  slips and inflections ("overdosed" / "overdosing", "matarme" / "matarse") still share most
  of their features. (3- and 5-letter pieces were measured too: no better on a held-out set,
  and twice the features to score.)
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import pairwise, repeat
from pathlib import Path

from ivr.language.text import LANGUAGES, Utterance

log = logging.getLogger(__name__)

_CHAR_SIZES = (4,)


def features(utterance: Utterance) -> list[str]:
    """The features of one sentence (repeats kept: a feature said twice counts twice)."""
    out: list[str] = []
    for word in utterance.words:
        out.append("w:" + word)
        padded = f"<{word}>"
        for size in _CHAR_SIZES:
            out.extend("c:" + padded[i : i + size] for i in range(len(padded) - size + 1))
    for lang in LANGUAGES:
        stems = utterance.stems[lang]
        out.extend(f"s:{lang}:{s}" for s in stems)
        out.extend(f"b:{lang}:{a}_{b}" for a, b in pairwise(stems))
    return out


@dataclass(frozen=True)
class TextClassifier:
    """Labels, and per feature one weight per label (learned; see `train`)."""

    labels: tuple[str, ...]
    weights: Mapping[str, tuple[float, ...]]
    intercepts: tuple[float, ...]
    _columns: tuple[dict[str, float], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # One dictionary per label, so a sentence is scored by C-level look-ups (map, sum).
        columns = tuple(
            {f: row[i] for f, row in self.weights.items() if row[i]}
            for i in range(len(self.labels))
        )
        object.__setattr__(self, "_columns", columns)

    def probabilities(self, utterance: Utterance) -> dict[str, float]:
        """How likely each label is for the sentence (they add up to 1)."""
        present = _present(utterance)
        scale = 1.0 / math.sqrt(len(present)) if present else 0.0
        scores = [
            b + scale * sum(map(column.get, present, repeat(0.0)))
            for b, column in zip(self.intercepts, self._columns, strict=True)
        ]
        top = max(scores)
        exps = [math.exp(s - top) for s in scores]
        total = sum(exps)
        return {label: e / total for label, e in zip(self.labels, exps, strict=True)}


def _present(utterance: Utterance) -> set[str]:
    """The distinct features of a sentence: each counts once, all weighing 1/sqrt(how many),
    so a long story weighs as much as a short one."""
    return set(features(utterance))


def train(examples: Sequence[tuple[str, str]], strength: float = 32.0) -> TextClassifier:
    """Learn a classifier from (sentence, label) pairs.

    Each sentence's distinct features weigh 1/sqrt(how many) (a long story weighs as much as a
    short one); `strength` is the inverse of the regularisation (higher: fits the examples
    more closely).
    """
    return _train(tuple(examples), strength)


@lru_cache(maxsize=8)
def _train(examples: tuple[tuple[str, str], ...], strength: float) -> TextClassifier:
    folder = _cache_folder()
    if folder is None:
        return _fit(examples, strength)
    path = folder / f"{_cache_key(examples, strength)}.npz"
    cached = _load(path)
    if cached is not None:
        return cached
    model = _fit(examples, strength)
    _save(model, path)
    return model


CACHE_ENV = "BRIDGELINE_MODEL_CACHE"
"""A folder where trained classifiers are kept between starts (default: bridgeline/ in the
user's cache folder, XDG_CACHE_HOME or ~/.cache); "off" trains at every start. A kept model is
used only for the very same examples, strength, scikit-learn and feature code: the file name
is a hash of all of them. Training the crisis examples takes seconds per process; reading a
kept model a fraction of one, so a restarted web or worker process answers sooner."""


def _cache_folder() -> Path | None:
    setting = os.environ.get(CACHE_ENV, "").strip()
    if setting.lower() == "off":
        return None
    if setting:
        return Path(setting)
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
    return Path(base) / "bridgeline"


def _cache_key(examples: tuple[tuple[str, str], ...], strength: float) -> str:
    import sklearn

    digest = hashlib.sha256()
    digest.update(json.dumps([examples, strength, sklearn.__version__]).encode())
    for code in (Path(__file__), Path(__file__).with_name("text.py")):
        digest.update(code.read_bytes())
    return digest.hexdigest()[:32]


def _load(path: Path) -> TextClassifier | None:
    """A kept model, or None when there is none or it cannot be read (it is then trained)."""
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as kept:
            names = kept["names"].tolist()
            coef = kept["coef"].tolist()
            labels = tuple(str(label) for label in kept["labels"].tolist())
            intercepts = tuple(float(i) for i in kept["intercepts"].tolist())
        return TextClassifier(
            labels=labels,
            weights={name: tuple(row) for name, row in zip(names, coef, strict=True)},
            intercepts=intercepts,
        )
    except FileNotFoundError:
        return None
    except Exception as exc:  # a kept model never stops a start: it is trained again
        log.warning("kept classifier not read, training instead: error=%s", type(exc).__name__)
        return None


def _save(model: TextClassifier, path: Path) -> None:
    """Keep a trained model for the next start (written whole or not at all)."""
    import numpy as np

    names = list(model.weights)
    out = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz", delete=False) as out:
            np.savez(
                out,
                names=np.array(names, dtype=str),
                coef=np.array([model.weights[n] for n in names], dtype=float).reshape(
                    len(names), len(model.labels)
                ),
                labels=np.array(model.labels, dtype=str),
                intercepts=np.array(model.intercepts, dtype=float),
            )
        os.replace(out.name, path)
    except OSError as exc:
        log.warning("trained classifier not kept: error=%s", type(exc).__name__)
        if out is not None:
            Path(out.name).unlink(missing_ok=True)
        return
    # Older models (examples since edited) are of no more use: keep the latest few.
    try:
        kept = sorted(path.parent.glob("*.npz"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in kept[_KEEP:]:
            old.unlink(missing_ok=True)
    except OSError:  # another process pruned first
        pass


_KEEP = 8
"""How many trained models the cache folder keeps (the crisis, menu and category classifiers of
the current examples, and some before)."""


def _fit(examples: tuple[tuple[str, str], ...], strength: float) -> TextClassifier:
    # Imported here: only building the line's understanding needs scikit-learn.
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LogisticRegression

    labels = sorted({label for _, label in examples})
    if len(labels) < 2:
        raise ValueError("a classifier needs examples of at least two labels")
    scaled = []
    for text, _ in examples:
        present = _present(Utterance.read(text))
        scaled.append(dict.fromkeys(present, 1.0 / math.sqrt(len(present)) if present else 0.0))
    vectorizer = DictVectorizer()
    matrix = vectorizer.fit_transform(scaled)
    # Newton-CG converges in a few steps here (crisis examples: 0.6 s; lbfgs took 2.5 s).
    model = LogisticRegression(C=strength, solver="newton-cg", max_iter=200)
    model.fit(matrix, [label for _, label in examples])
    classes = [str(c) for c in model.classes_]
    coef = model.coef_
    intercept = model.intercept_
    if len(classes) == 2:
        # scikit-learn keeps one row for two labels: the second label's log-odds.
        coef = [-coef[0] / 2, coef[0] / 2]
        intercept = [-intercept[0] / 2, intercept[0] / 2]
    names = vectorizer.get_feature_names_out()
    weights = {
        str(name): tuple(float(coef[k][j]) for k in range(len(classes)))
        for j, name in enumerate(names)
    }
    return TextClassifier(
        labels=tuple(classes),
        weights=weights,
        intercepts=tuple(float(i) for i in intercept),
    )
