"""Where a model's nodes run, from the interpreter's node list.

LiteRT's Python interpreter lists (``_get_ops_details``) the model's original nodes followed by
one ``DELEGATE`` node per partition a delegate (XNNPACK, GPU, an external one) took over; the
original nodes of a partition stay in the list but are no longer executed. A partition is
recovered by walking back from the delegate node's outputs through the producers of each tensor
until the delegate node's inputs are reached. Edge TPU models are different: edgetpu_compiler
already replaced the mapped part by ``edgetpu-custom-op`` nodes, which the libedgetpu delegate
runs; everything else runs on the CPU.
"""

EDGETPU_OP = "edgetpu-custom-op"


def op_details(interpreter):
    """The interpreter's node list as plain dicts; [] when the runtime does not expose it."""
    try:
        details = interpreter._get_ops_details()
    except (AttributeError, RuntimeError, ValueError):
        return []
    return [{"index": int(d["index"]), "op_name": str(d.get("op_name", "")),
             "inputs": [int(t) for t in d.get("inputs", [])],
             "outputs": [int(t) for t in d.get("outputs", [])]} for d in details]


def placement(details, delegate_name="XNNPACK"):
    """Summary of where the nodes run: counts per target and per op.

    Returns {"nodes", "delegated", "cpu", "delegate", "partitions", "ops_cpu": {op: n},
    "ops_delegated": {op: n}, "available"}.
    """
    if not details:
        return {"available": False, "nodes": None, "delegated": None, "cpu": None,
                "delegate": delegate_name, "partitions": 0, "ops_cpu": {}, "ops_delegated": {}}
    delegate_nodes = [d for d in details if d["op_name"] == "DELEGATE"]
    originals = [d for d in details if d["op_name"] != "DELEGATE"]
    producer = {}
    for node in originals:
        for tensor in node["outputs"]:
            producer[tensor] = node["index"]
    by_index = {d["index"]: d for d in originals}
    delegated = set()
    for node in delegate_nodes:
        boundary = set(node["inputs"])
        stack = [producer[t] for t in node["outputs"] if t in producer]
        while stack:
            index = stack.pop()
            if index in delegated:
                continue
            delegated.add(index)
            for tensor in by_index[index]["inputs"]:
                if tensor < 0 or tensor in boundary or tensor not in producer:
                    continue
                stack.append(producer[tensor])
    tpu = {d["index"] for d in originals if d["op_name"] == EDGETPU_OP}
    if tpu:
        delegated |= tpu
        delegate_name = "EdgeTPU" if not delegate_nodes else delegate_name + "+EdgeTPU"
    ops_cpu, ops_delegated = {}, {}
    for node in originals:
        target = ops_delegated if node["index"] in delegated else ops_cpu
        target[node["op_name"]] = target.get(node["op_name"], 0) + 1
    return {"available": True, "nodes": len(originals), "delegated": len(delegated),
            "cpu": len(originals) - len(delegated), "delegate": delegate_name,
            "partitions": len(delegate_nodes) + (1 if tpu and not delegate_nodes else 0),
            "ops_cpu": ops_cpu, "ops_delegated": ops_delegated}
