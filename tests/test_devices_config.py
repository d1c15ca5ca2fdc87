"""devices.toml: the shipped file, the strict loader and the `edgekit devices` commands."""

import os
import re
import sys

import pytest
from click.testing import CliRunner

from edge.cli import main
from edge.devices import KEYS, default_devices_path, get_device, load_devices, parse_devices
from edge.errors import EdgekitError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = os.path.join(ROOT, "devices.toml")


def _error(text):
    with pytest.raises(EdgekitError) as info:
        parse_devices(text, "my.toml")
    return str(info.value)


def test_shipped_file_has_the_three_targets_and_documents_every_key():
    devices = load_devices(SHIPPED)
    assert set(devices) >= {"cpu", "jetson", "coral"}
    assert devices["cpu"].transport == "local" and devices["cpu"].backend == "litert"
    jetson, coral = devices["jetson"], devices["coral"]
    assert jetson.is_remote and jetson.power == "tegrastats" and jetson.python == "python3"
    assert jetson.identity_file == os.path.expanduser("~/.ssh/id_ed25519")
    assert coral.variant == "edgetpu" and coral.backend == "edgetpu"
    assert coral.make_backend().config == {"device": "usb"}
    assert not any(devices[n].emulated for n in ("cpu", "jetson", "coral"))
    for name in ("bookworm-arm64", "bullseye-arm64", "bullseye-arm64-tflite"):  # qemu boards
        assert devices[name].emulated and "EMULATED" in devices[name].description
    with open(SHIPPED) as handle:
        comments = "\n".join(l for l in handle if l.startswith("#"))
    for key in KEYS:
        assert re.search(r"^#\s+%s\s" % key, comments, re.M), "key %s is not documented" % key


def test_defaults_and_derived_values():
    devices = parse_devices('[devices.a]\n[devices.b]\ntransport = "ssh"\nhost = "h"\n'
                            'backend = "coral"\n[devices.c]\nbackend = "delegate"\n'
                            'backend_options = { library = "/opt/libx.so" }\n')
    a, b, c = devices["a"], devices["b"], devices["c"]
    assert (a.transport, a.backend, a.variant, a.power, a.threads) == \
        ("local", "litert", "tflite", "none", None)
    assert b.destination == "h" and b.python == "python3" and b.variant == "edgetpu"
    assert b.backend == "edgetpu" and b.make_backend().config == {}
    assert c.make_backend().describe() == "delegate library=/opt/libx.so"


@pytest.mark.parametrize("body, expected", [
    ('[devices.x]\nthread = 2\n', r"my.toml:2: devices.x.thread is not a known key; allowed: .*threads"),
    ('[devices.x]\nthreads = "2"\n', r"my.toml:2: devices.x.threads = '2' has the wrong type; expected an integer"),
    ('[devices.x]\n\nthreads = 0\n', r"my.toml:3: devices.x.threads = 0 is out of range; allowed: 1..256"),
    ('[devices.x]\ntransport = "ssh"\nhost = "h"\nport = 70000\n', r"my.toml:4: .*port = 70000 is out of range; allowed: 1..65535"),
    ('[devices.x]\ntransport = "ftp"\n', r"my.toml:2: .*transport = 'ftp' is not allowed; allowed: local \| ssh"),
    ('[devices.x]\nbackend = "tpu"\n', r"my.toml:2: devices.x.backend is not usable: unknown device 'tpu'; use one of: delegate, edgetpu, litert, litert_gpu"),
    ('[devices.x]\ndelegate = "edgetpu"\n', r"my.toml:2: devices.x.delegate is from the first devices.toml format; use backend = "),
    ('[devices.x]\ntransport = "ssh"\n', r"devices.x.host is missing"),
    ('[devices.x]\nhost = "h"\n', r"my.toml:2: devices.x.host only applies to transport = \"ssh\""),
    ('[devices.x]\nbackend_options = { device = "usb" }\n', r"my.toml:2: devices.x.backend_options is not usable: backend litert has no option device; its options: kernels"),
    ('[devices.x]\nbackend = "edgetpu"\nbackend_options = { device = "firewire" }\n', r"my.toml:3: .*option device = 'firewire' is not allowed; allowed: usb \| pci"),
    ('[devices.x]\nbackend_options = { device = true }\n', r"backend_options .* expected a table of strings and integers"),
    ('[devices.x]\nvariant = "edgetpu"\n', r"my.toml:2: devices.x.variant is from the first devices.toml format; use nothing: the backend says"),
    ('[devices.x]\npower = "rapl"\n', r"power = 'rapl' is not allowed; allowed: none \| tegrastats"),
    ('[devices.x]\nworkdir = "tmp"\n', r"workdir = 'tmp' must be an absolute path"),
    ('[devices.x]\ntransport = "ssh"\nhost = "h"\nssh_options = ["-v"]\n', r"my.toml:4: .*each entry must be \"Option=value\""),
    ('[devices.x]\nenv = { A = 1 }\n', r"devices.x.env .* expected a table of strings"),
    ('[devices.x]\nkeep_workdir = "yes"\n', r"expected true or false"),
    ('[devices]\nx = 3\n', r"devices.x must be a table"),
    ('[device.x]\n', r"my.toml:1: unknown top-level key device; allowed: \[devices.NAME\]"),
    ('title = "t"\n', r"my.toml:1: unknown top-level key title"),
    ('', r"no \[devices.NAME\] table"),
    ('[devices.x\n', r"my.toml is not valid TOML: .*line 1"),
])
def test_strict_errors_name_file_line_key_and_what_is_allowed(body, expected):
    assert re.search(expected, _error(body)), _error(body)


