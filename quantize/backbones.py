"""The backbone registry: per-frame feature extractors built into the caller's graph.

A backbone is registered under a name with a function ``build(x, weights, **options) -> tensor``
that creates its layers *on the given tensor* (frames folded into the batch), so the backbone's
layers are part of the MTDNN's own functional graph rather than a nested Model — which is what
tfmot needs to quantize and prune them. ``x`` holds RGB pixels in 0..255; each backbone normalises
inside its graph and records how in :attr:`BackboneSpec.normalization` (it goes in the device
manifest). ``test_*`` backbones are tiny variants registered like the real ones, for fast tests.
"""

from dataclasses import dataclass
from typing import Callable, Dict

from edge.errors import EdgekitError

IMAGENET_MEAN = [0.485 * 255, 0.456 * 255, 0.406 * 255]
IMAGENET_STD = [0.229 * 255, 0.224 * 255, 0.225 * 255]


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    build: Callable
    cut_layer: str  # the layer whose output is the per-frame feature map
    normalization: Dict  # what the graph does to 0..255 pixels first
    description: str
    supports_imagenet: bool = True


_REGISTRY = {}


def register_backbone(name, cut_layer, normalization, description, supports_imagenet=True):
    def decorator(build):
        _REGISTRY[name] = BackboneSpec(name, build, cut_layer, normalization, description,
                                       supports_imagenet)
        return build
    return decorator


def list_backbones():
    return sorted(_REGISTRY)


def get_backbone(name):
    try:
        return _REGISTRY[name]
    except KeyError:
        raise EdgekitError("unknown backbone %r; choose one of: %s" % (name, ", ".join(list_backbones())))


def build_backbone(name, x, weights=None, **options):
    """Build backbone ``name`` on tensor ``x`` and return its feature-map tensor.

    ``weights`` is None or "imagenet" here; a weights file is loaded by name afterwards by the
    model builder, the same way for every backbone.
    """
    spec = get_backbone(name)
    if weights not in (None, "imagenet"):
        raise ValueError("build_backbone takes weights None or 'imagenet', not %r" % weights)
    if weights == "imagenet" and not spec.supports_imagenet:
        raise EdgekitError("backbone %r has no ImageNet weights; train it from scratch" % name)
    try:
        return spec.build(x, weights, **options)
    except TypeError as exc:
        raise EdgekitError("backbone %r does not take options %s (%s)" % (name, options, exc))
    except Exception as exc:  # keras.utils.get_file raises plain Exceptions when offline
        if weights == "imagenet" and ("fetch" in str(exc).lower() or "URL" in str(exc)
                                      or "download" in str(exc).lower()):
            raise EdgekitError("could not download the ImageNet weights for %r (%s). This machine "
                               "may be offline: download them where you have internet and pass "
                               "--weights PATH, or train without --weights" % (name, exc))
        raise


def _keras_application(constructor, cut_layer):
    """Build a keras.applications model on ``x`` and return the tensor at ``cut_layer``."""
    def build(x, weights, **options):
        app = constructor(include_top=False, weights=weights, input_tensor=x, **options)
        return app.get_layer(cut_layer).output
    return build


def _keras():
    from quantize.tf_compat import keras
    return keras


@register_backbone("efficientnet_b3", "block7a_project_bn",
                   {"scale": 1 / 255.0, "mean": IMAGENET_MEAN, "std": IMAGENET_STD, "in_model": True},
                   "EfficientNet-B3 cut at block7a_project_bn (the seed's): 4x4x384 at 100x100")
def efficientnet_b3(x, weights=None):
    return _keras_application(_keras().applications.EfficientNetB3, "block7a_project_bn")(x, weights)


@register_backbone("efficientnet_b0", "block7a_project_bn",
                   {"scale": 1 / 255.0, "mean": IMAGENET_MEAN, "std": IMAGENET_STD, "in_model": True},
                   "EfficientNet-B0 cut at block7a_project_bn: 4x4x320 at 100x100")
