"""The device side of the bench (edge/bench): statistics, op placement, tegrastats parsing,
Python 3.9 syntax, and one real measuring process without TensorFlow."""

import ast
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from edge.bench.placement import op_details, placement
from edge.bench.power import TegrastatsSampler, make_sampler, parse_tegrastats, power_figures
from edge.bench.stats import enough, summarize
from edge.errors import EdgekitError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_bench_modules_and_devices_config_parse_as_python39():
    files = [os.path.join(ROOT, "edge", "devices.py")]
    bench = os.path.join(ROOT, "edge", "bench")
    files += [os.path.join(bench, f) for f in sorted(os.listdir(bench)) if f.endswith(".py")]
    assert len(files) >= 8
    for path in files:
        with open(path, encoding="utf-8") as handle:
            ast.parse(handle.read(), filename=path, feature_version=(3, 9))


def test_summarize_matches_numpy_and_population_std():
    times = [5.0, 1.0, 2.0, 3.0, 4.0, 100.0]
    stats = summarize(times)
    assert stats["count"] == 6 and stats["min_ms"] == 1.0 and stats["max_ms"] == 100.0
    assert stats["p50_ms"] == pytest.approx(3.5)
    assert stats["p90_ms"] == pytest.approx(np.percentile(times, 90))
    assert stats["p99_ms"] == pytest.approx(np.percentile(times, 99))
    assert stats["std_ms"] == pytest.approx(np.std(times))
    assert summarize([]) == {"count": 0}


def test_stopping_rule_needs_both_runs_and_seconds_but_caps_at_max_seconds():
    assert not enough(49, 5.0, 50, 1.0, 150)
    assert not enough(500, 0.5, 50, 1.0, 150)
    assert enough(50, 1.0, 50, 1.0, 150)
    assert enough(1, 151.0, 50, 1.0, 150)
    assert not enough(0, 151.0, 50, 1.0, 150)


def _node(index, op, inputs, outputs):
    return {"index": index, "op_name": op, "inputs": inputs, "outputs": outputs}


def test_placement_walks_back_from_each_delegate_partition():
    # 0 QUANTIZE (t0->t9), 1 CONV (t9,w1->t10), 2 CONV (t10,w2->t11), 3 SOFTMAX (t11->t12),
    # 4 DEQUANTIZE (t12->t13); XNNPACK took 1-2 and 4 in two partitions, SOFTMAX stays on CPU.
    details = [_node(0, "QUANTIZE", [0], [9]), _node(1, "CONV_2D", [9, 1, -1], [10]),
               _node(2, "CONV_2D", [10, 2, -1], [11]), _node(3, "SOFTMAX", [11], [12]),
               _node(4, "DEQUANTIZE", [12], [13]),
               _node(5, "DELEGATE", [9, 1, 2], [11]), _node(6, "DELEGATE", [12], [13])]
    where = placement(details)
    assert (where["nodes"], where["delegated"], where["cpu"], where["partitions"]) == (5, 3, 2, 2)
    assert where["ops_cpu"] == {"QUANTIZE": 1, "SOFTMAX": 1}
    assert where["ops_delegated"] == {"CONV_2D": 2, "DEQUANTIZE": 1}


def test_placement_of_an_edgetpu_compiled_model():
    details = [_node(0, "QUANTIZE", [0], [1]), _node(1, "edgetpu-custom-op", [1], [2]),
               _node(2, "RESHAPE", [2, 5], [3])]
    where = placement(details, "EdgeTPU")
    assert where["delegate"] == "EdgeTPU" and where["delegated"] == 1 and where["cpu"] == 2
    assert where["ops_delegated"] == {"edgetpu-custom-op": 1}


def test_placement_without_node_list_is_marked_unavailable():
    class Old(object):
        pass
    assert op_details(Old()) == []
    assert placement([])["available"] is False and placement([])["nodes"] is None


