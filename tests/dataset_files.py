"""Small datasets written in the real on-disk formats, so tests load them through the code users run.

Images carry their class: every pixel is around a class-specific colour, which makes a loaded image
checkable against what was written and lets a short training run learn something.
"""

from __future__ import annotations

import gzip
import hashlib
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image


def class_images(labels: np.ndarray, size: int, seed: int = 0) -> np.ndarray:
    """(N, size, size, 3) uint8 images around a colour per class (the same in every split) plus noise
    drawn with ``seed``."""
    palette = np.random.default_rng(0).integers(30, 226, size=(int(labels.max()) + 1, 3))
    noise = np.random.default_rng(seed).integers(-25, 26, size=(len(labels), size, size, 3))
    return np.clip(palette[labels][:, None, None, :] + noise, 0, 255).astype(np.uint8)


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def write_cifar(root: Path, monkeypatch: pytest.MonkeyPatch, *, cifar100: bool = False, per_class: int = 10,
                test_per_class: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR 'python version' pickles as torchvision reads them. torchvision checks every file's MD5
    against the real release, so the test registers the MD5s of its own files instead.
    Returns the training images (N, 32, 32, 3) and labels in file order."""
    cls = torchvision.datasets.CIFAR100 if cifar100 else torchvision.datasets.CIFAR10
    folder = root / cls.base_folder
    folder.mkdir(parents=True)
    num_classes = 100 if cifar100 else 10
    label_key = "fine_labels" if cifar100 else "labels"
    rng = np.random.default_rng(1)
    train_labels = rng.permutation(np.repeat(np.arange(num_classes), per_class))
    test_labels = np.repeat(np.arange(num_classes), test_per_class)
    train_images = class_images(train_labels, 32, seed=2)

    def dump(name: str, images: np.ndarray, labels: np.ndarray) -> list[str]:
        entry = {"data": images.transpose(0, 3, 1, 2).reshape(len(images), -1), label_key: labels.tolist()}
        if cifar100:
            entry["coarse_labels"] = (labels // 5).tolist()
        (folder / name).write_bytes(pickle.dumps(entry))
        return [name, md5(folder / name)]

    names = [name for name, _ in cls.train_list]
    chunks = np.array_split(np.arange(len(train_labels)), len(names))
    train_list = [dump(name, train_images[c], train_labels[c]) for name, c in zip(names, chunks)]
    test_list = [dump(cls.test_list[0][0], class_images(test_labels, 32, seed=3), test_labels)]
    meta_key = cls.meta["key"]
    meta = {meta_key: [f"class{c}" for c in range(num_classes)]}
    if cifar100:
        meta["coarse_label_names"] = [f"super{c}" for c in range(20)]
    (folder / cls.meta["filename"]).write_bytes(pickle.dumps(meta))
    monkeypatch.setattr(cls, "train_list", train_list)
    monkeypatch.setattr(cls, "test_list", test_list)
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": md5(folder / cls.meta["filename"])})
    return train_images, train_labels


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def write_fashion_mnist(folder: Path, train: int = 60, test: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """The four IDX .gz files Debian's dataset-fashion-mnist installs. Returns train images and labels."""
    folder.mkdir(parents=True, exist_ok=True)
    labels = np.arange(train) % 10
    images = class_images(labels, 28, seed=4)[..., 0]
    test_labels = np.arange(test) % 10
    write_idx(folder / "train-images-idx3-ubyte.gz", images)
    write_idx(folder / "train-labels-idx1-ubyte.gz", labels)
    write_idx(folder / "t10k-images-idx3-ubyte.gz", class_images(test_labels, 28, seed=5)[..., 0])
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", test_labels)
    return images, labels


def save(path: Path, pixels: np.ndarray, mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(pixels)
    (image.convert("L") if mode == "L" else image).save(path)


def write_tinyimagenet(root: Path, wnids: list[str], per_class: int = 6, val_per_class: int = 2, size: int = 16) -> Path:
    """tiny-imagenet-200/ as released: wnids.txt, train/<wnid>/images/*.JPEG (+ the boxes file),
    val/images/*.JPEG with val/val_annotations.txt, test/images/ without labels."""
    folder = root / "tiny-imagenet-200"
    folder.mkdir(parents=True)
    (folder / "wnids.txt").write_text("\n".join(wnids) + "\n")
    labels = np.repeat(np.arange(len(wnids)), per_class)
    for i, (label, pixels) in enumerate(zip(labels, class_images(labels, size, seed=6))):
        wnid = wnids[label]
        # One grey JPEG per class, as the real set has: it must still load as three channels.
        save(folder / "train" / wnid / "images" / f"{wnid}_{i}.JPEG", pixels, "L" if i % per_class == 0 else "RGB")
        (folder / "train" / wnid / f"{wnid}_boxes.txt").write_text("")
    val_labels = np.tile(np.arange(len(wnids)), val_per_class)
    lines = []
    for i, (label, pixels) in enumerate(zip(val_labels, class_images(val_labels, size, seed=7))):
        save(folder / "val" / "images" / f"val_{i}.JPEG", pixels)
        lines.append(f"val_{i}.JPEG\t{wnids[label]}\t0\t0\t{size - 1}\t{size - 1}")
    (folder / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    save(folder / "test" / "images" / "test_0.JPEG", class_images(np.array([0]), size)[0])
    return folder


def write_class_folders(root: Path, classes: list[str], splits: dict[str, int], *, grey: bool = False,
                        sizes: tuple[tuple[int, int], ...] = ((20, 12), (9, 15), (32, 32))) -> None:
    """root/<split>/<class>/<n>.png with images of several sizes; colour and grey mixed unless ``grey``."""
    for split, per_class in splits.items():
        labels = np.repeat(np.arange(len(classes)), per_class)
        for i, label in enumerate(labels):
            h, w = sizes[i % len(sizes)]
            pixels = class_images(np.array([label]), max(h, w), seed=8)[0][:h, :w]
            mode = "L" if grey or i % 3 == 1 else "RGB"
            save(root / split / classes[label] / f"{i}.png", pixels, mode)


def write_imagenet_meta(root: Path, wnids: list[str]) -> None:
    """The meta.bin torchvision's ImageNet writes after parsing the devkit: (wnid -> names, val wnids)."""
    torch.save(({w: (f"name of {w}",) for w in wnids}, []), root / "meta.bin")
