"""The pruning schedule: ramp to the target sparsity, then hold it while the network recovers."""

import numpy as np

from quantize.config import swim_config
from quantize.model import build_mtdnn


def test_sparsity_ramps_over_two_thirds_of_the_steps_then_holds():
    from quantize.quantization.prune import wrap_for_pruning

    model = build_mtdnn(swim_config(backbone="test_tiny", size=(32, 32), clip_length=4, head_size="tiny"))
    wrapped = wrap_for_pruning(model.clip, 0.5, total_steps=30)
    schedules = [layer.pruning_schedule for layer in wrapped.layers if hasattr(layer, "pruning_schedule")]
    assert schedules
    schedule = schedules[0]
    sparsity = lambda step: float(schedule(np.int64(step))[1])  # noqa: E731
    prunes = lambda step: bool(schedule(np.int64(step))[0])  # noqa: E731
    assert sparsity(0) == 0.0
    assert 0.0 < sparsity(10) < 0.5
    assert abs(sparsity(19) - 0.5) < 1e-6  # the target is reached on step 19 of 30
    assert prunes(19) and not prunes(20) and not prunes(29)  # then the masks stay as they are
