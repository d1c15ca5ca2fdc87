"""`edgekit bench` end to end: local and over a real sshd, outputs, compare, and bad input.

Settings are minimal (few runs, short paced run, small camera frames) so the module is fast; no
assertion is about how fast anything is.
"""

import csv
import json
import os
import re
import shutil
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from edge.cli import main

FAST = ["--runs", "3", "--min-seconds", "0", "--warmup-seconds", "0", "--pace-seconds", "0.3",
        "--fps", "40", "--camera", "64x48", "--stride", "2"]


def _devices(tmp_path, body):
    path = tmp_path / "devices.toml"
    path.write_text(body)
    return str(path)


def _local(tmp_path, extra=""):
    return _devices(tmp_path, '[devices.here]\npython = "%s"\nthreads = 1\n%s'
                    % (sys.executable, extra))


def _bench(args):
    return CliRunner().invoke(main, ["bench"] + args)


def _expected_outputs(model_dir, clips):
    """Head outputs per clip by direct interpreter calls (independent of edge.runner): each
    clip's frame outputs made into the head's inputs the textbook way."""
    from edge.manifest import Manifest
    from edge.tflite_inspect import signature_indices
    from quantize.quantization.runner import dequantize
    from tests.fixtures.edge import frame_outputs, run_signature, textbook_window

    manifest = Manifest.load(model_dir)
    result = {}
    for clip in clips:
        outputs, head = frame_outputs(model_dir, clip)
        values = run_signature(head, textbook_window(model_dir, outputs, 0, len(clip) - 1))
        details = {d["index"]: d for d in head.get_output_details()}
        outs = signature_indices(head)["outputs"]
        for task in manifest.tasks:
            value = values[task.output]
            if value.dtype != np.float32:
                value = dequantize(value, details[outs[task.output]])
            result.setdefault(task.name, []).append(value[0].reshape(-1))
    return {k: np.stack(v) for k, v in result.items()}


