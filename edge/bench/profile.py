"""``edgekit bench --profile``: where a model's time goes, per op type and per node.

What is measured and what is computed (LiteRT / ai-edge-litert 2.3.0, investigated):

* **Per-op times are not available from Python.** The interpreter's only profiling knob is
  ``experimental_force_delegate_node_profiling``, which feeds a C++ profiler that the Python
  wrapper never exposes; ``CompiledModel`` has no profiling call; the Python
  ``ai_edge_litert.tools.benchmark_litert_model`` has no op-profiling flag (the C++
  ``benchmark_model --enable_op_profiling=true`` does, but is not shipped in the wheel);
  ``profiling_info_pb2`` / ``model_runtime_info_pb2`` are only message definitions. Timing
  nodes one by one from Python is not possible either (``invoke()`` runs the whole graph,
  and XNNPACK fuses a partition into one delegate node).
* So the profile reports the **measured whole-model time** (the bench's p50 for that model, on
  its target) next to what the graph itself says, computed here from ``_get_ops_details()`` and
  ``get_tensor_details()`` after ``allocate_tensors()``: op counts per type, **MACs per op type**
  (CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV, CONV_3D, FULLY_CONNECTED, BATCH_MATMUL from
  their tensor shapes; every other op counted as 0 MACs), the **heaviest nodes** by MACs with
  their output tensor's name from the graph, and the placement (nodes on the delegate,
  partitions; :mod:`edge.bench.placement`). ``gmac_per_s`` = MACs / p50 is what says a model is
  slow for its arithmetic (the B3 head against its frame model, say). ``est_ms`` per op type
  is p50 x the type's MAC share: an attribution, not a measurement, and labelled so.
"""

import io

NO_OP_TIMES = ("per-op times: not exposed by LiteRT's Python API (no profiler accessor, "
               "no op-profiling flag in benchmark_litert_model); est_ms = p50 x MAC share")
TOP_NODES = 10


def _prod(values):
    result = 1
    for v in values:
        result *= int(v)
    return result


