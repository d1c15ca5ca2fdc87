"""`edgekit bench --model FILE.tflite`: any TFLite file, no manifest, on a model edgekit did not
make (tests/fixtures/foreign.py: a tf.keras MobileNetV2 converted by the plain TFLiteConverter).

The figures are checked for consistency with each other and with the file, never for speed.
LiteRT's own tool is compared in benchmarks/bench_vs_litert.py --tflite FILE (timing, so not here).
"""

import csv
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST = ["--runs", "5", "--min-seconds", "0", "--warmup-seconds", "0"]


def _edgekit(args, tmp_path):
    """`edgekit ARGS` in a fresh process, as a user on a board runs it: no devices.toml."""
    env = dict(os.environ, PYTHONPATH=ROOT, EDGEKIT_DEVICES=str(tmp_path / "none.toml"))
    return subprocess.run([sys.executable, "-m", "edge.cli"] + args, cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, timeout=600)


def _operators(path):
    """Operator count of the model's main subgraph, read from the flatbuffer itself."""
    from ai_edge_litert.tools import flatbuffer_utils

    return len(flatbuffer_utils.read_model(path).subgraphs[0].operators)


def test_bench_times_a_tflite_file_edgekit_did_not_make(foreign_tflite, tmp_path):
    out = tmp_path / "out"
    proc = _edgekit(["bench", "--device", "local", "--model", foreign_tflite, "--out", str(out),
                     "--threads", "1"] + FAST, tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads((out / "results.json").read_text())
    record = data["records"][0]
    assert (record["target"], record["artifact"], record["kind"]) == \
        ("local", "mobilenet_v2_035.tflite", "tflite")
    assert record["size"]["model"]["raw_bytes"] == os.path.getsize(foreign_tflite)
    assert 0 < record["size"]["model"]["gzip_bytes"] < record["size"]["model"]["raw_bytes"]
    latency = record["latency"]["model"]
    assert latency["count"] >= 5 and latency["warmup"]["count"] >= 1 and latency["threads"] == 1
    assert latency["init_ms"] > 0 and latency["first_inference_ms"] > 0
    assert latency["min_ms"] <= latency["p50_ms"] <= latency["p90_ms"] <= latency["p99_ms"] \
        <= latency["max_ms"]
    assert latency["min_ms"] <= latency["mean_ms"] <= latency["max_ms"]
    assert latency["inputs"] == [{"name": latency["inputs"][0]["name"],
                                  "shape": [1, 96, 96, 3], "dtype": "uint8"}]
    assert [o["shape"] for o in latency["outputs"]] == [[1, 10]]
    where = record["placement"]["model"]
    assert where["available"] and where["nodes"] == _operators(foreign_tflite)
    assert where["nodes"] == where["delegated"] + where["cpu"] and where["delegated"] > 0
    assert sum(where["ops_delegated"].values()) == where["delegated"]
    assert where["ops_delegated"].get("CONV_2D", 0) > 0
    assert record["accuracy"] is None and "no manifest" in record["eval"]["skipped"]
    assert record["peak_rss_mb"] >= record["rss_before_load_mb"] > 0
    assert data["targets"]["local"]["machine"]["tensorflow_modules"] == []
    # the printed table says what was measured and that accuracy was not
    assert "| local | mobilenet_v2_035.tflite |" in proc.stdout
    assert "accuracy is not measured" in proc.stdout
    assert "no Pareto plot: no record has both accuracy and latency" in proc.stderr
    assert not (out / "pareto.png").exists()
    rows = list(csv.reader(open(str(out / "results.csv"))))
    row = dict(zip(rows[0], rows[1]))
    assert float(row["model_p50_ms"]) == round(latency["p50_ms"], 6)
    assert int(row["model_raw_bytes"]) == record["size"]["model"]["raw_bytes"]


def test_a_file_that_is_not_a_tflite_model_is_one_line(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a model")
    proc = _edgekit(["bench", "--device", "local", "--model", str(text)], tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "edgekit: error: --model %s is a file but not a .tflite model; give a .tflite file or a "
        "folder written by 'edgekit quantize'" % text]
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"\0" * 64)
    proc = _edgekit(["bench", "--device", "local", "--model", str(broken), "--out",
                     str(tmp_path / "o")] + FAST, tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("edgekit: error: device local, artifact broken.tflite: "), last


def test_without_a_devices_file_only_the_built_in_local_target_exists(tmp_path):
    proc = _edgekit(["devices", "list"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "# no devices file (%s)" % (tmp_path / "none.toml")
    assert [l.split()[0] for l in proc.stdout.splitlines()[1:]] == ["local"]
    proc = _edgekit(["bench", "--device", "cpu", "--model", str(tmp_path)], tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "edgekit: error: devices file %s does not exist; pass --devices FILE, set "
        "EDGEKIT_DEVICES, or bench this machine with --device local (built in, needs no "
        "devices file)" % (tmp_path / "none.toml")]
