"""The scoring function shared by Keras, fake-quant and TFLite evaluation, on known inputs."""

import numpy as np
import pytest

from quantize.config import face_config, swim_config
from edge.metrics import confusion_matrix, format_table, macro_f1, rank1, score


def test_confusion_and_macro_f1_by_hand():
    truth = [0, 0, 1, 1, 2, 2]
    predicted = [0, 1, 1, 1, 0, 2]
    matrix = confusion_matrix(truth, predicted, 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    # per-class F1: class0 2*1/(2+2)=0.5, class1 2*2/(3+2)=0.8, class2 2*1/(1+2)=2/3
    assert macro_f1(matrix) == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)


def test_rank1_leave_one_out():
    embeddings = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]])
    assert rank1(embeddings, np.array([0, 0, 1, 1])) == 1.0
    assert rank1(np.array([[1, 0], [1, 0.01], [0, 1]]), np.array([0, 1, 1])) == pytest.approx(1 / 3)


def test_score_swim_and_face():
    config = swim_config(backbone="test_tiny", size=(32, 32), clip_length=4, head_size="tiny")
    outputs = {
        "action": np.eye(4)[[0, 1, 2, 3, 3]],
        "identity": np.eye(4)[[0, 0, 1, 1, 2]],
        "identity_embedding": np.eye(4)[[0, 0, 1, 1, 2]],
    }
    targets = {"action": np.array([0, 1, 2, 3, 2]), "identity": np.array([0, 0, 1, 1, 2])}
    result = score(config, outputs, targets)
    assert result["action"]["accuracy"] == pytest.approx(0.8)
    assert result["identity"]["accuracy"] == 1.0
    assert result["identity"]["rank1"] == pytest.approx(0.8)  # the lone swimmer3 clip has no match
    assert result["action"]["confusion"][2] == [0, 0, 1, 1]

    face = face_config(backbone="test_tiny", size=(32, 32), head_size="tiny")
    outputs = {"age": np.array([[20.0], [30.0]]), "gender": np.eye(2)[[0, 1]], "race": np.eye(5)[[4, 0]]}
    targets = {"age": np.array([25.0, 30.0]), "gender": np.array([0, 0]), "race": np.array([4, 0])}
    result = score(face, outputs, targets)
    assert result["age"]["mae"] == pytest.approx(2.5)
    assert result["gender"]["accuracy"] == 0.5 and result["race"]["accuracy"] == 1.0
    table = format_table(result)
    assert "age" in table and "2.500" in table
