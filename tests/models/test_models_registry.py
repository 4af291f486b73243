"""The registry and factory: names, globs, errors, None-pruning, the pretrained hook."""

from __future__ import annotations

import pytest
import torch

import senet
from senet.errors import SenetError
from senet.models import _registry, create_model, is_model, list_models, register_model


def test_exported_from_senet() -> None:
    # senet.create_model is the registry's factory plus weight loading (senet/factory.py).
    assert senet.create_model is senet.factory.create_model
    assert senet.list_models is list_models


def test_list_models_globs() -> None:
    assert list_models("se_resnet5*") == ["se_resnet50", "se_resnet50_caffe", "se_resnet56"]
    assert list_models(["vgg*", "mobilenet_v2"]) == ["mobilenet_v2", "vgg16_bn"]
    assert "resnet50" not in list_models("*", exclude="resnet*")
    assert list_models("no_such_*") == []
    assert list_models() == sorted(list_models())


def test_is_model() -> None:
    assert is_model("senet154")
    assert not is_model("senet155")


def test_duplicate_name_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_registry, "_MODELS", dict(_registry._MODELS))

    def resnet50(**kwargs):  # noqa: ANN202 - a stand-in entrypoint
        return torch.nn.Identity()

    with pytest.raises(ValueError, match="already registered"):
        register_model(resnet50)

    def brand_new_model(**kwargs):  # noqa: ANN202
        return torch.nn.Linear(2, kwargs.get("num_classes", 3))

    assert register_model(brand_new_model) is brand_new_model
    assert is_model("brand_new_model")
    assert create_model("brand_new_model", num_classes=5).out_features == 5


def test_unknown_name_lists_close_matches() -> None:
    with pytest.raises(SenetError, match="se_resnet50") as info:
        create_model("se_resnt50")
    assert "unknown model 'se_resnt50'" in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_option_is_a_user_error() -> None:
    with pytest.raises(SenetError, match="resnet20.*no_such_knob"):
        create_model("resnet20", no_such_knob=1)


def test_none_overrides_are_pruned() -> None:
    # None means "unset" (a CLI flag left out): the model default stays.
    with torch.device("meta"):
        m = create_model("senet154", num_classes=None, drop_rate=None, attn_layer=None, attn_kwargs=None)
    assert m.num_classes == 1000
    assert m.head_drop.p == 0.2
    assert len(list(m.attention_modules())) == 50


def test_defaults_and_model_name() -> None:
    assert create_model("resnet20").num_classes == 10
    assert create_model("resnet18").num_classes == 1000
    m = create_model("se_resnet20", num_classes=100, attn_position="pre")
    assert (m.num_classes, m.model_name, m.attn_position) == (100, "se_resnet20", "pre")


def test_pretrained_calls_load_pretrained(monkeypatch: pytest.MonkeyPatch) -> None:
    import senet.weights

    calls = []
    monkeypatch.setattr(senet.weights, "load_pretrained", lambda model, src: calls.append((model, src)))
    m = senet.create_model("resnet20", pretrained="some/file.safetensors")
    assert calls == [(m, "some/file.safetensors")]
    senet.create_model("resnet20")
    assert len(calls) == 1


def test_registry_builds_without_weights() -> None:
    # Loading weights is senet.create_model's job (above the registry), so models never imports weights.
    with pytest.raises(SenetError, match=r"senet\.create_model"):
        create_model("resnet20", pretrained="some/file.safetensors")
    assert create_model("resnet20", pretrained=None).num_classes == 10


@pytest.mark.parametrize("name", ["resnet20", "mobilenet_v2", "vgg16_bn"])
def test_reset_classifier_keeps_device_and_dtype(name: str) -> None:
    with torch.device("meta"):
        model = create_model(name).to(torch.float64)
    model.reset_classifier(5)
    fc = model.get_classifier()
    assert (fc.out_features, fc.weight.dtype, fc.weight.device.type) == (5, torch.float64, "meta")
