"""``edgekit serve``: run the on-camera daemon, or only check its config (``--check-config``).

The command stays thin: config -> :class:`~edge.serve.daemon.Daemon` -> ``run()``. Logging goes
to stderr (journald under systemd) with one line per message. Exit status: 0 after an orderly
shutdown (SIGTERM/SIGINT), 1 for a config or model problem (``edgekit: error: ...``).
"""

import logging

import click

from edge.errors import EdgekitError


@click.command("serve")
@click.option("--config", "config_path", required=True, type=click.Path(),
              help="The daemon's TOML config (see examples/serve.toml).")
@click.option("--check-config", is_flag=True,
              help="Validate the config (and that it matches the model directory), then exit.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              default=None, help="Override daemon.log_level.")
def serve_command(config_path, check_config, log_level):
    """Run the on-camera daemon: cameras in, one event type per model task plus alerts out."""
    from edge.serve.config import load_config, resolve_target
    from edge.serve.model_check import (describe_policies, event_policies, legacy_notes,
                                        model_problems)

    cfg = load_config(config_path)
    if check_config:
        resolve_target(cfg.model)
        from edge.manifest import Manifest
        manifest = Manifest.load(cfg.model["dir"])
        problems = model_problems(cfg, manifest)
        try:
            manifest.model_file("frame", cfg.model["backend"].variant)
        except EdgekitError as exc:
            problems.append("model: backend %s: %s" % (cfg.model["backend"].key, exc))
        if problems:
            raise EdgekitError("%s: the config does not match the model directory:\n  %s"
                               % (config_path, "\n  ".join(problems)))
        regions = sum(max(1, len(c.get("regions") or {})) for c in cfg.cameras.values()
                      if c["enabled"])
        outputs = [name for name, value in (("jsonl", cfg.jsonl), ("mqtt", cfg.mqtt)) if value]
        policies = event_policies(cfg.events, manifest, bool(cfg.model.get("gallery")))
        click.echo("%s: OK: %d camera(s), %d region(s), %d alert rule(s), outputs: %s, model %s "
                   "(T=%d) on %s; events: %s"
                   % (config_path, sum(1 for c in cfg.cameras.values() if c["enabled"]),
                      regions, len(cfg.alerts), ", ".join(outputs), manifest.name,
                      manifest.clip_length, _target(cfg.model),
                      describe_policies(policies, manifest)))
        for note in legacy_notes(cfg):
            click.echo("  note: %s" % note)
        return
    level = (log_level or cfg.daemon["log_level"]).upper()
    logging.basicConfig(level=getattr(logging, level),
                        format="edgekit serve: %(levelname)s %(name)s: %(message)s")
    from edge.serve.daemon import Daemon
    daemon = Daemon(cfg).build()
    daemon.run()


def _target(model):
    where = "target %s: " % model["target"] if model.get("target") else ""
    return "%sbackend %s, %d thread(s)" % (where, model["backend"].describe(), model["threads"])