def test_unknown_device_lists_the_defined_ones():
    devices = load_devices(SHIPPED)
    with pytest.raises(EdgekitError, match=r"unknown device 'tpu'; .* defines: bookworm-arm64, "
                       r"bookworm-arm64-ort, bullseye-arm64, bullseye-arm64-ort, "
                       r"bullseye-arm64-tflite, coral, cpu, cpu-ort, jetson"):
        get_device(devices, "tpu")


def test_which_file_is_read(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("EDGEKIT_DEVICES", raising=False)
    assert default_devices_path() == SHIPPED
    (tmp_path / "devices.toml").write_text("[devices.here]\n")
    assert default_devices_path() == str(tmp_path / "devices.toml")
    monkeypatch.setenv("EDGEKIT_DEVICES", str(tmp_path / "other.toml"))
    with pytest.raises(EdgekitError, match="other.toml does not exist"):
        load_devices()


def test_devices_list_and_errors_through_the_cli(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["devices", "list", "--devices", SHIPPED])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "# " + SHIPPED
    assert [l.split()[0] for l in lines[1:]] == [
        "cpu", "cpu-ort", "jetson", "coral", "bookworm-arm64", "bullseye-arm64",
        "bullseye-arm64-tflite", "jetson-trt", "bookworm-arm64-ort",
        "bullseye-arm64-ort", "local"]
    assert "ssh nvidia@jetson.local:22" in result.output and "power=tegrastats" in result.output
    bad = tmp_path / "bad.toml"
    bad.write_text("[devices.x]\nthreads = -1\n")
    result = runner.invoke(main, ["devices", "list", "--devices", str(bad)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "edgekit: error: %s:2: devices.x.threads = -1 is out of range; allowed: 1..256" % bad]


def test_devices_check_local_target_runs_the_device_side_check(tmp_path):
    path = tmp_path / "d.toml"
    path.write_text('[devices.here]\npython = "%s"\n[devices.tpu]\nbackend = "edgetpu"\n'
                    % sys.executable)
    result = CliRunner().invoke(main, ["devices", "check", "here", "--devices", str(path)])
    assert result.exit_code == 0, result.output
    assert re.match(r"here: ok: python 3\.\d+\.\d+ .*ai_edge_litert \S+, backend litert; "
                    r"available backends: litert, onnxruntime; unavailable: delegate, edgetpu, "
                    r"litert_gpu, tensorrt\n", result.output), result.output
    assert "\n  edgetpu: cannot load delegate libedgetpu.so.1" in result.output
    result = CliRunner().invoke(main, ["devices", "check", "--devices", str(path)])
    assert result.exit_code == 1
    assert "tpu: FAILED: cannot load delegate libedgetpu.so.1" in result.output
    assert "install the Edge TPU runtime" in result.output
    assert "1 of 3 device(s) failed the check: tpu" in result.output  # here, tpu, local
    result = CliRunner().invoke(main, ["devices", "check", "nope", "--devices", str(path)])
    assert result.exit_code == 1 and "unknown device 'nope'" in result.output


def test_devices_check_reports_an_unreachable_host(tmp_path):
    from tests.fixtures.sshd import free_port
    path = tmp_path / "d.toml"
    path.write_text('[devices.gone]\ntransport = "ssh"\nhost = "127.0.0.1"\nport = %d\n'
                    'connect_timeout = 5\n' % free_port())
    result = CliRunner().invoke(main, ["devices", "check", "gone", "--devices", str(path)])
    assert result.exit_code == 1
    assert re.search(r"gone: FAILED: device gone: cannot reach 127\.0\.0\.1:\d+ over ssh \(.*"
                     r"refused", result.output), result.output
