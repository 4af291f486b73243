"""The tensor fast path: batched augmentation, determinism per (seed, epoch), DDP sharding; the DataLoader path."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from _tiny_data import write_tree

from senet.data import TensorLoader, TensorSplit, create_loaders, shard_indices


def _split(n: int = 24) -> TensorSplit:
    g = torch.Generator().manual_seed(0)
    return TensorSplit(
        torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=g),
        torch.arange(n) % 3,
        ["a", "b", "c"],
        ["a", "b", "c"],
    )


def _loader(**kw) -> TensorLoader:  # noqa: ANN003
    args = dict(train=True, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), pad=2, flip=True, seed=3)
    args.update(kw)
    return TensorLoader(_split(), 8, **args)


def test_same_epoch_same_batches_and_new_epoch_differs() -> None:
    a, b = _loader(), _loader()
    xa = [x for x, _ in a]
    assert all(torch.equal(x, y) for x, (y, _) in zip(xa, b))
    a.set_epoch(1)
    assert not torch.equal(next(iter(a))[0], xa[0])


def test_eval_batches_are_unaugmented_and_normalised() -> None:
    s = _split()
    ld = TensorLoader(s, 10, train=False, mean=(0.5,) * 3, std=(0.25,) * 3)
    xs, ys = zip(*ld)
    x, y = torch.cat(xs), torch.cat(ys)
    torch.testing.assert_close(x, (s.images.float() / 255 - 0.5) / 0.25)
    assert torch.equal(y, s.labels)


def test_crop_and_flip_only_move_pixels() -> None:
    ld = _loader(pad=0, flip=True)
    s = _split()
    for idx, (x, _) in zip(shard_indices(24, 8, train=True, seed=3), ld):
        raw = (x * 0.25 + 0.5) * 255
        ref = s.images[idx].float()
        same = torch.isclose(raw, ref, atol=1e-3).flatten(1).all(1)
        flipped = torch.isclose(raw, ref.flip(3), atol=1e-3).flatten(1).all(1)
        assert bool((same | flipped).all())
        break


def test_pad_crop_introduces_zero_border_somewhere() -> None:
    x, _ = next(iter(_loader(pad=2, flip=False)))
    zero = (0 - 0.5) / 0.25
    assert bool((x == zero).any()), "padding by 2 must show zero pixels in at least one crop of 8"


def test_cutout_zeroes_a_box() -> None:
    x, _ = next(iter(_loader(pad=0, flip=False, cutout=4)))
    zeros = (x == 0).all(1).flatten(1).sum(1)
    assert bool((zeros >= 4).all()) and bool((zeros <= 16).all())


def test_two_ranks_together_see_the_single_process_batch() -> None:
    single = _loader()
    ranks = [_loader(rank=r, world_size=2) for r in (0, 1)]
    for (x, y), (x0, y0), (x1, y1) in zip(single, *ranks):
        assert torch.equal(x, torch.cat([x0, x1])) and torch.equal(y, torch.cat([y0, y1]))


def test_resume_mid_epoch_skips_exactly() -> None:
    full = [x for x, _ in _loader()]
    ld = _loader()
    ld.set_epoch(0, start_batch=2)
    rest = [x for x, _ in ld]
    assert len(rest) == len(full) - 2 and all(torch.equal(a, b) for a, b in zip(rest, full[2:]))


def test_eval_shards_cover_everything_once() -> None:
    parts = [torch.cat(shard_indices(23, 8, train=False, rank=r, world_size=2)) for r in (0, 1)]
    assert sorted(torch.cat(parts).tolist()) == list(range(23))


def test_dataloader_path_for_larger_images(tmp_path: Path) -> None:
    write_tree(tmp_path / "big", n_train=4, n_test=2, size=80, ext=".jpg")
    data = create_loaders(tmp_path / "big", batch_size=6, img_size=48, workers=0)
    assert data.loader == "dataloader"
    x, y = next(iter(data.train))
    assert x.shape == (6, 3, 48, 48) and x.dtype == torch.float32 and y.shape == (6,)
    xs = [x for x, _ in data.eval]
    assert sum(len(x) for x in xs) == 6


def test_small_images_take_the_tensor_path(tmp_path: Path) -> None:
    write_tree(tmp_path / "small", n_train=4, n_test=2)
    data = create_loaders(tmp_path / "small", batch_size=6, cache_dir=tmp_path / "cache")
    assert data.loader == "tensor" and data.img_size == 32 and len(data.train) == 2
    with pytest.raises(ValueError, match="larger than the 12 training images"):
        create_loaders(tmp_path / "small", batch_size=16, cache_dir=tmp_path / "cache").train._batches()
