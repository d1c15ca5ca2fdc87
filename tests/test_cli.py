"""The edgekit command line: lazy imports, help, and one-line errors for bad input."""

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from edge.cli import COMMANDS, HELP, main


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result


def assert_clean_error(result, *fragments):
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert lines[-1].startswith("edgekit: error: "), result.output
    for fragment in fragments:
        assert fragment in lines[-1], lines[-1]


def test_help_lists_commands_without_importing_tensorflow():
    code = ("import sys; from click.testing import CliRunner; from edge.cli import main;"
            "r = CliRunner().invoke(main, ['--help']); print(r.output);"
            "print('TF-LOADED' if any(m == 'tensorflow' or m.startswith('tensorflow.') for m in sys.modules) else 'NO-TF')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
    assert "NO-TF" in out
    for command in ("train", "eval", "quantize", "run", "summary", "data", "quickstart"):
        assert command in out


# Runs ``python -m edge.cli COMMAND --help`` in this interpreter, then says whether TensorFlow
# got imported: what a user typing ``edgekit quantize --help`` waits for.
HELP_PROBE = """
import runpy, sys
sys.argv = ["edgekit"] + sys.argv[1:]
try:
    runpy.run_module("edge.cli", run_name="__main__")
except SystemExit as exc:
    code = exc.code
print("EXIT", code, "TENSORFLOW", "tensorflow" in sys.modules)
"""


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_help_is_tensorflow_free(command):
    """``edgekit quantize --help`` used to load TensorFlow (seconds, and a host-only install)."""
    proc = subprocess.run([sys.executable, "-c", HELP_PROBE, command, "--help"],
                          capture_output=True, text=True, timeout=120)
    assert "EXIT 0 TENSORFLOW False" in proc.stdout, proc.stdout + proc.stderr
    assert "Usage:" in proc.stdout and command in proc.stdout


def test_help_says_what_each_command_does():
    assert set(HELP) == set(COMMANDS)
    result = run("--help")
    assert result.exit_code == 0
    for name, line in HELP.items():
        assert 0 < len(line) <= 64, name
        assert any(row.split() == [name] + line.split() for row in result.output.splitlines()), \
            (name, result.output)


def test_summary_prints_blocks_and_total():
    result = run("summary", "--backbone", "test_tiny", "--size", "32x32", "--clip-length", "4",
                 "--head-size", "tiny")
    assert result.exit_code == 0, result.output
    for block in ("backbone", "spatial", "temporal", "head:action", "head:identity", "total"):
        assert block in result.output


def test_train_and_eval_from_the_command_line(swim_clips_dir, tmp_path):
    out = tmp_path / "run"
    result = run("train", "--data", swim_clips_dir, "--out", out, "--backbone", "test_tiny", "--size", "32x32",
                 "--clip-length", "8", "--head-size", "tiny", "--epochs", "1", "--batch-size", "8")
    assert result.exit_code == 0, result.output
    assert "test metrics" in result.output and "identity" in result.output
    result = run("eval", "--run", out, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["split"] == "test" and set(data["tasks"]) == {"action", "identity"}


def test_bad_input_is_one_line_and_exit_1(tmp_path, swim_clips_dir):
    assert_clean_error(run("train", "--data", tmp_path / "nope", "--out", tmp_path / "r"), "does not exist")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_clean_error(run("train", "--data", empty, "--out", tmp_path / "r2", "--backbone", "test_tiny"))
    assert_clean_error(run("train", "--data", swim_clips_dir, "--out", tmp_path / "r3", "--backbone", "resnet9"),
                       "unknown backbone")
    assert_clean_error(run("train", "--data", swim_clips_dir, "--out", tmp_path / "r4", "--size", "axb"), "HxW")
    bad_labels = tmp_path / "badlabels"
    bad_labels.mkdir()
    (bad_labels / "labels.json").write_text("{not json")
    assert_clean_error(run("train", "--data", bad_labels, "--out", tmp_path / "r5", "--backbone", "test_tiny"))
    faces = tmp_path / "faces"
    faces.mkdir()
    (faces / "not_a_face.jpg").write_bytes(b"x")
    assert_clean_error(run("train", "--task", "face", "--data", faces, "--out", tmp_path / "r6",
                           "--backbone", "test_tiny"))
    assert_clean_error(run("eval", "--run", tmp_path / "missing-run"), "does not exist")
    not_a_run = tmp_path / "notrun"
    not_a_run.mkdir()
    assert_clean_error(run("eval", "--run", not_a_run), "not an edgekit run")
