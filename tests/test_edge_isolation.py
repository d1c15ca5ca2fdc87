"""edge/ runs without TensorFlow and stays within Python 3.9 syntax."""

import ast
import os
import subprocess
import sys
import textwrap

from tests.fixtures.edge import CLIP_LENGTH, VIDEO_FRAMES, edge_model_dir, edge_video  # noqa: F401

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EDGE = os.path.join(ROOT, "edge")


def test_every_edge_module_parses_as_python39():
    files = [f for f in sorted(os.listdir(EDGE)) if f.endswith(".py")]
    assert "runner.py" in files and "manifest.py" in files
    for name in files:
        with open(os.path.join(EDGE, name), encoding="utf-8") as handle:
            ast.parse(handle.read(), filename=name, feature_version=(3, 9))


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
    import json
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report == {"windows": VIDEO_FRAMES - CLIP_LENGTH + 1, "exit": 0, "tf": []}