def node_macs(op, shapes):
    """Multiply-accumulates of one node from its tensors' shapes (0 for ops without any)."""
    name, ins, outs = op["op_name"], op["inputs"], op["outputs"]
    if not outs or outs[0] < 0 or outs[0] not in shapes:
        return 0
    out = shapes[outs[0]]
    if len(ins) < 2 or ins[1] < 0 or ins[1] not in shapes:
        return 0
    weights = shapes[ins[1]]
    if name == "CONV_2D" and len(weights) == 4:          # filter [Co, kh, kw, Ci]
        return _prod(out) * _prod(weights[1:])
    if name == "DEPTHWISE_CONV_2D" and len(weights) == 4:  # filter [1, kh, kw, Co]
        return _prod(out) * weights[1] * weights[2]
    if name == "CONV_3D" and len(weights) == 5:          # filter [kd, kh, kw, Ci, Co]
        return _prod(out) * _prod(weights[:4])
    if name == "TRANSPOSE_CONV" and len(ins) >= 3 and ins[2] in shapes:
        # inputs: output shape, filter [Co, kh, kw, Ci], input [N, H, W, Ci]
        return _prod(shapes[ins[2]]) * _prod(shapes[ins[1]][:3])
    if name == "FULLY_CONNECTED" and len(weights) == 2:  # weights [units, in]
        return _prod(out) * weights[1]
    if name == "BATCH_MATMUL" and len(out) >= 2 and ins[0] in shapes:
        a = shapes[ins[0]]                               # [..., M, K] or [..., K, M]
        m = out[-2]
        return _prod(out) * (_prod(a[-2:]) // m if m else 0)
    return 0


def graph_profile(interpreter):
    """Op counts, MACs per op type and per node of an allocated interpreter; None without a
    node list (a runtime that does not expose one)."""
    from edge.bench.placement import op_details

    details = [d for d in op_details(interpreter) if d["op_name"] != "DELEGATE"]
    if not details:
        return None
    tensors = {int(t["index"]): t for t in interpreter.get_tensor_details()}
    shapes = {i: [int(v) for v in t["shape"]] for i, t in tensors.items()}
    per_type, nodes = {}, []
    for op in details:
        macs = node_macs(op, shapes)
        entry = per_type.setdefault(op["op_name"], {"count": 0, "macs": 0})
        entry["count"] += 1
        entry["macs"] += macs
        out = op["outputs"][0] if op["outputs"] else -1
        nodes.append({"index": op["index"], "op": op["op_name"], "macs": macs,
                      "name": str(tensors[out]["name"]) if out in tensors else ""})
    nodes.sort(key=lambda n: (-n["macs"], n["index"]))
    return {"nodes": len(details), "macs": sum(e["macs"] for e in per_type.values()),
            "op_types": per_type, "heaviest_nodes": nodes[:TOP_NODES]}


def model_profile(path, p50_ms, where, threads=None):
    """The profile entry of one model file: :func:`graph_profile` of the file (loaded on the
    CPU, which only reads the graph), the measured p50 and the placement measured on the
    target; None for a file that is not TFLite (an ONNX variant) or has no node list."""
    if not str(path).lower().endswith(".tflite"):
        return None
    from edge.interpreter import make_interpreter

    interpreter = make_interpreter(path, threads=threads)
    graph = graph_profile(interpreter)
    del interpreter
    if graph is None:
        return None
    total = graph["macs"]
    where = where or {}
    for op, entry in graph["op_types"].items():
        entry["delegated"] = (where.get("ops_delegated") or {}).get(op, 0)
        entry["mac_share"] = entry["macs"] / float(total) if total else 0.0
        entry["est_ms"] = p50_ms * entry["mac_share"] if p50_ms is not None else None
    for node in graph["heaviest_nodes"]:
        node["mac_share"] = node["macs"] / float(total) if total else 0.0
    graph.update({
        "p50_ms": p50_ms,
        "gmac_per_s": total / (p50_ms * 1e6) if p50_ms and total else None,
        "delegated_nodes": where.get("delegated"), "partitions": where.get("partitions"),
        "delegate": where.get("delegate"), "timing": NO_OP_TIMES})
    return graph


def profile_markdown(data):
    """The report's profile section: per record and model, a summary line and the op types."""
    lines = []
    for r in data["records"]:
        for role, prof in sorted((r.get("profile") or {}).items()):
            if not prof:
                continue
            lines += ["", "**%s / %s / %s**: p50 %s ms, %.4g MMAC, %s GMAC/s, %s nodes "
                      "(%s on %s in %s partitions)" % (
                          r["target"], r["artifact"], role, _f(prof["p50_ms"], "%.3f"),
                          prof["macs"] / 1e6, _f(prof["gmac_per_s"], "%.2f"), prof["nodes"],
                          prof["delegated_nodes"], prof["delegate"], prof["partitions"]), "",
                      "| Op type | Count | On %s | MMAC | MAC share | est. ms |" % prof["delegate"],
                      "|---|---|---|---|---|---|"]
            kinds = sorted(prof["op_types"].items(), key=lambda kv: (-kv[1]["macs"],
                                                                     -kv[1]["count"], kv[0]))
            for op, e in kinds:
                lines.append("| %s | %d | %d | %.4g | %.1f %% | %s |" % (
                    op, e["count"], e.get("delegated", 0), e["macs"] / 1e6,
                    100 * e["mac_share"], _f(e["est_ms"], "%.4f")))
            lines += ["", "| Heaviest node | Op | Name (first of the fused names) | MMAC | "
                      "MAC share |", "|---|---|---|---|---|"]
            lines += ["| #%d | %s | `%s` | %.4g | %.1f %% |" % (
                n["index"], n["op"], n["name"].split(";")[0], n["macs"] / 1e6,
                100 * n.get("mac_share", 0)) for n in prof["heaviest_nodes"][:5]]
    if not lines:
        return ""
    return "\n".join(["## Profile", "", NO_OP_TIMES + "."] + lines)


def _f(value, spec):
    return "-" if value is None else spec % value


def profile_plot(data, path):
    """A bar chart per record: MACs per op type (MMAC), the frame model's and the head's side
    by side, each model's measured p50 and GMAC/s in the legend. MACs, not times: per-op times
    are not available (see the module docstring). False when no record has a profile or
    matplotlib is missing; writes the PNG atomically."""
    records = [r for r in data["records"] if any((r.get("profile") or {}).values())]
    if not records:
        return False
    try:
        from edge.bench.plot import _pyplot
        plt = _pyplot()
    except ImportError:
        return False
    from edge.atomic import write_bytes

    fig, axes = plt.subplots(len(records), 1, figsize=(10, 3.6 * len(records) + 0.4), dpi=110,
                             squeeze=False)
    for r, ax in zip(records, axes[:, 0]):
        _profile_bars(ax, r)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    write_bytes(path, buffer.getvalue())
    return True


def _profile_bars(ax, record):
    roles = [role for role, prof in sorted((record.get("profile") or {}).items()) if prof]
    kinds = sorted({op for role in roles for op, e in record["profile"][role]["op_types"].items()
                    if e["macs"]})
    width = 0.8 / max(len(roles), 1)
    for k, role in enumerate(roles):
        prof = record["profile"][role]
        values = [prof["op_types"].get(op, {}).get("macs", 0) / 1e6 for op in kinds]
        bars = ax.bar([i + (k - (len(roles) - 1) / 2.0) * width for i in range(len(kinds))],
                      values, width, label="%s: p50 %s ms, %.3g MMAC, %s GMAC/s" % (
                          role, _f(prof["p50_ms"], "%.3f"), prof["macs"] / 1e6,
                          _f(prof["gmac_per_s"], "%.2f")))
        for bar, op in zip(bars, kinds):
            share = prof["op_types"].get(op, {}).get("mac_share", 0)
            if share:
                ax.annotate(("%.0f %%" if share >= 0.01 else "%.1f %%") % (100 * share), (bar.get_x() + bar.get_width() / 2,
                                                       bar.get_height()),
                            ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(kinds)))
    ax.set_xticklabels(kinds, fontsize=9)
    ax.set_ylabel("MMAC per invocation")
    ax.set_title("%s / %s: multiply-accumulates per op type (%% = share of the model's MACs)"
                 % (record["target"], record["artifact"]), fontsize=10)
    ax.margins(y=0.15)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)
