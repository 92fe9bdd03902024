"""EvalSet reads the labelled images once; score stops a round once the budget is out of reach."""

import numpy as np
import pytest

from int8kit.budget.accuracy import EvalSet, score
from int8kit.data.open_data import open_dataset
from int8kit.data.seed_format import write_seed
from int8kit.errors import DataError


class _ClassOf:
    """Predicts the class stored in each image's first pixel (so the test knows every answer)."""

    def __init__(self) -> None:
        self.images = 0

    def run(self, batch: np.ndarray) -> np.ndarray:
        self.images += len(batch)
        scores = np.zeros((len(batch), 10), np.float32)
        scores[np.arange(len(batch)), batch[:, 0, 0, 0].astype(int)] = 1
        return scores


@pytest.fixture
def data(tmp_path):
    labels = np.arange(40) % 10
    x = np.zeros((40, 3, 4, 4), np.float32)
    x[:, 0, 0, 0] = np.where(np.arange(40) < 10, labels, (labels + 1) % 10)  # only the first 10 are right
    return open_dataset(write_seed(tmp_path / "d.bin", x, labels))


def test_full_score_matches_the_hand_count(data):
    got = score(_ClassOf(), EvalSet(data, 40, 8))
    assert (got.correct, got.seen, got.complete) == (10, 40, True) and got.top1 == 25.0


def test_a_round_stops_once_the_needed_answers_are_out_of_reach(data):
    model = _ClassOf()
    # 30 of 40 needed: after 16 images (10 right) 10 + 24 left >= 30; after 24 (still 10), 10 + 16 < 30.
    got = score(model, EvalSet(data, 40, 8), need=30)
    assert (got.correct, got.seen, got.complete) == (10, 24, False) and model.images == 24


def test_unlabelled_data_is_refused(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.zeros((4, 3, 4, 4), np.float32))
    with pytest.raises(DataError, match="needs labelled data"):
        EvalSet(open_dataset(path), 4, 2)