@pytest.fixture(scope="module")
def local_run(bench_artifacts, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench_local")
    devices = _local(tmp)
    out = tmp / "out"
    result = _bench(["--device", "here", "--devices", devices, "--model", bench_artifacts["root"],
                     "--out", str(out)] + FAST)
    assert result.exit_code == 0, result.output
    return out, result


def test_local_bench_measures_every_artifact(local_run, bench_artifacts, tiny_swim_run):
    out, result = local_run
    data = json.loads((out / "results.json").read_text())
    assert data["schema"] == "edgekit-bench/1"
    assert [(r["target"], r["artifact"], r["method"]) for r in data["records"]] == \
        [("here", "fp32", "fp32"), ("here", "ptq", "ptq")]
    machine = data["targets"]["here"]["machine"]
    assert machine["runtime"]["package"] in ("ai_edge_litert", "tflite_runtime")
    assert machine["tensorflow_modules"] == [] and machine["python"] and machine["cpu_count"]
    assert data["targets"]["here"]["config"]["threads"] == 1
    for record in data["records"]:
        report = json.loads(open(os.path.join(record["model_dir"], "report.json")).read())
        assert record["params"]["frame"] == report["artifacts"]["frame"]["params"]
        assert record["params"]["blocks"]["total"] == report["parameters"]["total"]
        for role in ("frame", "step", "head", "clip"):
            assert record["size"][role] == {k: report["artifacts"][role][k]
                                            for k in ("raw_bytes", "gzip_bytes")}
            latency = record["latency"][role]
            assert latency["count"] >= 3 and latency["threads"] == 1
            assert set(latency) >= {"init_ms", "first_inference_ms", "warmup", "p50_ms",
                                    "p90_ms", "p99_ms", "mean_ms", "std_ms", "min_ms"}
            assert record["placement"][role]["nodes"] >= record["placement"][role]["delegated"]
        # what a camera gets: the streaming models, not clip.tflite
        assert record["deployed"]["raw_bytes"] == sum(
            record["size"][role]["raw_bytes"] for role in ("frame", "step", "head"))
        assert record["streaming"]["stride"] == 2 and record["streaming"]["camera"] == [48, 64]
        assert record["paced"]["frames_offered"] == 12
        assert record["power"] is None
        assert record["eval"]["clips"] == len(report and json.load(open(
            os.path.join(str(tiny_swim_run), "run.json")))["splits"]["test"])
    ptq, fp32 = data["records"][1], data["records"][0]
    assert ptq["placement"]["frame"]["ops_cpu"] != fp32["placement"]["frame"]["ops_cpu"] or \
        ptq["placement"]["frame"]["ops_delegated"] != fp32["placement"]["frame"]["ops_delegated"]


def test_accuracy_is_computed_on_the_target_and_scored_with_the_eval_function(
        local_run, bench_artifacts, tiny_swim_run):
    from quantize.datasets import load_task_data
    from edge.metrics import score
    from quantize.runs import read_run

    out, _ = local_run
    data = json.loads((out / "results.json").read_text())
    info = read_run(str(tiny_swim_run))
    test = load_task_data(info.config, info.data_dir).select(info.splits["test"])
    for record in data["records"]:
        expected = score(info.config, _expected_outputs(record["model_dir"], test.x),
                         test.targets)
        for task in ("action", "identity"):
            got = record["accuracy"][task]
            assert got["count"] == len(test.names)
            assert got["confusion"] == expected[task]["confusion"]
            assert got["accuracy"] == pytest.approx(expected[task]["accuracy"])
        assert record["accuracy"]["identity"]["rank1"] == pytest.approx(
            expected["identity"]["rank1"], abs=1e-6)


def test_outputs_csv_markdown_and_pareto(local_run):
    out, result = local_run
    rows = list(csv.reader(open(str(out / "results.csv"))))
    header = rows[0]
    assert len(rows) == 3
    for column in ("frame_p50_ms", "head_p99_ms", "clip_gzip_bytes", "cost_per_decision_ms",
                   "paced_dropped", "time_to_first_decision_ms", "peak_rss_mb",
                   "action_score", "identity_score", "frame_delegated_nodes"):
        assert column in header
    assert rows[1][header.index("artifact")] == "fp32"
    markdown = (out / "results.md").read_text()
    assert markdown.splitlines()[0].startswith("| Target | Artifact | Method | Size (KB)")
    assert re.search(r"^\| here \| ptq \| ptq \| [\d.]+ \| [\d.]+ \| \d+ \| [\d.]+ \| [\d.]+ \|",
                     markdown, re.M), markdown
    assert markdown.splitlines()[0] in result.output  # the table is printed too
    png = (out / "pareto.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_compare_two_runs(local_run, bench_artifacts, tmp_path):
    out, _ = local_run
    devices = _local(tmp_path)
    result = _bench(["--device", "here", "--devices", devices, "--model", bench_artifacts["ptq"],
                     "--out", str(tmp_path / "b"), "--json"] + FAST)
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["records"][0]["artifact"] == "ptq"
    result = CliRunner().invoke(main, ["bench", "compare", str(out),
                                       str(tmp_path / "b" / "results.json")])
    assert result.exit_code == 0, result.output
    assert "here/ptq  vs  here/ptq" in result.output and "here/fp32" not in result.output
    line = [l for l in result.output.splitlines() if l.strip().startswith("size (KB)")][0]
    assert line.split()[-1] == "1.000"  # same files
    assert re.search(r"frame p50 \(ms\)\s+\S+\s+\S+\s+\d+\.\d{3}", result.output)
    result = CliRunner().invoke(main, ["bench", "compare", str(out), str(tmp_path / "nope")])
    assert result.exit_code == 1 and "no benchmark results at" in result.output


def test_remote_bench_over_a_real_sshd(sshd_server, bench_artifacts, tmp_path):
    devices = _devices(tmp_path, sshd_server.device_toml("loop"))
    out = tmp_path / "remote"
    result = _bench(["--device", "loop", "--devices", devices, "--model", bench_artifacts["ptq"],
                     "--out", str(out)] + FAST)
    assert result.exit_code == 0, result.output
    data = json.loads((out / "results.json").read_text())
    record = data["records"][0]
    machine = data["targets"]["loop"]["machine"]
    # the copied runtime ran, from a temp folder under workdir, and the folder is gone
    assert re.match(r"/tmp/edgekit-bench\.\w+/edge$", machine["edge_package"]), machine
    assert not os.path.exists(os.path.dirname(machine["edge_package"]))
    assert machine["tensorflow_modules"] == []
    assert data["targets"]["loop"]["config"]["transport"] == "ssh"
    assert record["accuracy"]["action"]["count"] == record["eval"]["clips"] > 0
    assert record["latency"]["frame"]["count"] >= 3


def test_remote_check_and_device_failures_come_back_with_stderr(sshd_server, bench_artifacts,
                                                                tmp_path):
    devices = _devices(tmp_path, sshd_server.device_toml("loop")
                       + sshd_server.device_toml("nopython", python="/opt/no/python3")
                       + sshd_server.device_toml("tpu", extra='backend = "edgetpu"'))
    result = CliRunner().invoke(main, ["devices", "check", "loop", "--devices", devices])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("loop: ok: python ")
    result = _bench(["--device", "nopython", "--devices", devices, "--model",
                     bench_artifacts["ptq"], "--out", str(tmp_path / "x")] + FAST)
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1 or "Traceback" not in result.output
    assert re.search(r"edgekit: error: device nopython: the bench of ptq failed \(exit 127\) "
                     r"without a result; the device said: .*/opt/no/python3.*(not found|No such)",
                     result.output), result.output
    result = CliRunner().invoke(main, ["devices", "check", "tpu", "--devices", devices])
    assert result.exit_code == 1
    assert re.search(r"tpu: FAILED: .*libedgetpu", result.output), result.output


def _one_error_line(result):
    assert result.exit_code == 1, result.output
    lines = [l for l in result.output.splitlines() if l.startswith("edgekit: error:")]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def test_unknown_device_and_unreachable_host(tmp_path, bench_artifacts):
    from tests.fixtures.sshd import free_port
    devices = _devices(tmp_path, '[devices.gone]\ntransport = "ssh"\nhost = "127.0.0.1"\n'
                                 'port = %d\nconnect_timeout = 5\n' % free_port())
    line = _one_error_line(_bench(["--device", "jetsn", "--devices", devices, "--model",
                                   bench_artifacts["ptq"]]))
    assert "unknown device 'jetsn'" in line and "defines: gone" in line
    line = _one_error_line(_bench(["--device", "gone", "--devices", devices, "--model",
                                   bench_artifacts["ptq"], "--out", str(tmp_path / "o")] + FAST))
    assert re.search(r"device gone: cannot reach 127\.0\.0\.1:\d+ over ssh \(.*refused", line)


def test_missing_and_mismatched_artifacts(tmp_path, bench_artifacts):
    devices = _local(tmp_path)
    line = _one_error_line(_bench(["--device", "here", "--devices", devices, "--model",
                                   str(tmp_path / "nothing")]))
    assert "--model %s does not exist" % (tmp_path / "nothing") in line
    (tmp_path / "empty").mkdir()
    line = _one_error_line(_bench(["--device", "here", "--devices", devices, "--model",
                                   str(tmp_path / "empty")]))
    assert "has no manifest.json, nor do its subfolders" in line
    broken = tmp_path / "broken"
    shutil.copytree(bench_artifacts["ptq"], str(broken))
    os.remove(str(broken / "head.tflite"))
    line = _one_error_line(_bench(["--device", "here", "--devices", devices, "--model",
                                   str(broken)]))
    assert "head.tflite (head model) is missing" in line
    line = _one_error_line(_bench(["--devices", devices, "--model", str(broken)]))
    assert "--device NAME is required" in line
    line = _one_error_line(_bench(["--device", "here", "--devices", devices, "--model",
                                   bench_artifacts["ptq"], "--fps", "0"]))
    assert "--fps must be > 0" in line


def test_coral_target_without_libedgetpu_and_without_edgetpu_model(tmp_path, bench_artifacts,
                                                                  fake_edgetpu_artifact):
    devices = _local(tmp_path, 'backend = "edgetpu"\nbackend_options = { device = "usb" }\n')
    line = _one_error_line(_bench(["--device", "here", "--devices", devices, "--model",
                                   bench_artifacts["ptq"]]))
    assert "runs edgetpu models (backend edgetpu)" in line and "has no edgetpu variant" in line
    line = _one_error_line(_bench(["--device", "here", "--devices", devices, "--model",
                                   fake_edgetpu_artifact, "--out", str(tmp_path / "o")] + FAST))
    assert re.search(r"device here, artifact ptq_edgetpu: .*libedgetpu", line), line


def test_a_model_the_target_cannot_run(tmp_path, bench_artifacts):
    """A frame model using an op this runtime lacks (a custom op, as in an Edge TPU model run
    without its delegate): the host's checks pass, the target refuses it, one line."""
    from ai_edge_litert.tools import flatbuffer_utils
    from edge.manifest import Manifest, sha256_file

    model_dir = tmp_path / "custom_op"
    shutil.copytree(bench_artifacts["ptq"], str(model_dir))
    path = str(model_dir / "frame.tflite")
    model = flatbuffer_utils.read_model(path)
    code = [c for c in model.operatorCodes if c.builtinCode in (3, 4)][0]  # (DEPTHWISE_)CONV_2D
    code.builtinCode = code.deprecatedBuiltinCode = 32  # CUSTOM
    code.customCode = b"edgetpu-custom-op"
    flatbuffer_utils.write_model(model, path)
    manifest = Manifest.load(str(model_dir))
    manifest.models["frame"].sha256 = sha256_file(path)
    manifest.models["frame"].size_bytes = os.path.getsize(path)
    manifest.save(str(model_dir))
    devices = _local(tmp_path)
    line = _one_error_line(_bench(["--device", "here", "--devices", devices, "--model",
                                   str(model_dir), "--out", str(tmp_path / "o")] + FAST))
    assert re.search(r"device here, artifact custom_op: cannot load .*frame\.tflite: Encountered "
                     r"unresolved custom op: edgetpu-custom-op", line), line


def test_a_delegate_library_that_is_not_a_delegate(tmp_path, bench_artifacts):
    """A delegate path that exists but is no delegate: the target refuses, one line."""
    devices = _local(tmp_path, 'backend = "delegate"\nbackend_options = { library = "%s" }\n'
                     % os.path.join(os.path.dirname(np.__file__), "__init__.py"))
    line = _one_error_line(_bench(["--device", "here", "--devices", devices, "--model",
                                   bench_artifacts["ptq"], "--out", str(tmp_path / "o")] + FAST))
    assert "device here, artifact ptq: cannot load delegate" in line


@pytest.mark.hardware
@pytest.mark.parametrize("name", ["jetson", "coral"])
def test_real_hardware_target(name, bench_artifacts, tmp_path):
    """Runs only with EDGEKIT_HARDWARE=jetson,coral and the targets reachable per devices.toml."""
    if name not in os.environ.get("EDGEKIT_HARDWARE", "").split(","):
        pytest.skip("no %s attached to this machine (set EDGEKIT_HARDWARE=%s and configure "
                    "devices.toml to run it)" % (name, name))
    result = _bench(["--device", name, "--model", bench_artifacts["root"], "--out",
                     str(tmp_path / name)])
    assert result.exit_code == 0, result.output
