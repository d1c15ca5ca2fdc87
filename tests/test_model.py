"""The MTDNN builder: shapes, parameter counts, the frame/head split, layer kinds."""

import numpy as np
import pytest

from edge.errors import EdgekitError
from quantize.config import face_config, swim_config
from quantize.model import build_mtdnn
from quantize.tf_compat import keras


@pytest.fixture(scope="module")
def tiny():
    return build_mtdnn(swim_config(backbone="test_tiny", size=(32, 32), clip_length=4, head_size="tiny"))


def test_tiny_shapes_and_outputs(tiny):
    assert tiny.feature_shape == (4, 4, 16)
    assert tiny.frame.input_shape == (None, 32, 32, 3)
    assert tiny.head.input_shape == (None, 4, 4, 4, 16)
    assert sorted(tiny.clip.output_names) == ["action", "identity", "identity_embedding"]
    out = tiny.clip(np.zeros((2, 4, 32, 32, 3), np.float32), training=False)
    assert out["action"].shape == (2, 4) and out["identity"].shape == (2, 4)
    assert out["identity_embedding"].shape == (2, 32)


def test_frame_and_head_compose_to_the_clip_model_exactly(tiny):
    rng = np.random.default_rng(0)
    clips = rng.uniform(0, 255, (3, 4, 32, 32, 3)).astype(np.float32)
    # Perturb BN statistics so the comparison is not trivially between near-identity layers.
    for layer in tiny.clip.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(rng.normal(0, 0.1, layer.moving_mean.shape))
    whole = tiny.clip(clips, training=False)
    features = tiny.frame(clips.reshape(-1, 32, 32, 3), training=False).numpy()
    split = tiny.head(features.reshape(3, 4, *tiny.feature_shape), training=False)
    for name in whole:
        np.testing.assert_allclose(whole[name].numpy(), split[name].numpy(), rtol=1e-5, atol=1e-6)
    embedding = whole["identity_embedding"].numpy()
    np.testing.assert_allclose(np.linalg.norm(embedding, axis=1), 1.0, rtol=1e-5)


def test_layers_are_flat_and_without_lambda(tiny):
    for model in (tiny.clip, tiny.frame, tiny.head):
        for layer in model.layers:
            assert not isinstance(layer, (keras.Model, keras.layers.TimeDistributed, keras.layers.Lambda)), layer.name
    # frame and head share their layers (and so their weights) with the clip model
    clip_ids = {id(layer) for layer in tiny.clip.layers}
    assert all(id(layer) in clip_ids for layer in tiny.frame.layers[1:])
    assert all(id(layer) in clip_ids for layer in tiny.head.layers[1:])


def test_parameter_counts_add_up(tiny):
    counts = tiny.parameter_counts()
    total = counts.pop("total")
    assert sum(counts.values()) == total == tiny.clip.count_params()
    assert set(counts) == {"backbone", "spatial", "temporal", "fusion", "head:action", "head:identity"}
    assert counts["backbone"] == tiny.frame.count_params()


def test_swim_efficientnet_b3_backbone_map_is_4x4x384_at_100x100():
    model = build_mtdnn(swim_config())
    assert model.feature_shape == (4, 4, 384)
    assert model.frame.get_layer("block7a_project_bn") is model.frame.layers[-1]
    assert model.clip.input_shape == (None, 15, 100, 100, 3)


def test_face_efficientnet_b3_is_within_10_percent_of_the_seeds_11_1m():
    model = build_mtdnn(face_config())
    total = model.parameter_counts()["total"]
    assert abs(total - 11.1e6) / 11.1e6 < 0.10, total
    assert model.feature_shape == (7, 7, 384)
    assert sorted(model.head.output_names) == ["age", "gender", "race"]


@pytest.mark.parametrize("backbone, options, channels", [
    ("efficientnet_b0", {}, 320), ("mobilenet_v2", {"alpha": 0.35}, 112)])
def test_other_backbones(backbone, options, channels):
    model = build_mtdnn(swim_config(backbone=backbone, size=(64, 64), clip_length=2, head_size="tiny",
                                    backbone_options=options))
    assert model.feature_shape == (2, 2, channels)


def test_unknown_backbone_and_options_are_clear_errors():
    with pytest.raises(EdgekitError, match="unknown backbone 'resnet9'.*efficientnet_b3"):
        build_mtdnn(swim_config(backbone="resnet9"))
    with pytest.raises(EdgekitError, match="does not take options"):
        build_mtdnn(swim_config(backbone="test_tiny", size=(32, 32), head_size="tiny",
                                backbone_options={"depth": 3}))


def test_weights_file_loads_by_layer_name(tiny, tmp_path):
    path = str(tmp_path / "backbone.h5")
    tiny.frame.save_weights(path)
    config = swim_config(backbone="test_tiny", size=(32, 32), clip_length=4, head_size="tiny", weights=path)
    other = build_mtdnn(config)
    for a, b in zip(tiny.frame.get_weights(), other.frame.get_weights()):
        np.testing.assert_array_equal(a, b)
    config.weights = str(tmp_path / "missing.h5")
    with pytest.raises(EdgekitError, match="does not exist"):
        build_mtdnn(config)


def test_imagenet_weights_offline_is_a_clear_error(monkeypatch):
    # This machine has no internet; make the failure immediate instead of waiting on DNS.
    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- offline")

    import tf_keras.src.utils.data_utils as data_utils

    monkeypatch.setattr(data_utils, "get_file", offline)
    with pytest.raises(EdgekitError, match="could not download the ImageNet weights.*--weights PATH"):
        build_mtdnn(swim_config(backbone="efficientnet_b0", size=(64, 64), clip_length=2,
                                head_size="tiny", weights="imagenet"))


@pytest.mark.parametrize("branches, present, absent", [
    ("spatial", "spatial_sepconv1", "temporal_lstm"), ("temporal", "temporal_lstm", "spatial_sepconv1")])
def test_single_branch_variants_for_the_ablation(branches, present, absent):
    config = swim_config(backbone="test_tiny", size=(32, 32), clip_length=4, head_size="tiny")
    config.branches = branches
    model = build_mtdnn(config)
    names = {layer.name for layer in model.clip.layers}
    assert present in names and absent not in names
    counts = model.parameter_counts()
    assert counts["spatial" if branches == "temporal" else "temporal"] == 0
    config.branches = "both"
    with pytest.raises(EdgekitError,
                       match=r"branches = 'both' is not allowed; allowed: fused \| spatial \| temporal"):
        build_mtdnn(config)

