"""Bad and unusual image files, generated here: what converts to RGB, what stops with a one-line error naming the
file, and what ``--skip-bad-images`` leaves out and reports."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _rel import (  # noqa: E402
    assert_main_error,
    bad_images,
    convertible_images,
    encode,
    rgb_image,
    write_tree,
)

from senet.data import create_loaders  # noqa: E402
from senet.data.decode import decode_rgb  # noqa: E402
from senet.data.imagenet import FileDataset, eval_transform  # noqa: E402
from senet.errors import SenetError  # noqa: E402

CONVERTIBLE = convertible_images()
BAD = bad_images()


@pytest.mark.parametrize("kind", sorted(CONVERTIBLE))
def test_convertible_images_decode_to_rgb_uint8(kind: str) -> None:
    img = decode_rgb(CONVERTIBLE[kind], f"{kind}.png")
    assert img.dtype == torch.uint8 and img.ndim == 3 and img.shape[0] == 3
    assert img.shape[1:] == ((1, 1) if kind == "one_by_one" else (16, 16))
    if kind.startswith("greyscale"):
        assert torch.equal(img[0], img[1]) and torch.equal(img[1], img[2])
    if kind == "one_by_one":
        assert img.flatten().tolist() == [10, 20, 30]


def test_16bit_png_keeps_the_high_byte() -> None:
    from PIL import Image

    px = np.random.default_rng(3).integers(0, 65536, (8, 8), dtype=np.uint16)
    img = decode_rgb(encode(Image.fromarray(px), "PNG"), "deep.png")
    assert torch.equal(img[0], torch.from_numpy((px >> 8).astype(np.uint8)))


@pytest.mark.parametrize("kind", sorted(BAD))
def test_undecodable_files_raise_one_line_naming_the_file(kind: str) -> None:
    with pytest.raises(SenetError) as e:
        decode_rgb(BAD[kind], f"/data/train/cat/{kind}.jpg")
    msg = str(e.value)
    assert f"/data/train/cat/{kind}.jpg" in msg and "\n" not in msg and "--skip-bad-images" in msg


def test_wrong_extension_is_decoded_by_content(tmp_path: Path) -> None:
    # A PNG named .jpg and a JPEG named .png both decode; a text file named .jpg is an error naming it.
    png_as_jpg = encode(rgb_image(seed=5), "PNG")
    assert torch.equal(decode_rgb(png_as_jpg, "x.jpg"), torch.from_numpy(np.array(rgb_image(seed=5))).permute(2, 0, 1))
    assert decode_rgb(encode(rgb_image(), "JPEG"), "x.png").shape == (3, 16, 16)


def test_huge_image_decodes_and_is_resized_on_the_dataloader_path(tmp_path: Path) -> None:
    from PIL import Image

    f = tmp_path / "huge.png"
    Image.new("RGB", (6000, 5000), (200, 100, 50)).save(f, compress_level=1)  # 30 Mpx, a few hundred kB
    ds = FileDataset([f], [0], ["a"], eval_transform(32))
    x, y = ds[0]
    assert x.shape == (3, 32, 32) and y == 0


def _tree_with(tmp_path: Path, name: str, data: bytes, split: str = "train") -> tuple[Path, Path]:
    root = write_tree(tmp_path / "ds", n=8)
    bad = root / split / "dog" / name
    bad.write_bytes(data)
    return root, bad


@pytest.mark.parametrize("loader", ["tensor", "dataloader"])
def test_bad_file_in_dataset_stops_with_its_name(tmp_path: Path, loader: str) -> None:
    root, bad = _tree_with(tmp_path, "zz_truncated.jpg", BAD["truncated_jpeg"])
    # workers=1: the DataLoader path decodes in a worker process; the error must still be one line naming the file.
    with pytest.raises(SenetError) as e:  # the tensor path decodes up front, the DataLoader path when it reaches it
        data = create_loaders(root, batch_size=8, loader=loader, img_size=16, workers=1, cache_dir=tmp_path / "c")
        data.train.set_epoch(0)
        for _ in data.train:
            pass
    msg = str(e.value)
    assert str(bad) in msg and "\n" not in msg and "Traceback" not in msg


@pytest.mark.parametrize("loader", ["tensor", "dataloader"])
def test_skip_bad_images_leaves_them_out_and_lists_them(tmp_path: Path, loader: str) -> None:
    root = write_tree(tmp_path / "ds", n=8)
    bad_paths = []
    for i, (kind, data) in enumerate(sorted(BAD.items())):
        p = root / ("train" if i % 2 else "val") / "dog" / f"bad_{kind}.jpg"
        p.write_bytes(data)
        bad_paths.append(str(p))
    data = create_loaders(
        root, batch_size=8, loader=loader, img_size=16, workers=0, cache_dir=tmp_path / "c", skip_bad_images=True
    )
    assert sorted(data.skipped) == sorted(bad_paths)
    assert data.train.num_samples == 16 and data.eval.num_samples == 16  # labels of good images untouched
    labels = torch.cat([y for _, y in data.eval])
    assert labels.tolist() == [0] * 8 + [1] * 8


def test_cli_train_bad_image_one_line_then_skip(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root, bad = _tree_with(tmp_path, "000_empty.png", b"")
    common = ["train", "--model", "_rel:tiny_net", "--data", str(root), "--epochs", "1", "--batch-size", "8",
              "--device", "cpu", "--progress", "none", "--cache-dir", str(tmp_path / "c")]  # fmt: skip
    assert_main_error(capsys, [*common, "--output", str(tmp_path / "r1")], str(bad), "empty")
    from senet.cli import main

    rc = main([*common, "--output", str(tmp_path / "r2"), "--skip-bad-images"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["skipped_images"] == 1 and result["skipped"] == [str(bad)]
    assert str(bad) in err.strip().splitlines()[-1]  # the list is reported at the end


def test_cli_predict_bad_and_unusual_images(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from senet.cli import main
    from senet.train import load_config, train

    root = write_tree(tmp_path / "ds", n=8)
    kw = dict(model="_rel:tiny_net", data=str(root), epochs=1, batch_size=8, device="cpu", progress="none")
    cfg = load_config(None, dict(kw, output=str(tmp_path / "run"), cache_dir=str(tmp_path / "c")))
    train(cfg, print_fn=lambda *a: None)
    ok = []
    for kind in ("cmyk_jpeg", "png_16bit", "palette_png", "one_by_one"):
        p = tmp_path / f"{kind}.img"
        p.write_bytes(CONVERTIBLE[kind])
        ok.append(str(p))
    capsys.readouterr()
    assert main(["predict", "--checkpoint", str(tmp_path / "run"), "--device", "cpu", *ok]) == 0
    preds = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["predictions"]
    assert [p["image"] for p in preds] == ok
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(BAD["corrupt_jpeg"])
    assert_main_error(
        capsys, ["predict", "--checkpoint", str(tmp_path / "run"), "--device", "cpu", str(bad)], str(bad)
    )
    shutil.rmtree(tmp_path / "c", ignore_errors=True)


def test_cli_eval_skip_bad_images(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from senet.cli import main
    from senet.train import load_config, train

    root = write_tree(tmp_path / "ds", n=8)
    kw = dict(model="_rel:tiny_net", data=str(root), epochs=1, batch_size=8, device="cpu", progress="none")
    train(load_config(None, dict(kw, output=str(tmp_path / "run"), cache_dir=str(tmp_path / "c"))), print_fn=print)
    bad = root / "val" / "cat" / "zz_bad.png"
    bad.write_bytes(BAD["not_an_image"])
    argv = ["eval", "--checkpoint", str(tmp_path / "run"), "--device", "cpu", "--plot", "none"]
    assert_main_error(capsys, argv, str(bad))
    assert main([*argv, "--skip-bad-images"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out.strip().splitlines()[-1])["n"] == 16 and str(bad) in err
