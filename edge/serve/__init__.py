"""``edgekit serve``: the on-camera daemon that turns video streams into events.

Why a daemon and not ``edgekit run`` in a loop: a camera runs for weeks with no one watching, so
capture, inference and delivery are decoupled (a slow broker must not stall inference, a slow
model must not stall capture), every failure is retried instead of fatal, and everything is
observable over HTTP.

One concept per module:

- :mod:`edge.serve.config`   strict TOML configuration (``--check-config``): the schema as data
- :mod:`edge.serve.keys`     its own checks (names, sources, regions) and wording on edge.schema
- :mod:`edge.serve.model_check` the config against the model's manifest (its tasks and labels)
- :mod:`edge.serve.capture`  a capture thread per camera: bounded frame queue, reconnect, watchdog
- :mod:`edge.serve.worker`   a worker thread per camera: the streaming runner over its regions
- :mod:`edge.serve.events`   window results -> one event type per model task, and ``alert``
- :mod:`edge.serve.jsonl`    rotated JSON-lines sink
- :mod:`edge.serve.spool`    the on-disk, ordered, acknowledged queue behind MQTT
- :mod:`edge.serve.mqtt`     MQTT sink (QoS 1, availability + last will, TLS, auth)
- :mod:`edge.serve.http`     ``/healthz``, ``/stats``, ``/metrics``
- :mod:`edge.serve.daemon`   lifecycle: start what can start, signals, orderly shutdown
- :mod:`edge.serve.cli`      the click command

MQTT topic layout (``prefix`` = ``outputs.mqtt.topic_prefix``, default ``edgekit/<hostname>``):

- ``<prefix>/availability``: ``online`` (retained) while the daemon runs; ``offline`` (retained)
  on orderly shutdown and as the broker-sent last will when the connection dies.
- ``<prefix>/events/<camera>/<region>/<type>``: one JSON event per message, QoS 1, not retained;
  ``<type>`` is the task's name (the swimmer's ``action`` / ``identity``, the face model's
  ``gender`` / ``race`` / ``age``) or ``alert``. Payload: see :mod:`edge.serve.events`.
"""
