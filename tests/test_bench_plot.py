"""The trade-off plot, the profile and the compare picture of ``edgekit bench``, from real runs.

The pictures themselves are checked through the numbers written beside them (pareto.json,
compare.json) and the profile entries of results.json: they must be the measurements of
results.json. Settings are minimal; nothing here asserts how fast anything is.
"""

import json
import re
import sys

import pytest
from click.testing import CliRunner

from edge.cli import main

pytest.importorskip("matplotlib")

FAST = ["--runs", "3", "--min-seconds", "0", "--warmup-seconds", "0", "--pace-seconds", "0.3",
        "--fps", "40", "--camera", "64x48", "--stride", "2"]
PNG = b"\x89PNG\r\n\x1a\n"


def _bench(tmp, models, out, extra=()):
    devices = tmp / "devices.toml"
    devices.write_text('[devices.here]\npython = "%s"\nthreads = 1\n' % sys.executable)
    return CliRunner().invoke(main, ["bench", "--device", "here", "--devices", str(devices),
                                     "--out", str(out)] + [a for m in models
                                                           for a in ("--model", m)]
                              + FAST + list(extra))


@pytest.fixture(scope="module")
def profiled_run(bench_artifacts, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench_plot")
    out = tmp / "out"
    result = _bench(tmp, [bench_artifacts["root"]], out, ["--profile"])
    assert result.exit_code == 0, result.output
    return out, json.loads((out / "results.json").read_text())


def test_pareto_json_holds_the_measurements_of_results_json(profiled_run):
    from edge.bench.evalset import headline
    from edge.bench.plot import pareto_front

    out, data = profiled_run
    assert (out / "pareto.png").read_bytes()[:8] == PNG
    shown = json.loads((out / "pareto.json").read_text())
    by_name = {(r["target"], r["artifact"]): r for r in data["records"]}
    tasks = [p["task"] for p in shown["panels"]]
    assert tasks == ["action", "action", "identity", "identity"]
    assert [p["x"] for p in shown["panels"]] == ["latency_ms", "deployed_bytes"] * 2
    for panel in shown["panels"]:
        assert len(panel["points"]) == 2
        for point in panel["points"]:
            record = by_name[(point["target"], point["artifact"])]
            assert point["latency_ms"] == record["streaming"]["cost_per_decision_ms"]
            assert point["deployed_bytes"] == record["deployed"]["raw_bytes"]
            assert point["score"] == headline(record["accuracy"])[panel["task"]]
            assert point["method"] == record["method"]
        front = pareto_front([(p[panel["x"]], p["score"]) for p in panel["points"]])
        assert panel["front"] == front and front
        assert [p["on_front"] for p in panel["points"]] == \
            [i in front for i in range(len(panel["points"]))]


def test_profile_of_frame_and_head_in_results_markdown_and_chart(profiled_run):
    out, data = profiled_run
    assert (out / "profile.png").read_bytes()[:8] == PNG
    markdown = (out / "results.md").read_text()
    assert "## Profile" in markdown and "not exposed by LiteRT's Python API" in markdown
    for record in data["records"]:
        assert set(record["profile"]) == {"frame", "step", "head"}
        for role, prof in record["profile"].items():
            assert prof["p50_ms"] == record["latency"][role]["p50_ms"]
            where = record["placement"][role]
            assert (prof["delegated_nodes"], prof["partitions"], prof["delegate"]) == \
                (where["delegated"], where["partitions"], where["delegate"])
            assert prof["nodes"] == where["nodes"]
            assert sum(e["count"] for e in prof["op_types"].values()) == prof["nodes"]
            assert prof["macs"] == sum(e["macs"] for e in prof["op_types"].values()) > 0
            assert prof["gmac_per_s"] == pytest.approx(prof["macs"] / (prof["p50_ms"] * 1e6))
            assert sum(e["mac_share"] for e in prof["op_types"].values()) == pytest.approx(1)
            heaviest = prof["heaviest_nodes"]
            assert heaviest[0]["macs"] == max(n["macs"] for n in heaviest) and \
                all(n["name"] for n in heaviest)
            line = "**here / %s / %s**: p50 %.3f ms, %.4g MMAC, %.2f GMAC/s, %d nodes" % (
                record["artifact"], role, prof["p50_ms"], prof["macs"] / 1e6,
                prof["gmac_per_s"], prof["nodes"])
            assert line in markdown
        frame_ops = record["profile"]["frame"]["op_types"]
        assert frame_ops["CONV_2D"]["macs"] > 0
        assert record["profile"]["head"]["op_types"]["FULLY_CONNECTED"]["macs"] > 0


def test_conv_macs_from_the_interpreter_shapes(bench_artifacts):
    """A CONV_2D node's MACs are output elements x kh x kw x input channels, read here from
    the tensors independently of edge.bench.profile's bookkeeping."""
    from edge.bench.profile import graph_profile
    from edge.interpreter import make_interpreter

    interpreter = make_interpreter(bench_artifacts["ptq"] + "/frame.tflite", threads=1)
    shapes = {t["index"]: list(t["shape"]) for t in interpreter.get_tensor_details()}
    expected = 0
    for op in interpreter._get_ops_details():
        if op["op_name"] == "CONV_2D":
            out, w = shapes[op["outputs"][0]], shapes[op["inputs"][1]]
            expected += int(out[0] * out[1] * out[2] * out[3]) * int(w[1] * w[2] * w[3])
    assert graph_profile(interpreter)["op_types"]["CONV_2D"]["macs"] == expected > 0


def test_plot_task_and_an_unknown_task(bench_artifacts, tmp_path):
    result = _bench(tmp_path, [bench_artifacts["ptq"]], tmp_path / "one",
                    ["--plot-task", "identity"])
    assert result.exit_code == 0, result.output
    shown = json.loads((tmp_path / "one" / "pareto.json").read_text())
    assert [p["task"] for p in shown["panels"]] == ["identity", "identity"]
    assert not (tmp_path / "one" / "profile.png").exists()  # no --profile, no profile
    result = _bench(tmp_path, [bench_artifacts["ptq"]], tmp_path / "two", ["--plot-task", "age"])
    assert result.exit_code == 1
    assert re.search(r"edgekit: error: --plot-task age: no artifact has that task "
                     r"\(tasks: action, identity, identity_embedding\)", result.output), result.output
    assert not (tmp_path / "two").exists()  # refused before the bench ran


def test_compare_picture_holds_the_table_rows(profiled_run, bench_artifacts, tmp_path):
    out, data = profiled_run
    result = _bench(tmp_path, [bench_artifacts["ptq"]], tmp_path / "b")
    assert result.exit_code == 0, result.output
    png = tmp_path / "cmp" / "compare.png"
    result = CliRunner().invoke(main, ["bench", "compare", str(out), str(tmp_path / "b"),
                                       "--plot", str(png)])
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == PNG
    entries = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert [(e["a"], e["b"]) for e in entries] == [("here/ptq", "here/ptq")]
    rows = {r["metric"]: r for r in entries[0]["rows"]}
    after = json.loads((tmp_path / "b" / "results.json").read_text())["records"][0]
    before = [r for r in data["records"] if r["artifact"] == "ptq"][0]
    assert rows["per decision (ms)"]["a"] == before["streaming"]["cost_per_decision_ms"]
    assert rows["per decision (ms)"]["b"] == after["streaming"]["cost_per_decision_ms"]
    assert rows["size (KB)"]["ratio"] == 1.0 and rows["action score"]["higher_is_better"]
    assert not rows["head p50 (ms)"]["higher_is_better"]
    printed = [l for l in result.output.splitlines() if l.strip().startswith("head p50")][0]
    assert printed.split()[-1] == "%.3f" % rows["head p50 (ms)"]["ratio"]


def test_labels_are_placed_without_overlap():
    """Five crowded points: every label box is clear of the others (real matplotlib)."""
    from edge.bench.plot import _annotate, _pyplot, place_labels

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    xs, ys = [1.0, 1.1, 1.2, 1.15, 5.0], [0.9, 0.91, 0.9, 0.92, 0.5]
    ax.scatter(xs, ys, s=100)
    ax.set_xlim(0, 6)
    ax.set_ylim(0.4, 1.0)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    items = [("artifact %d, 117 KB" % i, (x, y), 5) for i, (x, y) in enumerate(zip(xs, ys))]
    offsets = place_labels(ax, renderer, items, [])
    assert place_labels(ax, renderer, items, []) == offsets  # deterministic
    boxes = []
    for (text, xy, radius), offset in zip(items, offsets):
        ann = _annotate(ax, text, xy, offset, radius)
        boxes.append(ann.get_window_extent(renderer))
        ann.remove()
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not a.overlaps(b)
    plt.close(fig)
