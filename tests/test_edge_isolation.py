"""edge/ runs without TensorFlow and stays within Python 3.9 syntax."""

import ast
import json
import os
import subprocess
import sys
import textwrap

from tests.fixtures.edge import CLIP_LENGTH, VIDEO_FRAMES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EDGE = os.path.join(ROOT, "edge")


def test_every_edge_module_parses_as_python39():
    files = sorted(os.path.relpath(os.path.join(d, f), EDGE) for d, _, names in os.walk(EDGE)
                   for f in names if f.endswith(".py"))
    assert "runner.py" in files and "manifest.py" in files
    assert any(f.startswith("serve" + os.sep) for f in files) and any(f.startswith("bench" + os.sep) for f in files)
    for name in files:
        with open(os.path.join(EDGE, name), encoding="utf-8") as handle:
            ast.parse(handle.read(), filename=name, feature_version=(3, 9))


def test_importing_every_edge_module_loads_no_tensorflow():
    code = textwrap.dedent("""
        import importlib, json, pkgutil, sys
        import edge
        names = [m.name for m in pkgutil.walk_packages(edge.__path__, "edge.")]
        for name in names:
            importlib.import_module(name)
        loaded = sorted(m for m in sys.modules if m == "tensorflow" or m.startswith("tensorflow.")
                        or m.startswith("tf_keras"))
        print(json.dumps({"modules": len(names), "tf": loaded}))
    """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["modules"] > 20 and report["tf"] == []


def test_streaming_loads_no_tensorflow(edge_model_dir, edge_video, tmp_path):
    code = textwrap.dedent("""
        import json, sys
        import edge, edge.runner, edge.run_cli, edge.sources, edge.gallery
        from click.testing import CliRunner
        from edge.cli import main
        from edge.runner import StreamingRunner
        from edge.sources import FrameSource
        runner = StreamingRunner(sys.argv[1], rois=[(0, 0, 32, 32)])
        windows = sum(len(runner.process(f, i, t)) for i, t, f in FrameSource(sys.argv[2]))
        result = CliRunner().invoke(main, ["run", "--model", sys.argv[1], "--source", sys.argv[2],
                                           "--jsonl", sys.argv[3]])
        loaded = sorted(m for m in sys.modules if m == "tensorflow" or m.startswith("tensorflow.")
                        or m.startswith("tf_keras") or m.startswith("keras"))
        print(json.dumps({"windows": windows, "exit": result.exit_code, "tf": loaded}))
    """)
    proc = subprocess.run([sys.executable, "-c", code, edge_model_dir, edge_video,
                           str(tmp_path / "o.jsonl")], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report == {"windows": VIDEO_FRAMES - CLIP_LENGTH + 1, "exit": 0, "tf": []}


def _requirements(text):
    """Distribution names (lower case, '-' for '_') of a setup.cfg requirement list."""
    names = []
    for line in text.splitlines():
        line = line.split("#")[0].strip()
        if line:
            name = line.split(";")[0]
            for stop in "<>=!~[ ":
                name = name.split(stop)[0]
            names.append(name.strip().lower().replace("_", "-"))
    return names


def _device_requirements():
    import configparser
    config = configparser.ConfigParser()
    config.read(os.path.join(ROOT, "setup.cfg"))
    return (_requirements(config["options"]["install_requires"])
            + _requirements(config["options.extras_require"]["device"]))


def test_device_install_pulls_no_tensorflow():
    names = _device_requirements()
    assert "numpy" in names and "ai-edge-litert" in names
    banned = [n for n in names if "tensorflow" in n or n in ("tf-keras", "keras", "tf-nightly")]
    assert banned == []


# module imported -> the distribution that provides it
DISTRIBUTION_OF = {"numpy": "numpy", "cv2": "opencv-python-headless", "click": "click",
                   "tomli": "tomli", "ai_edge_litert": "ai-edge-litert"}


def test_runtime_needs_only_the_device_requirements(edge_model_dir, edge_video, tmp_path):
    """What `edgekit run` and `edgekit enroll` import is covered by install_requires + [device]:
    a camera with `pip install edgekit[device]` has every module they load."""
    code = textwrap.dedent("""
        import json, sys
        before = set(sys.modules)
        from click.testing import CliRunner
        from edge.cli import main
        CliRunner().invoke(main, ["run", "--model", sys.argv[1], "--source", sys.argv[2],
                                  "--jsonl", sys.argv[3]], catch_exceptions=False)
        top = sorted({m.split(".")[0] for m in set(sys.modules) - before})
        print(json.dumps([m for m in top if m not in sys.stdlib_module_names
                          and not m.startswith("_")]))
    """)
    proc = subprocess.run([sys.executable, "-c", code, edge_model_dir, edge_video,
                           str(tmp_path / "o.jsonl")], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    third_party = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "edge" in third_party and "ai_edge_litert" in third_party
    allowed = set(_device_requirements())
    missing = [m for m in third_party if m != "edge" and DISTRIBUTION_OF.get(m) not in allowed]
    assert missing == []


def _edge_modules():
    return sorted(os.path.join(d, f) for d, _, names in os.walk(EDGE) for f in names
                  if f.endswith(".py"))


def test_no_edge_module_imports_tensorflow_or_the_host_package():
    """The import graph, statically: every import statement under edge/ (the bench harness, the
    data loaders and the metrics included), at module level or inside a function."""
    banned = ("tensorflow", "tf_keras", "keras", "tensorflow_model_optimization", "quantize")
    found = []
    for path in _edge_modules():
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read(), filename=path)
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            found += ["%s: %s" % (os.path.relpath(path, ROOT), n) for n in names
                      if n.split(".")[0] in banned]
    # the one sanctioned exception: the interpreter's last resort on a workstation
    assert found == ["edge/backends/litert.py: tensorflow.lite"]


BENCH_IN_A_SUBPROCESS = textwrap.dedent("""
    import json, os, sys
    sys.modules["matplotlib"] = None  # as on a board without the plot extra: import fails
    before = set(sys.modules)
    from click.testing import CliRunner
    from edge.cli import main
    args = ["--device", "local", "--runs", "2", "--min-seconds", "0", "--warmup-seconds", "0",
            "--pace-seconds", "0.2", "--fps", "40", "--camera", "64x48"]
    help_result = CliRunner().invoke(main, ["bench", "--help"])
    help_tf = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "tf_keras"))
    runs = []
    for target, out in zip(sys.argv[1:3], sys.argv[3:5]):
        result = CliRunner().invoke(main, ["bench", "--model", target, "--out", out] + args)
        runs.append({"exit": result.exit_code, "stderr": result.stderr,
                     "output": result.stdout})
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "tf_keras",
                                                                  "keras", "quantize"))
    top = sorted({m.split(".")[0] for m in set(sys.modules) - before})
    print(json.dumps({"help": help_result.exit_code, "help_tf": help_tf, "runs": runs,
                      "loaded": loaded,
                      "third_party": [m for m in top if m not in sys.stdlib_module_names
                                      and not m.startswith("_")]}))
""")


def test_bench_on_a_tflite_file_and_a_model_dir_loads_no_tensorflow(edge_model_dir, tmp_path):
    """`edgekit bench --device local` as on a board: on a plain .tflite and on a model directory
    (eval clips read with edge.data, scored with edge.metrics), without matplotlib, without a
    devices.toml. Neither the harness nor the measuring process loads TensorFlow or quantize/,
    and what the harness imports is covered by install_requires + [device] + [bench]."""
    import configparser

    outs = [str(tmp_path / "file"), str(tmp_path / "dir")]
    env = dict(os.environ, EDGEKIT_DEVICES=str(tmp_path / "no-devices.toml"))
    proc = subprocess.run([sys.executable, "-c", BENCH_IN_A_SUBPROCESS,
                           os.path.join(edge_model_dir, "frame.tflite"), edge_model_dir] + outs,
                          cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["help"] == 0 and report["help_tf"] == []
    for run, out in zip(report["runs"], outs):
        assert run["exit"] == 0, run
        assert "no Pareto plot: " in run["stderr"]
        data = json.load(open(os.path.join(out, "results.json")))
        assert data["targets"]["local"]["config"]["source"] == "built in"
        assert data["targets"]["local"]["machine"]["tensorflow_modules"] == []
    assert "matplotlib is not installed" in report["runs"][1]["stderr"]
    dir_record = json.load(open(os.path.join(outs[1], "results.json")))["records"][0]
    assert dir_record["accuracy"]["action"]["count"] == dir_record["eval"]["clips"] > 0
    assert report["loaded"] == []
    config = configparser.ConfigParser()
    config.read(os.path.join(ROOT, "setup.cfg"))
    allowed = set(_device_requirements()) | set(
        _requirements(config["options.extras_require"]["bench"]))
    missing = [m for m in report["third_party"]
               if m != "edge" and DISTRIBUTION_OF.get(m) not in allowed]
    assert missing == []
