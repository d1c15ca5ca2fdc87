"""benchmarks/bench_streaming.py's stage breakdown runs on a model directory and leaves the
runner's session as it found it (it wraps the session's own methods to time them)."""

import numpy as np

from benchmarks.bench_streaming import cold_after_invoke, stage_breakdown, synthetic_frames
from edge.session import ModelSession
from tests.fixtures.edge import CLIP_LENGTH


def test_stage_breakdown_names_every_stage_and_restores_the_session(edge_model_dir):
    session = ModelSession.shared(edge_model_dir, threads=1)  # held: the breakdown's runner uses it
    stages = stage_breakdown(edge_model_dir, synthetic_frames(6, 48, 64), threads=1,
                             warmup=CLIP_LENGTH)
    assert set(stages) == {"push mean", "push recurrent", "head input mean",
                           "head input recurrent", "preprocess", "frame invoke", "step invoke",
                           "head invoke", "push: ring bookkeeping", "head: reset, decode tasks",
                           "process(): the rest", "total"}
    assert stages["total"] > 0 and stages["frame invoke"] > 0 and stages["step invoke"] > 0
    assert ModelSession.shared(edge_model_dir, threads=1) is session
    for name in ("push_outputs", "run_head"):
        assert name not in vars(session)  # the wrappers are gone, the class's methods back
    invoke = session.frame_interpreter.invoke
    assert invoke == session.frame_interpreter._interpreter.Invoke  # the held-views invoke back
    assert np.isfinite(list(stages.values())).all()


def test_cold_after_invoke_times_both_calls_three_ways(edge_model_dir):
    cold = cold_after_invoke(edge_model_dir, threads=1, samples=3)
    assert set(cold) == {"copy", "view"}
    assert all(len(v) == 3 and min(v) > 0 for v in cold.values())
