"""An emulated target (devices.toml ``emulated = true``) is labelled in every bench output.

Why a test of its own: latency measured under qemu means nothing, and the label is the one thing
that stops a reader from quoting it; the outputs are built from a record as ``edgekit bench``
writes it (the emulated boards' end-to-end run is in test_arm_board.py, deselected by default).
"""

import csv
import json

from edge.devices import parse_devices
from quantize.benchmark.results import write_all


def _data(emulated):
    record = {"target": "board", "emulated": emulated, "artifact": "ptq", "method": "ptq",
              "deployed": {"raw_bytes": 2048, "gzip_bytes": 1024},
              "latency": {"frame": {"p50_ms": 1.0, "count": 3}},
              "streaming": {"stride": 2, "cost_per_decision_ms": 1.5},
              "accuracy": {"action": {"accuracy": 0.5, "count": 4}}}
    return {"schema": "edgekit-bench/1", "records": [record], "settings": {"camera": [48, 64]},
            "targets": {"board": {"config": {"emulated": emulated, "threads": 1,
                                             "delegate": "xnnpack"}, "machine": {}}}}


def test_emulated_key_parses_strictly():
    devices = parse_devices('[devices.a]\nemulated = true\n[devices.b]\n')
    assert devices["a"].emulated is True and devices["b"].emulated is False


def test_every_output_labels_an_emulated_target(tmp_path):
    for emulated in (True, False):
        out = tmp_path / str(emulated)
        paths = write_all(str(out), _data(emulated))
        assert json.loads(open(paths["json"]).read())["records"][0]["emulated"] is emulated
        rows = list(csv.reader(open(paths["csv"])))
        assert rows[1][rows[0].index("emulated")] == str(emulated)
        table = open(paths["md"]).read()
        assert ("| board (emulated) | ptq |" in table) is emulated, table
        assert "| board | ptq |" in table or emulated
        assert "png" in paths
