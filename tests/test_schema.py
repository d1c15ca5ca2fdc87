"""edge.schema: the one validation engine, on real TOML text and JSON-like data."""

import re
import sys

import pytest

from edge.errors import EdgekitError
from edge.schema import OMIT, Invalid, Key, Report, Schema, SchemaError, TomlLines, Wording, \
    join_path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")


def _absolute(path):
    if not path.startswith("/"):
        raise Invalid("= %r must be an absolute path" % path)
    return path


REGION = Key("list", item="int", check=lambda box: tuple(box) if len(box) == 4 else
             _raise(Invalid("must be [x, y, w, h]")))


def _raise(exc):
    raise exc


def _camera_rules(camera, report, path):
    low, high = camera["reconnect_min_s"], camera["reconnect_max_s"]
    if low is not None and high is not None and high < low:
        report.invalid(path + ("reconnect_max_s",), "must be >= reconnect_min_s")


CAMERA = Schema({
    "source": Key("text", help="a camera index, file or URL"),
    "fps": Key("number", 0.0, 0.0, 240.0),
    "enabled": Key("bool", True),
    "reconnect_min_s": Key("number", 1.0, 0.01, 3600.0),
    "reconnect_max_s": Key("number", 60.0, 0.01, 86400.0),
    "regions": Key("map", OMIT, item=REGION, names=r"^[A-Za-z0-9_-]{1,64}$",
                   names_help="letters, digits, _ and -"),
}, check=_camera_rules)
ALERT = Schema({
    "name": Key("text"),
    "task": Key("str", "action", choices=("action", "identity")),
    "consecutive": Key("int", 1, 1, 10000),
})
HTTP = Schema({"port": Key("int", 8765, 0, 65535), "bind": Key("text", "127.0.0.1")})
TOP = Schema({
    "workdir": Key("str", "/tmp", check=_absolute),
    "cameras": Key("map", {}, item=Key("table", schema=CAMERA)),
    "alerts": Key("tables", [], schema=ALERT),
    "http": Key("table", {}, schema=HTTP),
    "tags": Key("list", [], item="text"),
    "sparsity": Key("number", None, nullable=True),
})

GOOD = '''\
workdir = "/var/lib/edgekit"

[cameras.pool]
source = "rtsp://cam/1"
regions = { lane1 = [0, 0, 320, 120] }

[[alerts]]
name = "drowning"
consecutive = 3
'''


def _load(text, schema=TOP, where="serve.toml", wording=None):
    return schema.validate(tomllib.loads(text), where=where, lines=TomlLines(text),
                           wording=wording)


def _problems(text, **kwargs):
    with pytest.raises(SchemaError) as info:
        _load(text, **kwargs)
    return info.value


def test_a_good_file_gives_plain_dicts_with_every_default_filled():
    values = _load(GOOD)
    pool = values["cameras"]["pool"]
    assert pool == {"source": "rtsp://cam/1", "fps": 0.0, "enabled": True,
                    "reconnect_min_s": 1.0, "reconnect_max_s": 60.0,
                    "regions": {"lane1": (0, 0, 320, 120)}}
    assert values["alerts"] == [{"name": "drowning", "task": "action", "consecutive": 3}]
    assert values["http"] == {"port": 8765, "bind": "127.0.0.1"}  # absent table: its defaults
    assert values["tags"] == [] and values["sparsity"] is None
    assert "regions" not in _load('[cameras.a]\nsource = "0"\n')["cameras"]["a"]  # OMIT


@pytest.mark.parametrize("text, expected", [
    ('colour = 1\n' + GOOD,
     r"^serve.toml:1: colour is not a known key; allowed: alerts, cameras, http, sparsity, tags, "
     r"workdir$"),
    (GOOD + '[http]\nport = "80"\n',
     r"^serve.toml:11: http.port = '80' has the wrong type; expected an integer$"),
    (GOOD + '[http]\n\nport = 70000\n',
     r"^serve.toml:12: http.port = 70000 is out of range; allowed: 0..65535$"),
    (GOOD.replace('consecutive = 3', 'task = "age"'),
     r"^serve.toml:9: alerts\[0\].task = 'age' is not allowed; allowed: action \| identity$"),
    (GOOD.replace('source = "rtsp://cam/1"', 'fps = 5'),
     r"^serve.toml:3: cameras.pool.source is missing; a camera index, file or URL$"),
    (GOOD.replace('"/var/lib/edgekit"', '"tmp"'),
     r"^serve.toml:1: workdir = 'tmp' must be an absolute path$"),
    (GOOD.replace('lane1 = [0, 0, 320, 120]', 'lane1 = [0, 0, 320]'),
     r"^serve.toml:5: cameras.pool.regions.lane1 must be \[x, y, w, h\]$"),
    (GOOD.replace('lane1 = [0, 0, 320, 120]', 'lane1 = [0, 0, "w", 120]'),
     r"^serve.toml:5: cameras.pool.regions.lane1\[2\] = 'w' has the wrong type; expected an "
     r"integer$"),
    (GOOD.replace('lane1 =', '"lane 1" ='),
     r"^serve.toml:5: cameras.pool.regions.lane 1: the name is not allowed; allowed: letters"),
    (GOOD + 'tags = ["a", ""]\n',  # a key after [[alerts]] belongs to alerts[0]: unknown there
     r"^serve.toml:10: alerts\[0\].tags is not a known key"),
    ('tags = "a"\n' + GOOD, r"^serve.toml:1: tags = 'a' has the wrong type; expected a list of "
                            r"non-empty strings$"),
    ('alerts = 3\n', r"^serve.toml:1: alerts = 3 has the wrong type; expected an array of tables"),
    (GOOD + '[cameras.pool.x]\n', r"^serve.toml:10: cameras.pool.x is not a known key"),
    (GOOD.replace('source = "rtsp://cam/1"', 'source = "x"\nreconnect_max_s = 0.5'),
     r"^serve.toml:5: cameras.pool.reconnect_max_s must be >= reconnect_min_s$"),
])
def test_each_kind_of_problem_names_file_line_key_path_and_what_is_allowed(text, expected):
    error = _problems(text)
    assert len(error.problems) == 1, error.problems
    assert re.search(expected, str(error)), str(error)
    assert isinstance(error, EdgekitError)


