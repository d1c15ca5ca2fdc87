"""The quickstart end to end on a toy budget: synthesise, train, evaluate, quantize, stream."""

import json
import os

import pytest


@pytest.mark.slow
def test_quickstart_runs_every_step_and_writes_a_summary(tmp_path):
    from quantize.quickstart import format_summary, quickstart

    out = tmp_path / "qs"
    result = quickstart(str(out), verbose=0, backbone="test_tiny", head_size="tiny", size=(32, 32),
                        clip_length=8, clips_per_pair=3, epochs=1, quantize_method="ptq",
                        prune_epochs=1)
    methods = ["fp32", "ptq", "qat", "prune-qat"]
    assert [s["step"] for s in result["steps"]] == \
        ["synthesise", "train + eval"] + ["quantize %s" % m for m in methods] + \
        ["quantize, wall", "bench", "stream"]
    for name in ("data/labels.json", "run/model.weights.h5", "demo/pool.avi", "bench/results.json",
                 "bench/pareto.png", "bench/pareto.json", "bench/profile.png", "quickstart.json"):
        assert (out / name).exists(), name
    for method in methods:
        assert (out / "models" / method / "manifest.json").exists(), method
        assert "converting frame.tflite" in (out / "models" / (method + ".log")).read_text()
    # the bench holds every method, and the plot's numbers are its measurements
    bench = json.loads((out / "bench" / "results.json").read_text())
    assert sorted(r["artifact"] for r in bench["records"]) == sorted(methods)
    assert all(set(r["profile"]) == {"frame", "step", "head"} for r in bench["records"])
    shown = json.loads((out / "bench" / "pareto.json").read_text())
    latency = {r["artifact"]: r["streaming"]["cost_per_decision_ms"] for r in bench["records"]}
    points = shown["panels"][0]["points"]
    assert sorted(p["artifact"] for p in points) == sorted(methods)
    assert all(p["latency_ms"] == latency[p["artifact"]] for p in points)
    assert [m["artifact"] for m in result["bench"]["methods"]] == \
        [r["artifact"] for r in bench["records"]]
    stream = result["stream"]
    # 8 clips of 8 frames joined: windows of 8 at stride 5 once warm
    assert stream["frames"] == 64 and stream["windows"] == (64 - 8) // 5 + 1
    assert 0 <= stream["action_accuracy"] <= 1
    assert json.loads((out / "quickstart.json").read_text())["total_seconds"] > 0
    assert result["bench"]["frame_p50_ms"] > 0 and result["bench"]["cost_per_decision_ms"] > 0
    assert "stream" in format_summary(result) and "bench" in format_summary(result)