def efficientnet_b0(x, weights=None):
    return _keras_application(_keras().applications.EfficientNetB0, "block7a_project_bn")(x, weights)


@register_backbone("mobilenet_v2", "block_16_project_BN",
                   {"scale": 1 / 127.5, "offset": -1.0, "in_model": True},
                   "MobileNetV2 (alpha option) cut at block_16_project_BN; ReLU6 only, Edge TPU friendly")
def mobilenet_v2(x, weights=None, alpha=1.0):
    keras = _keras()
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="mobilenet_v2_preprocess")(x)
    return _keras_application(keras.applications.MobileNetV2, "block_16_project_BN")(
        x, weights, alpha=float(alpha))


def _mbconv_net(x, prefix, stem_channels, blocks, se_channels=4):
    """An EfficientNet-style stack: stem conv, then MBConv blocks (depthwise, swish, SE, project).

    Uses the same layer kinds as EfficientNet (swish, depthwise conv, squeeze-excitation
    Multiply, BN) so everything quantization has to handle in the real backbone is exercised.
    """
    layers = _keras().layers
    x = layers.Rescaling(1 / 255.0, name=prefix + "rescaling")(x)
    x = layers.Conv2D(stem_channels, 3, strides=2, padding="same", use_bias=False, name=prefix + "stem_conv")(x)
    x = layers.BatchNormalization(name=prefix + "stem_bn")(x)
    x = layers.Activation("swish", name=prefix + "stem_activation")(x)
    for block, (stride, expand, out_channels) in enumerate(blocks, start=1):
        name = "%sblock%d_" % (prefix, block)
        inputs = x
        if expand > 1:
            x = layers.Conv2D(x.shape[-1] * expand, 1, use_bias=False, name=name + "expand_conv")(x)
            x = layers.BatchNormalization(name=name + "expand_bn")(x)
            x = layers.Activation("swish", name=name + "expand_activation")(x)
        x = layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False, name=name + "dwconv")(x)
        x = layers.BatchNormalization(name=name + "bn")(x)
        x = layers.Activation("swish", name=name + "activation")(x)
        squeezed = layers.GlobalAveragePooling2D(keepdims=True, name=name + "se_squeeze")(x)
        squeezed = layers.Conv2D(max(se_channels, x.shape[-1] // 16), 1, activation="swish",
                                 name=name + "se_reduce")(squeezed)
        squeezed = layers.Conv2D(x.shape[-1], 1, activation="sigmoid", name=name + "se_expand")(squeezed)
        x = layers.Multiply(name=name + "se_excite")([x, squeezed])
        x = layers.Conv2D(out_channels, 1, use_bias=False, name=name + "project_conv")(x)
        x = layers.BatchNormalization(name=name + "project_bn")(x)
        if stride == 1 and inputs.shape[-1] == out_channels:
            x = layers.Add(name=name + "add")([x, inputs])
    return x


@register_backbone("mbconv_micro", "micro_block5_project_bn",
                   {"scale": 1 / 255.0, "in_model": True},
                   "a 5-block MBConv network (~0.1 M parameters, /32 like EfficientNet: 4x4x96 at "
                   "100x100) that trains from scratch on small data sets; the quickstart's backbone",
                   supports_imagenet=False)
def mbconv_micro(x, weights=None):
    return _mbconv_net(x, "micro_", 16, [(2, 1, 16), (2, 4, 24), (2, 4, 40), (1, 4, 40), (2, 4, 96)])


@register_backbone("test_tiny", "tiny_block2_project_bn",
                   {"scale": 1 / 255.0, "in_model": True},
                   "a two-block MBConv toy (swish, squeeze-excitation) for tests: /8 resolution",
                   supports_imagenet=False)
def test_tiny(x, weights=None, channels=16):
    return _mbconv_net(x, "tiny_", 8, [(2, 1, channels // 2), (2, 1, channels)])
