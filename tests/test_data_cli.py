"""'edgekit data synth' and 'edgekit data info' through the real top-level CLI."""

from click.testing import CliRunner

from edge.cli import main


def test_synth_then_info_swim(tmp_path):
    out = tmp_path / "swim"
    runner = CliRunner()
    result = runner.invoke(main, ["data", "synth", "--kind", "swim", "--out", str(out),
                                  "--clips-per-pair", "1", "--frames", "3", "--size", "16x24",
                                  "--identities", "3", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert "wrote 12 clips (3 frames, 16x24, .avi)" in result.output
    (out / "badname.avi").write_bytes(b"x")
    result = runner.invoke(main, ["data", "info", str(out)])
    assert result.exit_code == 0, result.output
    assert "12 usable, 1 skipped" in result.output
    assert "freestyle 3" in result.output and "swimmer3 4" in result.output
    assert "skipped badname.avi" in result.output
    (out / "safe_swimmer1_9.avi").write_bytes(b"not a video")
    result = runner.invoke(main, ["data", "info", str(out), "--frames", "3"])
    assert result.exit_code == 0, result.output
    assert "decoded 13 clips with 3 frames: 1 unusable" in result.output
    assert "skipped safe_swimmer1_9.avi: cannot open" in result.output
    result = runner.invoke(main, ["data", "info", str(out), "--frames", "4"])
    assert "decoded 13 clips with 4 frames: 13 unusable" in result.output


def test_synth_then_info_face(tmp_path):
    out = tmp_path / "faces"
    runner = CliRunner()
    result = runner.invoke(main, ["data", "synth", "--kind", "face", "--out", str(out),
                                  "--count", "7", "--size", "24x24"])
    assert result.exit_code == 0, result.output
    assert "wrote 7 face images (24x24)" in result.output
    (out / "3_9_1_2017.jpg").write_bytes(b"x")
    result = runner.invoke(main, ["data", "info", str(out)])
    assert result.exit_code == 0, result.output
    assert "7 usable, 1 malformed" in result.output and "gender 9" in result.output


def test_user_errors_are_one_line_without_traceback(tmp_path):
    runner = CliRunner()
    for args in (["data", "info", str(tmp_path / "missing")],
                 ["data", "synth", "--kind", "swim", "--out", str(tmp_path / "s"), "--size", "big"]):
        result = runner.invoke(main, args)
        assert result.exit_code == 1
        assert "error:" in result.output and "Traceback" not in result.output
