"""senet.keras layers: the Keras tutorials' sizes, knobs and defaults, layouts and ranks, saving, training, errors."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import torch

import senet.layers as tl
from senet.errors import SenetError
from senet.keras import CBAM, ECA, SCSE, EffectiveSE, SqueezeExcite, to_torch

# Keras converts torch tensors with np.array(x), which NumPy 2 flags; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

KINDS = {"se": SqueezeExcite, "eca": ECA, "cbam": CBAM, "ese": EffectiveSE, "scse": SCSE}
TORCH = {
    "se": tl.SqueezeExcite,
    "eca": tl.EfficientChannelAttn,
    "cbam": tl.CBAM,
    "ese": tl.EffectiveSE,
    "scse": tl.SCSE,
}


def shape_for(dims: int, channels: int, data_format: str) -> tuple[int, ...]:
    spatial = (6, 5, 4)[:dims]
    return (*spatial, channels) if data_format == "channels_last" else (channels, *spatial)


def run(layer, x: np.ndarray, **kw) -> np.ndarray:
    return keras.ops.convert_to_numpy(layer(x, **kw))


# --- the Keras tutorials' conventions --------------------------------------------------------------------------------


def tutorial_se(inputs, ratio: int):
    """The 15-line SE function Keras tutorials teach (GAP, Dense C/r ReLU, Dense C sigmoid, multiply)."""
    c = inputs.shape[-1]
    s = keras.layers.GlobalAveragePooling2D()(inputs)
    s = keras.layers.Dense(c // ratio, activation="relu")(s)
    s = keras.layers.Dense(c, activation="sigmoid")(s)
    s = keras.layers.Reshape((1, 1, c))(s)
    return keras.layers.Multiply()([inputs, s])


@pytest.mark.parametrize("kw", [{"reduction": 4}, {"rd_ratio": 1 / 4}, {"rd_ratio": 0.25}])
def test_se_tutorial_318_params_and_same_function(kw: dict) -> None:
    inputs = keras.Input((56, 56, 24))
    ours = keras.Model(inputs, SqueezeExcite(**kw)(inputs))
    lines: list[str] = []
    ours.summary(print_fn=lambda line, *a, **k: lines.append(line))
    assert ours.count_params() == 318
    assert "318" in "\n".join(lines)
    layer = ours.layers[-1]
    assert (layer.fc1.units, layer.fc2.units) == (6, 24)

    theirs = keras.Model(inputs, tutorial_se(inputs, ratio=4))
    assert theirs.count_params() == 318
    # Same weights, same function: the layer is the tutorial's block, not merely the same size.
    dense = [lyr for lyr in theirs.layers if isinstance(lyr, keras.layers.Dense)]
    layer.fc1.set_weights(dense[0].get_weights())
    layer.fc2.set_weights(dense[1].get_weights())
    x = np.random.default_rng(0).normal(size=(2, 56, 56, 24)).astype("float32")
    np.testing.assert_allclose(run(ours, x), run(theirs, x), atol=1e-6)


def test_eca_tutorial_5_params() -> None:
    inputs = keras.Input((26, 26, 512))
    model = keras.Model(inputs, ECA(gamma=2, beta=1)(inputs))
    lines: list[str] = []
    model.summary(print_fn=lambda line, *a, **k: lines.append(line))
    assert model.count_params() == 5
    assert model.layers[-1].conv.kernel.shape == (5, 1, 1)


@pytest.mark.parametrize(("channels", "k"), [(64, 3), (128, 5), (512, 5), (1024, 5), (2048, 7)])
def test_eca_kernel_rule_matches_torch(channels: int, k: int) -> None:
    layer = ECA()
    layer.build((None, 1, 1, channels))
    assert layer.conv.kernel_size == (k,)
    assert layer.count_params() == sum(p.numel() for p in tl.EfficientChannelAttn(channels).parameters()) == k


def test_rd_ratio_is_one_over_r_and_the_integer_ratio_is_refused_with_a_hint() -> None:
    with pytest.raises(SenetError, match=r"rd_ratio is 1/r.*rd_ratio=1/4 or reduction=4"):
        SqueezeExcite(rd_ratio=4)
    with pytest.raises(SenetError, match="both rd_ratio"):
        CBAM(rd_ratio=0.5, reduction=4)
    with pytest.raises(SenetError, match="reduction is r"):
        SCSE(reduction=0.25)
    assert SqueezeExcite(reduction=8).rd_ratio == SqueezeExcite(rd_ratio=1 / 8).rd_ratio == 0.125


@pytest.mark.parametrize("kind", list(KINDS))
def test_knob_names_and_defaults_match_senet_layers(kind: str) -> None:
    ours = inspect.signature(KINDS[kind]).parameters
    torch_params = inspect.signature(TORCH[kind]).parameters
    # Keras infers C from the input and the rank from the input too (so CBAM has no ``dims``).
    shared = [n for n in torch_params if n not in ("channels", "dims")]
    for name in shared:
        assert name in ours, f"{kind}: knob {name} missing"
        assert ours[name].default == torch_params[name].default, f"{kind}: default of {name} differs"
    extra = set(ours) - set(shared) - {"reduction", "data_format", "kwargs"}
    assert not extra, f"{kind}: knobs senet.layers lacks: {extra}"


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("channels", [64, 256])
def test_param_counts_match_torch(kind: str, channels: int) -> None:
    layer = KINDS[kind]()
    layer.build((None, 7, 7, channels))
    block = TORCH[kind](channels)
    # Keras counts BatchNorm's moving statistics as (non-trainable) weights; torch keeps them as buffers.
    non_trainable = sum(int(np.prod(w.shape)) for w in layer.non_trainable_weights)
    assert layer.count_params() - non_trainable == sum(p.numel() for p in block.parameters())


# --- layouts and ranks ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("dims", [1, 2, 3])
def test_channels_first_equals_channels_last_transposed(kind: str, dims: int) -> None:
    x_last = np.random.default_rng(dims).normal(size=(2, *shape_for(dims, 16, "channels_last"))).astype("float32")
    last = KINDS[kind](data_format="channels_last")
    first = KINDS[kind](data_format="channels_first")
    y_last = run(last, x_last)
    first.build((None, *shape_for(dims, 16, "channels_first")))
    first.set_weights(last.get_weights())
    y_first = run(first, np.moveaxis(x_last, -1, 1))
    assert y_last.shape == x_last.shape
    np.testing.assert_allclose(np.moveaxis(y_first, 1, -1), y_last, atol=1e-6)


def test_data_format_none_follows_keras_config() -> None:
    assert SqueezeExcite().data_format == keras.config.image_data_format() == "channels_last"
    keras.config.set_image_data_format("channels_first")
    try:
        assert SqueezeExcite().data_format == "channels_first"
    finally:
        keras.config.set_image_data_format("channels_last")


def test_se_gate_is_per_channel_and_in_unit_interval() -> None:
    layer = SqueezeExcite(reduction=4)
    x = np.random.default_rng(0).normal(size=(3, 8, 8, 16)).astype("float32")
    s = keras.ops.convert_to_numpy(layer.excitation(x))
    assert s.shape == (3, 16) and (s > 0).all() and (s < 1).all()
    np.testing.assert_allclose(run(layer, x), x * s[:, None, None, :], rtol=1e-6)


def test_cbam_rank_is_fixed_at_build() -> None:
    layer = CBAM()
    layer(np.zeros((1, 5, 5, 16), "float32"))
    assert layer.dims == 2 and isinstance(layer.spatial_conv, keras.layers.Conv2D)
    with pytest.raises(SenetError, match="built for 2-D maps"):
        layer(np.zeros((1, 5, 16), "float32"))


def test_cbam_batchnorm_uses_batch_stats_in_training_and_moving_stats_in_inference() -> None:
    layer = CBAM(reduction=4)
    x = np.random.default_rng(0).normal(2.0, 3.0, size=(4, 6, 6, 16)).astype("float32")
    y_inf = run(layer, x, training=False)
    y_train = run(layer, x, training=True)
    assert not np.allclose(y_inf, y_train)
    assert not np.allclose(keras.ops.convert_to_numpy(layer.spatial_bn.moving_mean), 0.0)


# --- saving ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "dims", "data_format", "kw"),
    [
        ("se", 2, "channels_last", {"reduction": 4, "act_layer": "silu", "gate_layer": "hard_sigmoid"}),
        ("se", 1, "channels_first", {"squeeze": "avgmax", "bias": False, "rd_divisor": 8}),
        ("eca", 2, "channels_last", {}),
        ("eca", 3, "channels_first", {"kernel_size": 5}),
        ("cbam", 2, "channels_last", {"mlp_bias": True}),
        ("cbam", 3, "channels_first", {"spatial_kernel_size": 3, "spatial_norm": False}),
        ("ese", 2, "channels_last", {"add_maxpool": True}),
        ("scse", 2, "channels_last", {"combine": "max", "rd_ratio": 0.5}),
    ],
)
def test_keras_file_round_trip(tmp_path, kind: str, dims: int, data_format: str, kw: dict) -> None:
    inputs = keras.Input(shape_for(dims, 16, data_format))
    h = KINDS[kind](data_format=data_format, **kw)(inputs)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling1D()(keras.layers.Reshape((-1, 16))(h)))
    # Non-default BatchNorm statistics, so the file must carry them for the outputs to match.
    for w in model.non_trainable_weights:
        w.assign(np.random.default_rng(1).uniform(0.5, 1.5, size=w.shape).astype("float32"))
    x = np.random.default_rng(0).normal(size=(2, *inputs.shape[1:])).astype("float32")
    path = tmp_path / f"{kind}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    layer, again = model.layers[1], loaded.layers[1]
    assert type(again) is type(layer)
    assert again.get_config() == layer.get_config()
    assert again.count_params() == layer.count_params()
    np.testing.assert_allclose(run(loaded, x), run(model, x), atol=1e-6)
    # A loaded layer is built and converts like the original.
    ref, got = to_torch(layer).state_dict(), to_torch(again).state_dict()
    assert all(torch.equal(got[k], ref[k]) for k in ref)


@pytest.mark.parametrize("kind", list(KINDS))
def test_config_round_trip(kind: str) -> None:
    layer = KINDS[kind](data_format="channels_first", name=f"my_{kind}")
    config = layer.get_config()
    again = KINDS[kind].from_config(config)
    assert again.get_config() == config
    assert keras.saving.get_registered_name(KINDS[kind]) == f"senet>{KINDS[kind].__name__}"


# --- training -------------------------------------------------------------------------------------------------------


def test_trains_in_a_model() -> None:
    model = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(16, 3, padding="same"),
            CBAM(reduction=4),
            SqueezeExcite(reduction=4),
            ECA(),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(2),
        ]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=keras.losses.SparseCategoricalCrossentropy(True))
    before = [np.array(w) for w in model.layers[2].get_weights()]
    rng = np.random.default_rng(0)
    model.fit(rng.normal(size=(8, 8, 8, 3)).astype("float32"), rng.integers(0, 2, 8), epochs=1, verbose=0)
    after = model.layers[2].get_weights()
    assert all(not np.allclose(a, b) for a, b in zip(before, after) if a.size > 1)


# --- errors ---------------------------------------------------------------------------------------------------------


def test_bad_values_raise_senet_errors() -> None:
    with pytest.raises(SenetError, match="data_format"):
        SqueezeExcite(data_format="NHWC")
    with pytest.raises(SenetError, match="unknown act_layer 'mish'"):
        SqueezeExcite(act_layer="mish")
    with pytest.raises(SenetError, match="gate_layer must be a name"):
        ECA(gate_layer=keras.activations.sigmoid)
    with pytest.raises(SenetError, match="squeeze"):
        SqueezeExcite(squeeze="median")
    with pytest.raises(SenetError, match="kernel_size must be a positive odd"):
        ECA(kernel_size=4)
    with pytest.raises(SenetError, match="combine"):
        SCSE(combine="mul")
    with pytest.raises(SenetError, match="rank-3, 4 or 5"):
        SqueezeExcite()(np.zeros((2, 16), "float32"))
    with pytest.raises(SenetError, match="must be known"):
        SqueezeExcite().build((None, 4, 4, None))
    built = ECA()
    built(np.zeros((1, 4, 4, 16), "float32"))
    built(np.zeros((1, 9, 16), "float32"))  # another rank is fine: the weights do not depend on it
    with pytest.raises(ValueError, match="expected axis -1 of input shape to have value 16"):
        built(np.zeros((1, 4, 4, 8), "float32"))


def test_import_senet_does_not_import_keras_and_backend_falls_back_to_torch(tmp_path) -> None:
    """``import senet`` stays Keras-free; ``import senet.keras`` picks torch when the configured backend is absent."""
    home = tmp_path / "keras_home"
    home.mkdir()
    # keras.json as Keras writes it on first use; pick a backend that is not installed here.
    missing = next(b for b in ("tensorflow", "jax", "openvino") if not _installed(b))
    (home / "keras.json").write_text(f'{{"backend": "{missing}"}}')
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env["KERAS_HOME"] = str(home)
    code = (
        "import sys, senet, senet.layers; assert 'keras' not in sys.modules, 'import senet imported keras'; "
        "import senet.keras, keras; print(keras.backend.backend())"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "torch"


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None
