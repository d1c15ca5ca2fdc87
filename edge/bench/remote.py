"""Running the device side on a target: this machine (a subprocess) or over ssh (system ssh/scp).

A :class:`Session` owns a folder on the target for one ``edgekit bench`` or ``edgekit devices
check``: a local temp folder, or ``mktemp -d`` under the device's ``workdir`` over ssh. Files the
target needs are staged locally in ``session.stage``; :meth:`Session.upload` sends the staged tree
(for ssh: the ``edge`` package without TensorFlow, the models, eval clips and job files, as one
tarball through ``scp``); :meth:`Session.run_module` runs ``python -m edge.bench.<module>`` there,
relaying its ``edgekit-bench:`` progress lines; :meth:`Session.fetch` brings a file back.

The system ``ssh``/``scp`` clients are used on purpose, so ``~/.ssh/config``, agents, keys and
``ProxyJump`` work as for any other ssh command; ``BatchMode=yes`` turns a password prompt into an
error instead of a hang.
"""

import collections
import json
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile

from edge.errors import EdgekitError

PROGRESS_PREFIX = "edgekit-bench: "
SSH_UNREACHABLE = 255


def edge_package_dir():
    import edge
    return os.path.dirname(os.path.abspath(edge.__file__))


def ssh_options(device):
    args = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=%d" % device.connect_timeout]
    if device.identity_file:
        args += ["-i", device.identity_file, "-o", "IdentitiesOnly=yes"]
    for option in device.ssh_options:
        args += ["-o", option]
    return args


def ssh_command(device, remote_command):
    port = ["-p", str(device.port)] if device.port else []
    return ["ssh"] + ssh_options(device) + port + [device.destination, remote_command]


def scp_command(device, sources, target):
    port = ["-P", str(device.port)] if device.port else []
    return ["scp", "-q"] + ssh_options(device) + port + list(sources) + [target]


