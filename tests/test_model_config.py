"""quantize.config.ModelConfig on edge.schema: round trips and every problem named (no TensorFlow)."""

import copy
import json

import pytest

from edge.errors import EdgekitError
from quantize.config import CONFIG_SCHEMA, ModelConfig, face_config, swim_config
from quantize.runs import RUN_KIND, read_run


@pytest.fixture()
def swim():
    return swim_config(backbone="test_tiny", size=(32, 32), clip_length=4, head_size="tiny")


def test_both_instances_round_trip_through_plain_data(swim):
    for config in (swim, face_config()):
        data = json.loads(config.to_json())
        assert ModelConfig.from_dict(data) == config
    assert set(CONFIG_SCHEMA.keys) == set(swim.to_dict())  # the schema covers every field


def test_old_configs_without_optional_keys_still_load(swim):
    data = swim.to_dict()
    for key in ("widths", "backbone_options", "weights", "branches"):
        del data[key]
    for task in data["tasks"]:
        del task["weight"], task["embedding"]
    config = ModelConfig.from_dict(data)
    assert config.branches == "fused" and config.widths.lstm_units == 256
    assert config.tasks[0].weight == 1.0 and config.tasks[1].embedding is False


def test_every_problem_is_named_with_its_key_path(swim):
    data = copy.deepcopy(swim.to_dict())
    data["colour"] = "RGB"
    del data["backbone"]
    data["clip_length"] = 0
    data["height"] = "32"
    data["tasks"][0]["labels"] = ["only"]
    data["tasks"][1]["loss"] = "l1"
    data["tasks"][1]["name"] = "action"
    data["widths"]["dropout"] = 2
    data["branches"] = "both"
    with pytest.raises(EdgekitError) as info:
        ModelConfig.from_dict(data, where="run/config.json")
    lines = str(info.value).splitlines()
    assert lines[0] == "run/config.json: 9 problems:"
    assert [l.strip() for l in lines[1:]] == [
        "run/config.json: colour is not a known key; allowed: backbone, backbone_options, "
        "branches, clip_length, height, name, tasks, weights, width, widths",
        "run/config.json: backbone is missing; a name from quantize/backbones.py",
        "run/config.json: clip_length = 0 is out of range; allowed: >= 1",
        "run/config.json: height = '32' has the wrong type; expected an integer",
        "run/config.json: tasks[0].labels has 1 label(s); a classification task needs at least "
        "two",
        "run/config.json: tasks[1].loss = 'l1' is not allowed; allowed: crossentropy | "
        "squared_hinge | mse",
        "run/config.json: widths.dropout = 2 is out of range; allowed: 0.0..0.95",
        "run/config.json: branches = 'both' is not allowed; allowed: fused | spatial | temporal",
        "run/config.json: tasks[1].name = 'action' is tasks[0]'s name too; task names must be "
        "unique",
    ]


@pytest.mark.parametrize("edit, message", [
    (lambda c: setattr(c, "branches", "both"), "branches = 'both' is not allowed"),
    (lambda c: setattr(c, "height", 8), "height = 8 is out of range; allowed: >= 16"),
    (lambda c: setattr(c, "tasks", []), "tasks is empty"),
    (lambda c: setattr(c.tasks[0], "kind", "ranking"), "tasks[0].kind = 'ranking' is not allowed"),
    (lambda c: setattr(c.tasks[0], "kind", "regression"), "tasks[0].loss = 'crossentropy' does "
                                                          "not fit a regression task"),
    (lambda c: setattr(c.widths, "lstm_units", 0), "widths.lstm_units = 0 is out of range"),
])
def test_validate_checks_a_config_changed_in_code(swim, edit, message):
    edit(swim)
    with pytest.raises(EdgekitError, match=r"^model config: " + message.replace("[", r"\[")
                       .replace("]", r"\]")):
        swim.validate()


def test_a_run_with_a_broken_config_names_the_file(tmp_path, swim):
    (tmp_path / "run.json").write_text(json.dumps({"kind": RUN_KIND}))
    data = swim.to_dict()
    data["clip_length"] = "4"
    (tmp_path / "config.json").write_text(json.dumps(data))
    with pytest.raises(EdgekitError, match=r"config.json: clip_length = '4' has the wrong type"):
        read_run(str(tmp_path))
