"""The face instance through `edgekit bench --device cpu`: a tiny age/gender/race model directory
(one image per clip) benched end to end, accuracy computed on the target.

The figures must be the ones the model gives, not good ones (the tiny run is near chance): the
bench's age MAE and gender/race confusions are checked against the model's outputs computed by
direct interpreter calls, and against report.json's TFLite figures, which come from the same
scoring path on the same test split.
"""

import csv
import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

from edge.cli import main
from tests.test_bench_run import _expected_outputs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST = ["--runs", "3", "--min-seconds", "0", "--warmup-seconds", "0", "--pace-seconds", "0.3",
        "--fps", "40", "--camera", "64x48"]


@pytest.fixture(scope="module")
def face_bench(face_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench_face") / "out"
    result = CliRunner().invoke(main, ["bench", "--device", "cpu", "--devices",
                                       os.path.join(ROOT, "devices.toml"), "--model",
                                       face_model_dir, "--out", str(out)] + FAST)
    assert result.exit_code == 0, result.output
    return out, result, json.loads((out / "results.json").read_text())["records"][0]


def test_face_bench_reports_age_mae_gender_and_race_accuracy(face_bench, face_model_dir,
                                                            tiny_face_run):
    from edge.data.labelled import load_labelled
    from edge.metrics import score
    from quantize.runs import read_run

    out, result, record = face_bench
    assert (record["target"], record["name"], record["clip_length"]) == ("cpu", "face", 1)
    info = read_run(str(tiny_face_run))
    test_names = info.splits["test"]
    assert record["eval"]["clips"] == len(test_names) > 0
    accuracy = record["accuracy"]
    assert set(accuracy) == {"age", "gender", "race"}
    assert set(accuracy["age"]) == {"mae", "rmse", "count"}
    for task in ("gender", "race"):
        assert accuracy[task]["count"] == len(test_names)
        assert np.sum(accuracy[task]["confusion"]) == len(test_names)
    # independent of edge.runner: the outputs by direct interpreter calls, scored
    test = load_labelled("face", info.data_dir, 1, (32, 32)).select(test_names)
    expected = score(info.config, _expected_outputs(face_model_dir, test.x), test.targets)
    assert accuracy["age"]["mae"] == pytest.approx(expected["age"]["mae"], rel=1e-5)
    assert accuracy["age"]["rmse"] == pytest.approx(expected["age"]["rmse"], rel=1e-5)
    for task in ("gender", "race"):
        assert accuracy[task]["confusion"] == expected[task]["confusion"]
        assert accuracy[task]["accuracy"] == pytest.approx(expected[task]["accuracy"])
    # report.json's TFLite figures: the same path on the same split gives the same numbers
    report = json.load(open(os.path.join(face_model_dir, "report.json")))["metrics"]["tflite"]
    assert accuracy["age"]["mae"] == pytest.approx(report["age"]["mae"], rel=1e-5)
    for task in ("gender", "race"):
        assert accuracy[task]["confusion"] == report[task]["confusion"]


def test_face_bench_streams_one_image_windows_and_writes_its_tables(face_bench):
    out, result, record = face_bench
    assert record["streaming"]["clip_length"] == 1 and record["streaming"]["decisions"] >= 10
    # the step model too (the face MTDNN has a temporal branch, T = 1); no clip.tflite here
    assert set(record["latency"]) == {"frame", "step", "head"}
    assert record["paced"]["frames_processed"] == record["paced"]["decisions"]  # T = 1, stride 1
    markdown = (out / "results.md").read_text()
    assert "| age | gender | race |" in markdown and "MAE " in markdown
    rows = list(csv.reader(open(str(out / "results.csv"))))
    row = dict(zip(rows[0], rows[1]))
    assert float(row["age_score"]) == pytest.approx(record["accuracy"]["age"]["mae"], rel=1e-5)
    assert float(row["gender_score"]) == pytest.approx(record["accuracy"]["gender"]["accuracy"])
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