def test_every_problem_in_a_file_is_reported_at_once():
    text = ('workdir = 3\n[cameras.pool]\nsource = ""\nfps = 500\nrate = 2\n'
            '[[alerts]]\nname = "a"\n[[alerts]]\nconsecutive = 0\n')
    error = _problems(text)
    assert str(error).splitlines()[0] == "serve.toml: 6 problems:"
    assert error.problems == [  # in file order, whatever order the schema checked them in
        "serve.toml:1: workdir = 3 has the wrong type; expected a string",
        "serve.toml:3: cameras.pool.source = '' has the wrong type; expected a non-empty string",
        "serve.toml:4: cameras.pool.fps = 500 is out of range; allowed: 0.0..240.0",
        "serve.toml:5: cameras.pool.rate is not a known key; allowed: enabled, fps, "
        "reconnect_max_s, reconnect_min_s, regions, source",
        "serve.toml:8: alerts[1].name is missing",
        "serve.toml:9: alerts[1].consecutive = 0 is out of range; allowed: 1..10000",
    ]


def test_json_data_gets_key_paths_without_lines():
    schema = Schema({"models": Key("map", item=Key("table", schema=Schema({
        "inputs": Key("tables", schema=Schema({"scale": Key("number", None, nullable=True)})),
    })))})
    data = {"models": {"frame": {"inputs": [{"scale": None}, {"scale": "x"}]}}}
    with pytest.raises(SchemaError) as info:
        schema.validate(data, where="model/manifest.json")
    assert str(info.value) == ("model/manifest.json: models.frame.inputs[1].scale = 'x' has the "
                               "wrong type; expected a number")
    assert schema.validate({"models": {"frame": {"inputs": [{"scale": 2}]}}}) == \
        {"models": {"frame": {"inputs": [{"scale": 2.0}]}}}


def test_wording_can_keep_a_files_established_messages():
    wording = Wording(wrong_type="{path}: must be {expected}, got {value}",
                      many="{where}: {count} problem(s) in the config:\n  {problems}")
    error = _problems('workdir = 3\n[http]\nport = "x"\n', wording=wording)
    assert error.problems == ["serve.toml:1: workdir: must be a string, got 3",
                              "serve.toml:3: http.port: must be an integer, got 'x'"]
    assert str(error).startswith("serve.toml: 2 problem(s) in the config:\n  ")
    with pytest.raises(TypeError):
        Wording(no_such_template="x")


def test_callers_add_their_own_problems_to_the_same_report():
    text = '[cameras.pool]\nsource = "0"\n'
    report = Report("serve.toml", TomlLines(text))
    values = report.table(tomllib.loads(text), TOP, ())
    report.invalid(("cameras", "pool", "source"), "names no camera on this board")
    with pytest.raises(SchemaError, match=r"^serve.toml:2: cameras.pool.source names no camera"):
        report.raise_if_any()
    assert values["cameras"]["pool"]["source"] == "0"


def test_toml_lines_follow_tables_arrays_dotted_quoted_and_inline_keys():
    text = '''\
top = 1
[a]
"quoted key" = 2
b.c = 3
[[arr]]
x = 1
[arr.sub]
y = 2
[[arr]]
s = """
z = 9
"""
x = 2
[[arr.deep]]
q = 1
[t]
inline = { k = 1 }
'''
    lines = TomlLines(text)
    tomllib.loads(text)  # the fixture itself is valid TOML
    assert lines.find(("top",)) == 1
    assert lines.find(("a", "quoted key")) == 3
    assert lines.find(("a", "b", "c")) == 4 and lines.find(("a", "b")) == 4
    assert lines.find(("arr", 0, "x")) == 6 and lines.find(("arr", 0, "sub", "y")) == 8
    assert lines.find(("arr", 1)) == 9 and lines.find(("arr", 1, "x")) == 13
    assert lines.find(("arr", 1, "z")) == 9  # inside a multi-line string: not a key, ancestor
    assert lines.find(("arr", 1, "deep", 0, "q")) == 15
    assert lines.find(("t", "inline", "k")) == 17  # inside an inline table: its key's line
    assert lines.find(("nowhere",)) is None


def test_join_path():
    assert join_path(("alerts", 0, "label")) == "alerts[0].label"
    assert join_path(("feature_shape", 3)) == "feature_shape[3]"
    assert join_path(()) == ""
