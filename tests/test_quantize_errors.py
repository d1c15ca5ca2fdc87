"""Bad input to ``edgekit quantize``: one-line errors, exit 1, nothing left that looks complete."""

import json
import os

import pytest
from click.testing import CliRunner

from edge.cli import main
from edge.errors import EdgekitError
from quantize.quantization.pipeline import check_arguments


def _run(args):
    result = CliRunner().invoke(main, ["quantize"] + args)
    return result.exit_code, result.output


@pytest.mark.parametrize("args, needle", [
    (("ptq", 0.5, None, 10, "cpu"), "--sparsity only applies"),
    (("prune-qat", 1.0, None, 10, "cpu"), "between 0 and 1"),
    (("prune-qat", 0.0, None, 10, "cpu"), "between 0 and 1"),
    (("prune-qat", -0.2, None, 10, "cpu"), "between 0 and 1"),
    (("qat", None, 0, 10, "cpu"), "--epochs"),
    (("ptq", None, None, 0, "cpu"), "--calibration"),
    (("fp16", None, None, 10, "coral"), "full-integer"),
    (("int4", None, None, 10, "cpu"), "unknown --method"),
])
def test_bad_arguments_are_rejected_before_any_work(args, needle):
    with pytest.raises(EdgekitError, match=needle):
        check_arguments(*args)


def test_prune_qat_defaults_to_half_sparsity():
    assert check_arguments("prune-qat", None, None, 10, "cpu") == 0.5


def test_missing_run_dir_is_one_line_error(tmp_path):
    out = tmp_path / "out"
    code, output = _run(["--run", str(tmp_path / "nope"), "--method", "ptq", "--out", str(out)])
    assert code == 1
    assert "does not exist" in output and "Traceback" not in output
    assert len(output.strip().splitlines()) == 1
    assert not out.exists()


def test_non_run_dir_is_one_line_error(tmp_path):
    (tmp_path / "notarun").mkdir()
    (tmp_path / "notarun" / "run.json").write_text(json.dumps({"kind": "something-else"}))
    out = tmp_path / "out"
    code, output = _run(["--run", str(tmp_path / "notarun"), "--method", "ptq", "--out", str(out)])
    assert code == 1 and "not an edgekit run" in output and "Traceback" not in output
    assert not out.exists()


def test_unknown_method_is_refused_by_the_cli(tmp_path):
    code, output = _run(["--run", str(tmp_path), "--method", "int4", "--out", str(tmp_path / "o")])
    assert code != 0 and "int4" in output


def test_impossible_sparsity_via_cli(tmp_path):
    code, output = _run(["--run", str(tmp_path), "--method", "prune-qat", "--sparsity", "1.5",
                         "--out", str(tmp_path / "o")])
    assert code == 1 and "between 0 and 1" in output and "Traceback" not in output


def test_out_dir_that_is_not_ours_is_not_clobbered(tmp_path):
    from quantize.quantization.artifacts import check_out_dir

    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("x")
    with pytest.raises(EdgekitError, match="not an edgekit model directory"):
        check_out_dir(str(precious))
    assert (precious / "thesis.tex").exists()


def test_staging_dir_leaves_nothing_when_interrupted(tmp_path):
    from quantize.quantization.artifacts import staging_dir

    out = tmp_path / "models"
    with pytest.raises(KeyboardInterrupt):
        with staging_dir(str(out)) as stage:
            open(os.path.join(stage, "frame.tflite"), "wb").write(b"half")
            raise KeyboardInterrupt
    assert not out.exists()
    assert os.listdir(tmp_path) == []


@pytest.mark.slow
def test_no_calibration_samples(tiny_swim_run, tmp_path):
    """A run whose stored training split is empty has nothing to calibrate with."""
    import shutil

    from quantize.quantization.pipeline import quantize_run

    run = tmp_path / "run"
    shutil.copytree(str(tiny_swim_run), str(run))
    meta = json.loads((run / "run.json").read_text())
    meta["splits"]["train"] = []
    (run / "run.json").write_text(json.dumps(meta))
    with pytest.raises(EdgekitError, match="no calibration samples"):
        quantize_run(str(run), str(tmp_path / "out"), "ptq", calibration=8, verbose=0)
    assert not (tmp_path / "out").exists()
