"""A small Keras CNN with senet's SE blocks, trained for one epoch on a slice of CIFAR-10 (Keras 3, PyTorch backend).

    python examples/keras_cifar10.py                              # 5,000 train / 1,000 test images, SE, 1 epoch
    python examples/keras_cifar10.py --attn none                  # the same CNN without attention
    python examples/keras_cifar10.py --attn eca --train-images 50000 --epochs 10

The images are read straight from the ImageFolder-layout archive ``cifar10-jpeg.tar.gz`` (``cifar10/{train,test}/
<class>/*.jpg``) with ``tarfile`` + PIL, nothing is extracted. The archive is ``--data``, else
``$SENET_DATA_DIR/cifar10-jpeg.tar.gz``, else ``../shared/data/cifar10-jpeg.tar.gz`` beside the repository.

The script prints a summary line and, last, one JSON line with the results.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tarfile
import time
from pathlib import Path

# The PyTorch backend needs no TensorFlow; set before Keras is imported (an explicit $KERAS_BACKEND wins).
os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# Per-channel mean and std of the CIFAR-10 training set (0..1 scale).
MEAN = np.array([0.4914, 0.4822, 0.4465], dtype="float32")
STD = np.array([0.2470, 0.2435, 0.2616], dtype="float32")


def default_archive() -> Path:
    if os.environ.get("SENET_DATA_DIR"):
        return Path(os.environ["SENET_DATA_DIR"]) / "cifar10-jpeg.tar.gz"
    return Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cifar10-jpeg.tar.gz"


def load_slice(archive: Path, per_class: dict[str, int]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The first ``per_class[split]`` images of every class of each split, as ``(N, 32, 32, 3)`` uint8 + labels.

    One streaming pass over the gzip'd tar; reading stops once every quota is met.
    """
    from PIL import Image

    if not archive.is_file():
        sys.exit(f"error: CIFAR-10 archive not found: {archive}; pass --data or set SENET_DATA_DIR")
    index = {name: i for i, name in enumerate(CLASSES)}
    images: dict[str, list] = {split: [] for split in per_class}
    labels: dict[str, list] = {split: [] for split in per_class}
    counts = {(split, c): 0 for split in per_class for c in CLASSES}
    missing = sum(per_class.values()) * len(CLASSES)
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            parts = member.name.split("/")
            if not member.isfile() or len(parts) != 4 or parts[1] not in per_class or parts[2] not in index:
                continue
            split, cls = parts[1], parts[2]
            if counts[split, cls] >= per_class[split]:
                continue
            with Image.open(io.BytesIO(tar.extractfile(member).read())) as img:
                images[split].append(np.asarray(img.convert("RGB")))
            labels[split].append(index[cls])
            counts[split, cls] += 1
            missing -= 1
            if missing == 0:
                break
    short = {k: v for k, v in counts.items() if v < per_class[k[0]]}
    if short:
        sys.exit(f"error: {archive} holds fewer images than asked for: {short}")
    return {s: (np.stack(images[s]), np.array(labels[s], dtype="int64")) for s in per_class}


def build_model(attn: str, width: int = 32):
    """Three conv stages (width, 2*width, 4*width) with an attention block after each, GAP, linear classifier."""
    import keras

    import senet.keras as sk

    blocks = {
        "se": lambda: sk.SqueezeExcite(reduction=4),  # the Keras tutorials' ratio 4 (rd_ratio=1/4)
        "eca": lambda: sk.ECA(),
        "cbam": lambda: sk.CBAM(reduction=4),
        "none": None,
    }
    inputs = keras.Input((32, 32, 3))
    x = inputs
    for stage in range(3):
        x = keras.layers.Conv2D(width * 2**stage, 3, padding="same", use_bias=False)(x)
        # PyTorch's momentum: Keras' default (0.99) leaves the moving statistics half at their initial values after
        # the ~80 steps of a one-epoch run, and the test accuracy (which uses them) far below the train accuracy.
        x = keras.layers.BatchNormalization(momentum=0.9)(x)
        x = keras.layers.ReLU()(x)
        if blocks[attn] is not None:
            x = blocks[attn]()(x)
        x = keras.layers.MaxPooling2D()(x) if stage < 2 else keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(len(CLASSES))(x)
    return keras.Model(inputs, outputs, name=f"cifar_cnn_{attn}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", type=Path, metavar="PATH", default=None, help="cifar10-jpeg.tar.gz (default: see above)"
    )
    parser.add_argument("--attn", choices=("se", "eca", "cbam", "none"), default="se", help="block (default: se)")
    parser.add_argument("--train-images", type=int, default=5000, metavar="N", help="train images (default: 5000)")
    parser.add_argument("--test-images", type=int, default=1000, metavar="N", help="test images (default: 1000)")
    parser.add_argument("--epochs", type=int, default=1, metavar="N", help="epochs (default: 1)")
    parser.add_argument("--batch-size", type=int, default=64, metavar="N", help="batch size (default: 64)")
    parser.add_argument("--lr", type=float, default=2e-3, metavar="LR", help="Adam learning rate (default: 0.002)")
    parser.add_argument("--seed", type=int, default=0, metavar="N", help="random seed (default: 0)")
    args = parser.parse_args(argv)
    for flag in ("train_images", "test_images"):
        if getattr(args, flag) < len(CLASSES) or getattr(args, flag) % len(CLASSES):
            parser.error(f"--{flag.replace('_', '-')} must be a positive multiple of {len(CLASSES)}")

    import keras

    keras.utils.set_random_seed(args.seed)
    archive = args.data or default_archive()
    t0 = time.perf_counter()
    data = load_slice(archive, {"train": args.train_images // 10, "test": args.test_images // 10})
    load_s = time.perf_counter() - t0
    (x_train, y_train), (x_test, y_test) = data["train"], data["test"]
    x_train = (x_train.astype("float32") / 255 - MEAN) / STD
    x_test = (x_test.astype("float32") / 255 - MEAN) / STD

    model = build_model(args.attn)
    model.compile(
        optimizer=keras.optimizers.Adam(args.lr),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    t0 = time.perf_counter()
    history = model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs, shuffle=True, verbose=2)
    train_s = time.perf_counter() - t0
    test_loss, test_acc = model.evaluate(x_test, y_test, batch_size=256, verbose=0)

    result = {
        "attn": args.attn,
        "params": model.count_params(),
        "train_images": len(x_train),
        "test_images": len(x_test),
        "epochs": args.epochs,
        "train_acc": round(float(history.history["accuracy"][-1]), 4),
        "test_acc": round(float(test_acc), 4),
        "test_loss": round(float(test_loss), 4),
        "load_s": round(load_s, 1),
        "train_s": round(train_s, 1),
        "backend": keras.backend.backend(),
        "keras": keras.__version__,
    }
    print(
        f"{args.attn}: {result['params']:,} params, test accuracy {test_acc:.2%} on {len(x_test):,} images after "
        f"{args.epochs} epoch(s) on {len(x_train):,} ({train_s:.1f} s training, {load_s:.1f} s reading)"
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