@pytest.mark.parametrize("line, expected", [
    ("RAM 2448/7620MB (lfb 1224x4MB) SWAP 0/3810MB CPU [2%@1510,1%@1510] GR3D_FREQ 0% "
     "cpu@48.5C VDD_IN 4424mW/4310mW VDD_CPU_GPU_CV 565mW/565mW VDD_SOC 1372mW/1372mW", 4424.0),
    ("RAM 1500/3964MB (lfb 5x4MB) CPU [5%@102,off,off,3%@102] EMC_FREQ 0% GR3D_FREQ 0% "
     "PLL@25C CPU@28C POM_5V_IN 2876/2876 POM_5V_GPU 0/0 POM_5V_CPU 412/412", 2876.0),
    ("RAM 1500/3964MB CPU [5%@102] VDD_CPU_GPU_CV 565mW/565mW", None),
])
def test_tegrastats_lines(line, expected):
    assert parse_tegrastats(line) == expected


def test_power_is_absent_without_a_sampler_and_tegrastats_must_exist(monkeypatch):
    assert make_sampler("none", 100) is None
    assert power_figures([], 5.0, "tegrastats") is None
    assert power_figures([4000.0, 5000.0], 2.0, "tegrastats")["energy_mj_per_inference"] == 9.0
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(EdgekitError, match="tegrastats is not on the target's PATH"):
        TegrastatsSampler(100)


def test_real_interpreter_placement_on_the_ptq_frame_model(bench_artifacts):
    from edge.interpreter import make_interpreter
    interpreter = make_interpreter(os.path.join(bench_artifacts["ptq"], "frame.tflite"),
                                   threads=1)
    where = placement(op_details(interpreter))
    assert where["available"] and where["partitions"] >= 1
    assert 0 < where["delegated"] <= where["nodes"]
    assert where["ops_delegated"].get("CONV_2D", 0) + where["ops_delegated"].get(
        "DEPTHWISE_CONV_2D", 0) >= 1


def test_device_process_measures_one_artifact_without_tensorflow(bench_artifacts, tmp_path):
    job = {"artifact": "ptq", "model_dir": bench_artifacts["ptq"], "device": "cpu",
           "delegate": None, "delegate_name": "XNNPACK", "frame_role": "frame", "threads": 1,
           "roles": ["frame", "head", "clip"], "runs": 7, "min_seconds": 0.0,
           "warmup_runs": 2, "warmup_seconds": 0.0, "stride": 2, "fps": 50.0,
           "pace_seconds": 0.5, "camera": [48, 64], "eval": None, "power": "none"}
    (tmp_path / "job.json").write_text(json.dumps(job))
    proc = subprocess.run([sys.executable, "-m", "edge.bench.device", str(tmp_path / "job.json"),
                           str(tmp_path / "out.json")], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "edgekit-bench: ptq: latency frame.tflite" in proc.stderr
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["machine"]["tensorflow_modules"] == []
    for role in ("frame", "head", "clip"):
        latency = out["latency"][role]
        assert latency["count"] >= 7 and latency["warmup"]["count"] >= 2
        assert latency["min_ms"] <= latency["p50_ms"] <= latency["p90_ms"] <= latency["p99_ms"]
        assert latency["threads"] == 1 and latency["init_ms"] > 0
    streaming = out["streaming"]
    assert streaming["stride"] == 2 and streaming["decisions"] >= 10
    assert streaming["frames"] == 2 * streaming["decisions"]
    paced = out["paced"]
    assert paced["frames_offered"] == 25
    assert paced["frames_processed"] + paced["frames_dropped"] == 25
    assert paced["decisions"] >= 1 and paced["time_to_first_decision_ms"] >= \
        paced["ideal_time_to_first_decision_ms"]
    assert out["power"] is None and out["eval_outputs"] is None and out["peak_rss_mb"] > 10


def test_device_process_reports_a_model_it_cannot_load(bench_artifacts, tmp_path):
    import shutil
    broken = tmp_path / "broken"
    shutil.copytree(bench_artifacts["ptq"], str(broken))
    job = {"artifact": "broken", "model_dir": str(broken), "device": "cpu", "delegate": None,
           "frame_role": "frame", "threads": 1, "roles": ["frame", "head"], "runs": 1,
           "min_seconds": 0, "fps": 30, "pace_seconds": 0.1, "eval": None}
    (broken / "frame.tflite").write_bytes(b"not a model at all, truncated......")
    (tmp_path / "job.json").write_text(json.dumps(job))
    proc = subprocess.run([sys.executable, "-m", "edge.bench.device", str(tmp_path / "job.json"),
                           str(tmp_path / "out.json")], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    error = json.loads((tmp_path / "out.json").read_text())["error"]
    assert "manifest does not match model" in error and "frame.tflite" in error
