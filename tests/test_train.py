"""Training, run directories, resume, evaluation and distribution strategies (tiny models)."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from edge.errors import EdgekitError
from tests.fixtures.runs import TINY


def test_run_directory_holds_model_config_split_and_metrics(tiny_swim_run, swim_clips_dir):
    from quantize.runs import load_run_model, read_run

    names = set(os.listdir(tiny_swim_run))
    assert {"run.json", "config.json", "model.weights.h5", "metrics.json", "history.csv", "checkpoints"} <= names
    info = read_run(str(tiny_swim_run))
    splits = info.splits
    assert set(splits) == {"train", "val", "test"}
    everything = splits["train"] + splits["val"] + splits["test"]
    assert len(everything) == len(set(everything)) == 48  # disjoint, nothing lost
    metrics = json.load(open(os.path.join(tiny_swim_run, "metrics.json")))
    assert metrics["split"] == "test"
    assert metrics["tasks"]["action"]["count"] == len(splits["test"])
    assert metrics["training"]["epochs_run"] == 2
    assert 0.0 <= metrics["tasks"]["identity"]["rank1"] <= 1.0
    model, _ = load_run_model(str(tiny_swim_run))
    assert model.config.backbone == "test_tiny"


def test_reloaded_run_reproduces_its_recorded_metrics(tiny_swim_run, swim_clips_dir):
    from quantize.evaluate import evaluate_run

    recorded = json.load(open(os.path.join(tiny_swim_run, "metrics.json")))["tasks"]
    result = evaluate_run(str(tiny_swim_run), str(swim_clips_dir))
    assert result["split"] == "test"
    for task in ("action", "identity"):
        assert result["tasks"][task]["accuracy"] == pytest.approx(recorded[task]["accuracy"])
        assert result["tasks"][task]["confusion"] == recorded[task]["confusion"]


def test_resume_continues_from_the_last_finished_epoch(swim_clips_dir, tmp_path):
    from quantize.train import train

    out = str(tmp_path / "run")
    train(str(swim_clips_dir), out, epochs=1, **TINY)
    first_split = json.load(open(os.path.join(out, "run.json")))["splits"]
    metrics = train(None, out, epochs=2, resume=True, **TINY)
    assert metrics["training"]["epochs_run"] == 2
    rows = open(os.path.join(out, "history.csv")).read().strip().splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == ["0", "1"]
    assert json.load(open(os.path.join(out, "run.json")))["splits"] == first_split
    with pytest.raises(EdgekitError, match="already trained 2 epochs"):
        train(None, out, epochs=2, resume=True, **TINY)
    with pytest.raises(EdgekitError, match="already holds a run"):
        train(str(swim_clips_dir), out, epochs=1, **TINY)


def test_face_training_uses_the_seeds_losses(face_dir, tmp_path):
    from quantize.train import train

    metrics = train(str(face_dir), str(tmp_path / "face"), task="face", backbone="test_tiny",
                    size=(48, 48), head_size="tiny", epochs=1, batch_size=8, verbose=0)
    assert set(metrics["tasks"]) == {"age", "gender", "race"}
    assert metrics["tasks"]["age"]["mae"] >= 0
    assert metrics["training"]["skipped"]  # the two malformed names are reported


def test_mirrored_strategy_over_two_logical_cpus(swim_clips_dir, tmp_path):
    script = textwrap.dedent("""
        import os, sys, json
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from quantize.train import train
        m = train(sys.argv[1], sys.argv[2], task="swim", backbone="test_tiny", size=(32, 32),
                  clip_length=8, head_size="tiny", epochs=1, batch_size=8, strategy="mirrored", verbose=0)
        print(json.dumps(m["training"]))
    """)
    result = subprocess.run([sys.executable, "-c", script, str(swim_clips_dir), str(tmp_path / "m")],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    training = json.loads(result.stdout.strip().splitlines()[-1])
    assert training["replicas"] == 2 and training["strategy"] == "mirrored"


def test_multiworker_without_tf_config_is_a_clear_error(monkeypatch):
    from quantize.distribute import make_strategy

    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(EdgekitError, match="TF_CONFIG"):
        make_strategy("multiworker")
