"""A trained classifier is kept between starts, so a restarted web or worker process answers
sooner; a kept model is used only for the very same examples, and a broken one is retrained."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr.language import classifier
from ivr.language.classifier import CACHE_ENV, train
from ivr.language.text import Utterance

EXAMPLES = [
    ("I want to end my life", "crisis_988"),
    ("nobody would miss me if I was gone", "crisis_988"),
    ("the streetlight on my corner is out", "everyday"),
    ("when does city hall open on monday", "everyday"),
]


@pytest.fixture
def kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "models"
    monkeypatch.setenv(CACHE_ENV, str(folder))
    classifier._train.cache_clear()
    yield folder
    classifier._train.cache_clear()


def _odds(model: classifier.TextClassifier) -> dict[str, float]:
    return model.probabilities(Utterance.read("I think I want to end it all"))


def test_a_second_start_reads_the_kept_model_and_hears_the_same(kept: Path) -> None:
    first = train(EXAMPLES)
    assert len(list(kept.glob("*.npz"))) == 1
    classifier._train.cache_clear()  # as a new process would
    second = train(EXAMPLES)
    assert second is not first
    assert second == first
    assert _odds(second) == _odds(first)


def test_other_examples_are_trained_again_not_read_from_the_kept_model(kept: Path) -> None:
    train(EXAMPLES)
    changed = train([*EXAMPLES, ("my neighbor's music is too loud", "everyday")])
    assert len(list(kept.glob("*.npz"))) == 2
    assert "w:music" in changed.weights


def test_a_broken_kept_model_is_trained_again_with_a_warning(
    kept: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = train(EXAMPLES)
    [path] = kept.glob("*.npz")
    whole = path.read_bytes()
    for broken in (b"not a model", whole[: len(whole) // 2]):  # garbage, a file cut short
        path.write_bytes(broken)
        classifier._train.cache_clear()
        with caplog.at_level(logging.WARNING, logger="ivr.language.classifier"):
            again = train(EXAMPLES)
        assert again == first
        assert "kept classifier not read" in caplog.text
        caplog.clear()


def test_off_keeps_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_ENV, "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    classifier._train.cache_clear()
    try:
        train(EXAMPLES)
    finally:
        classifier._train.cache_clear()
    assert not list(tmp_path.rglob("*.npz"))