class Session(object):
    """A working folder on ``device``; use as a context manager (the folder is removed after)."""

    def __init__(self, device, progress=None):
        self.device = device
        self.progress = progress or (lambda message: None)
        self.stage = tempfile.mkdtemp(prefix="edgekit-bench-stage-")
        self.remote_dir = None

    # -- lifecycle -------------------------------------------------------------------------------

    def __enter__(self):
        try:
            self.open()
        except BaseException:
            shutil.rmtree(self.stage, ignore_errors=True)
            raise
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def open(self):
        if self.device.is_remote:
            command = "mktemp -d %s/edgekit-bench.XXXXXX" % shlex.quote(
                self.device.workdir.rstrip("/") or "/")
            out = self._ssh(command, what="create a folder under %s" % self.device.workdir)
            lines = out.strip().splitlines()
            if not lines or not lines[-1].startswith("/"):
                raise EdgekitError("device %s: mktemp on the target gave no folder (%r)"
                                   % (self.device.name, out.strip()))
            self.remote_dir = lines[-1]

    def close(self):
        try:
            if self.device.is_remote and self.remote_dir and not self.device.keep_workdir:
                subprocess.run(ssh_command(self.device, "rm -rf %s" % shlex.quote(
                    self.remote_dir)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               timeout=60)
            elif self.device.is_remote and self.remote_dir:
                self.progress("kept %s:%s (keep_workdir = true)" % (self.device.destination,
                                                                   self.remote_dir))
        except (OSError, subprocess.SubprocessError):
            pass
        finally:
            shutil.rmtree(self.stage, ignore_errors=True)

    # -- paths -----------------------------------------------------------------------------------

    def staged(self, *parts):
        """Local path inside the stage (created directories included)."""
        path = os.path.join(self.stage, *parts)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return path

    def target_path(self, local_path):
        """How the target names a file: staged files are relative to its folder over ssh."""
        if not self.device.is_remote:
            return os.path.abspath(local_path)
        rel = os.path.relpath(os.path.abspath(local_path), self.stage)
        if rel.startswith(".."):
            raise EdgekitError("internal: %s is not staged" % local_path)  # pragma: no cover
        return rel

    def stage_model_dir(self, name, model_dir, roles, variant="tflite"):
        """Path the target uses for ``model_dir`` (over ssh: manifest + the ``roles``' files,
        the frame model in ``variant``)."""
        if not self.device.is_remote:
            return os.path.abspath(model_dir)
        from edge.manifest import MANIFEST_NAME, Manifest
        manifest = Manifest.load(model_dir)
        files = [MANIFEST_NAME] + [manifest.model_file(r, variant if r == "frame" else "tflite")
                                   .file for r in roles]
        for file_name in files:
            shutil.copy2(os.path.join(model_dir, file_name), self.staged("models", name,
                                                                         file_name))
        return self.target_path(os.path.join(self.stage, "models", name))

    def stage_file(self, name, path):
        """Path the target uses for the plain model file ``path`` (over ssh: a staged copy)."""
        if not self.device.is_remote:
            return os.path.abspath(path)
        local = self.staged("models", name, os.path.basename(path))
        shutil.copy2(path, local)
        return self.target_path(local)

    # -- transfer --------------------------------------------------------------------------------

    def upload(self):
        """Over ssh: send the device runtime (``edge/``, no TensorFlow) and everything staged."""
        if not self.device.is_remote:
            return
        bundle = os.path.join(tempfile.mkdtemp(prefix="edgekit-bundle-"), "bundle.tar.gz")
        try:
            with tarfile.open(bundle, "w:gz") as tar:
                tar.add(edge_package_dir(), arcname="edge", filter=_no_caches)
                for entry in sorted(os.listdir(self.stage)):
                    tar.add(os.path.join(self.stage, entry), arcname=entry, filter=_no_caches)
            size = os.path.getsize(bundle)
            self.progress("copying runtime, models and eval clips to %s (%.1f MB)"
                          % (self.device.name, size / 1e6))
            self._run(scp_command(self.device, [bundle], "%s:%s/" % (
                self.device.destination, self.remote_dir)), "copy files with scp")
            self._ssh("cd %s && tar xzf bundle.tar.gz && rm bundle.tar.gz"
                      % shlex.quote(self.remote_dir), what="unpack the bundle")
        finally:
            shutil.rmtree(os.path.dirname(bundle), ignore_errors=True)

    def fetch_json(self, target_file):
        """Read a JSON file the target wrote (``target_file`` as the target names it)."""
        if not self.device.is_remote:
            local = target_file
        else:
            remote = "%s/%s" % (self.remote_dir, target_file)
            exists = self._ssh("test -f %s && echo yes || echo no" % shlex.quote(remote),
                               what="look for the result")
            if exists.strip() != "yes":
                return None
            local = os.path.join(tempfile.mkdtemp(prefix="edgekit-fetch-"), "out.json")
            self._run(scp_command(self.device, ["%s:%s" % (self.device.destination, remote)],
                                  local),
                "copy the result back with scp")
        try:
            with open(local) as handle:
                return json.load(handle)
        except (OSError, ValueError):
            return None
        finally:
            if self.device.is_remote:
                shutil.rmtree(os.path.dirname(local), ignore_errors=True)

    # -- execution -------------------------------------------------------------------------------

    def python_command(self, module, args):
        """argv (local) or a shell command line (ssh) running ``python -m edge.bench.MODULE``."""
        device = self.device
        if not device.is_remote:
            return [device.python or sys.executable, "-m", "edge.bench." + module] + list(args)
        env = " ".join("%s=%s" % (k, shlex.quote(v)) for k, v in sorted(device.env.items()))
        return "cd %s && env PYTHONPATH=%s %s%s -m edge.bench.%s %s" % (
            shlex.quote(self.remote_dir), shlex.quote(self.remote_dir), env + " " if env else "",
            shlex.quote(device.python), module, " ".join(shlex.quote(a) for a in args))

    def run_module(self, module, args, label=None):
        """Run ``edge.bench.MODULE`` on the target; relay progress; return (exit code, tail)."""
        device = self.device
        command = self.python_command(module, args)
        if device.is_remote:
            argv, env, cwd = ssh_command(device, command), None, None
        else:
            argv = command
            env = dict(os.environ)
            root = os.path.dirname(edge_package_dir())
            env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"]
                                        if env.get("PYTHONPATH") else "")
            env.update(device.env)
            cwd = self.stage
        try:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    env=env, cwd=cwd, universal_newlines=True, bufsize=1)
        except OSError as exc:
            raise EdgekitError("device %s: cannot start %s (%s); check python in devices.toml"
                               % (device.name, argv[0], exc))
        tail = collections.deque(maxlen=40)
        for line in proc.stdout:
            line = line.rstrip("\n")
            if line.startswith(PROGRESS_PREFIX):
                message = line[len(PROGRESS_PREFIX):]
                if not message.startswith("error: "):
                    self.progress(message)
            elif line.strip():
                tail.append(line)
        code = proc.wait()
        if device.is_remote and code == SSH_UNREACHABLE:
            raise EdgekitError("device %s: lost the ssh connection to %s while running %s (%s)"
                               % (device.name, device.destination, label or module,
                                  _last(tail)))
        return code, list(tail)

    def _ssh(self, command, what):
        return self._run(ssh_command(self.device, command), what)

    def _run(self, argv, what):
        device = self.device
        try:
            proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  universal_newlines=True,
                                  timeout=device.connect_timeout + 600)
        except FileNotFoundError:
            raise EdgekitError("device %s: %s is not installed here; install the OpenSSH client"
                               % (device.name, argv[0]))
        except subprocess.TimeoutExpired:
            raise EdgekitError("device %s: %s on %s timed out" % (device.name, what,
                                                                 device.destination))
        if proc.returncode == SSH_UNREACHABLE or (argv[0] == "scp" and proc.returncode != 0
                                                  and "lost connection" in proc.stderr):
            raise EdgekitError("device %s: cannot reach %s%s over ssh (%s); check host, user, "
                               "port and identity_file in %s, or run 'edgekit devices check %s'"
                               % (device.name, device.destination,
                                  ":%d" % device.port if device.port else "",
                                  _last(proc.stderr.splitlines()) or "exit 255",
                                  device.source or "devices.toml", device.name))
        if proc.returncode != 0:
            raise EdgekitError("device %s: could not %s on %s: %s" % (
                device.name, what, device.destination,
                _last(proc.stderr.splitlines()) or "exit %d" % proc.returncode))
        return proc.stdout


def _last(lines):
    lines = [l.strip() for l in lines if l.strip()]
    return lines[-1] if lines else ""


def _no_caches(info):
    name = os.path.basename(info.name)
    if name == "__pycache__" or name.endswith(".pyc"):
        return None
    return info


def check_device(device, progress=None):
    """(ok, report dict) for ``edgekit devices check``: reachable, runtime and delegate present."""
    config = {"backend": device.backend, "backend_options": dict(device.backend_options),
              "power": device.power}
    try:
        with Session(device, progress) as session:
            session.upload()
            code, tail = session.run_module("check", [json.dumps(config)], label="the check")
    except EdgekitError as exc:
        return False, {"problems": [str(exc)]}
    report = None
    for line in reversed(tail):
        if line.startswith("{"):
            try:
                report = json.loads(line)
                break
            except ValueError:
                continue
    if report is None:
        return False, {"problems": ["device %s: the check did not run (exit %d): %s"
                                    % (device.name, code, _last(tail) or "no output")]}
    return code == 0 and not report.get("problems"), report
