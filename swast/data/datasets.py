"""Built-in datasets, registered by name. A dataset builder takes ``(root, val_fraction, split_seed,
**data.options)`` and returns train/val/test splits whose samples carry their ids; label noise and the
quick-run subset are applied by the run, not here, so every dataset gets them the same way.

Small datasets (digits, Fashion-MNIST, CIFAR) are held in memory as one tensor; image-folder datasets
(TinyImageNet, ImageNet, any ImageFolder tree) are decoded from their files on access. Nothing is ever
downloaded unless ``data.options.download`` says so. docs/DATASETS.md describes every layout.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torchvision
from sklearn.datasets import load_digits

from swast.data.files import class_folder_samples, folder_classes, is_grey, read_idx, tinyimagenet_val_samples
from swast.data.indexed import DataSplits
from swast.data.splits import file_splits, stratified_split, tensor_splits
from swast.errors import UsageError
from swast.registry import datasets

FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist"  # Debian's dataset-fashion-mnist package
# The standard CIFAR-10 class flips (Patrini et al., 2017): truck -> automobile, bird -> airplane,
# deer -> horse, cat <-> dog.
CIFAR10_FLIPS = {9: 1, 2: 0, 4: 7, 3: 5, 5: 3}


def missing(dataset: str, root: str | Path | None, layout: str, get: str) -> UsageError:
    where = f"'{root}' does not hold it" if root is not None else "data.root is not set"
    return UsageError(f"data.root (--data-root): dataset '{dataset}' not found ({where}). Expected {layout}. {get}")


def download_failed(dataset: str, root: str | Path, exc: Exception) -> UsageError:
    return UsageError(f"data.options.download: downloading {dataset} into '{root}' failed ({exc}); "
                      "without a network, copy the files there and leave download off")


def require_root(dataset: str, root: str | None, layout: str, get: str) -> Path:
    if root is None or not Path(root).is_dir():
        raise missing(dataset, root, layout, get)
    return Path(root)


@datasets.register("digits")
def build_digits(root: str | None, val_fraction: float, split_seed: int, test_fraction: float = 0.2) -> DataSplits:
    """scikit-learn's 1,797 real 8x8 handwritten digits (ships with scikit-learn: no download)."""
    bunch = load_digits()
    images = torch.from_numpy(bunch.images.astype(np.float32)[:, None] / 16.0)
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    rest, test = (torch.from_numpy(ids) for ids in stratified_split(labels.numpy(), test_fraction, split_seed))
    classes = [str(c) for c in range(10)]
    return tensor_splits(images[rest], labels[rest], images[test], labels[test], classes, val_fraction, split_seed, padding=None)


def padding_for(size: int, augment: bool) -> int | None:
    """Crop-and-flip shifts of up to size/8 pixels: CIFAR's standard 4 at 32 px."""
    return max(size // 8, 1) if augment else None


@datasets.register("fashion-mnist")
def build_fashion_mnist(root: str | None, val_fraction: float, split_seed: int, download: bool = False, augment: bool = False) -> DataSplits:
    """Zalando's Fashion-MNIST, 60k+10k 28x28 grey images, from the IDX .gz files (Debian: no download)."""
    folder = Path(root or FASHION_MNIST_ROOT)
    if download:
        try:
            torchvision.datasets.FashionMNIST(str(folder), download=True)  # writes FashionMNIST/raw/*.gz
        except (RuntimeError, OSError) as exc:
            raise download_failed("fashion-mnist", folder, exc) from exc
    names = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    found = []
    for name in names:
        candidates = [folder / sub / f"{name}{ext}" for sub in (".", "FashionMNIST/raw") for ext in (".gz", "")]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            raise missing(
                "fashion-mnist", folder, f"the four IDX files ({', '.join(n + '.gz' for n in names)}) in that folder or its FashionMNIST/raw/",
                f"Install them with `apt-get install dataset-fashion-mnist` (to {FASHION_MNIST_ROOT}), point --data-root at "
                "a folder that has them, or pass --set data.options.download=true to let torchvision download them there.",
            )
        found.append(torch.from_numpy(read_idx(path).copy()))
    train_x, train_y, test_x, test_y = found
    classes = list(torchvision.datasets.FashionMNIST.classes)
    return tensor_splits(
        train_x[:, None].float().div_(255), train_y.long(), test_x[:, None].float().div_(255), test_y.long(), classes,
        val_fraction, split_seed, padding=padding_for(28, augment),
    )


def build_cifar(dataset: str, cls: type, folder_name: str, root: str | None, val_fraction: float, split_seed: int, download: bool,
                augment: bool, class_flips: dict[int, int] | None) -> DataSplits:
    layout = f"<data.root>/{folder_name}/ holding the CIFAR 'python version' batches as torchvision reads them"
    get = (f"Download and unpack {cls.filename} from https://www.cs.toronto.edu/~kriz/cifar.html into --data-root, "
           "or pass --set data.options.download=true to let torchvision download it there.")
    if root is None:
        raise missing(dataset, root, layout, get)
    try:
        train, test = (cls(root, train=split, download=download) for split in (True, False))
    except RuntimeError as exc:  # torchvision: files missing or failing their checksum
        raise missing(dataset, root, layout, f"{get} (torchvision: {exc})") from exc
    except OSError as exc:  # a download that could not reach the server
        raise download_failed(dataset, root, exc) from exc

    def tensors(split: torchvision.datasets.CIFAR10) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(split.data).permute(0, 3, 1, 2).float().div_(255), torch.tensor(split.targets, dtype=torch.long)

    return tensor_splits(*tensors(train), *tensors(test), list(train.classes), val_fraction, split_seed,
                         padding=padding_for(32, augment), class_flips=class_flips)


@datasets.register("cifar10")
def build_cifar10(root: str | None, val_fraction: float, split_seed: int, download: bool = False, augment: bool = True) -> DataSplits:
    """CIFAR-10 via torchvision, in memory; random crop (padding 4) and flip for training batches."""
    return build_cifar("cifar10", torchvision.datasets.CIFAR10, "cifar-10-batches-py", root, val_fraction, split_seed, download, augment, CIFAR10_FLIPS)


@datasets.register("cifar100")
def build_cifar100(root: str | None, val_fraction: float, split_seed: int, download: bool = False, augment: bool = True) -> DataSplits:
    """CIFAR-100 via torchvision, in memory; random crop (padding 4) and flip for training batches."""
    return build_cifar("cifar100", torchvision.datasets.CIFAR100, "cifar-100-python", root, val_fraction, split_seed, download, augment, None)


@datasets.register("tinyimagenet")
def build_tinyimagenet(root: str | None, val_fraction: float, split_seed: int, image_size: int = 64, augment: bool = True) -> DataSplits:
    """TinyImageNet-200 in its release layout, read from the files; its labelled val/ is the test split."""
    layout = ("tiny-imagenet-200/ as released: wnids.txt, train/<wnid>/images/*.JPEG, val/images/*.JPEG and "
              "val/val_annotations.txt (--data-root may name that folder or its parent)")
    get = "Download tiny-imagenet-200.zip (http://cs231n.stanford.edu/tiny-imagenet-200.zip) and unzip it."
    folder = require_root("tinyimagenet", root, layout, get)
    if (folder / "tiny-imagenet-200").is_dir():
        folder = folder / "tiny-imagenet-200"
    needed = [folder / "wnids.txt", folder / "train", folder / "val" / "images", folder / "val" / "val_annotations.txt"]
    if not all(p.exists() for p in needed):
        raise missing("tinyimagenet", folder, layout, get)
    wnids = (folder / "wnids.txt").read_text().split()
    class_to_idx = {w: i for i, w in enumerate(wnids)}
    train, test = class_folder_samples(folder / "train", class_to_idx), tinyimagenet_val_samples(folder, class_to_idx)
    if not train or not test:
        raise missing("tinyimagenet", folder, layout, f"{get} (no images found for the classes in wnids.txt)")
    return file_splits(train, test, wnids, val_fraction, split_seed, image_size=image_size, channels=3, augment=augment)


def build_class_folders(dataset: str, folder: Path, val_fraction: float, split_seed: int, *, image_size: int, channels: int | None,
                        augment: bool, layout: str, get: str) -> DataSplits:
    """``folder/train/<class>/*`` for training, ``folder/test/<class>/*`` (or ``val/``) for testing."""
    test_dir = next((folder / name for name in ("test", "val") if (folder / name).is_dir()), None)
    if not (folder / "train").is_dir() or test_dir is None:
        raise missing(dataset, folder, layout, get)
    try:
        classes = folder_classes(folder / "train")
        test_classes = folder_classes(test_dir)
    except FileNotFoundError as exc:
        raise missing(dataset, folder, layout, f"{get} ({exc})") from exc
    unknown = sorted(set(test_classes) - set(classes))
    if unknown:
        raise UsageError(f"data.root: {test_dir} has class folders that train/ lacks: {', '.join(unknown[:5])}")
    class_to_idx = {c: i for i, c in enumerate(classes)}
    train, test = class_folder_samples(folder / "train", class_to_idx), class_folder_samples(test_dir, class_to_idx)
    if not train or not test:
        raise missing(dataset, folder, layout, f"{get} (no image files found in {'train/' if not train else test_dir.name + '/'})")
    if channels is None:
        first = {label: path for path, label in reversed(train)}  # the first image of every class
        channels = 1 if all(is_grey(path) for path in first.values()) else 3
    return file_splits(train, test, classes, val_fraction, split_seed, image_size=image_size, channels=channels, augment=augment)


@datasets.register("imagefolder")
def build_imagefolder(root: str | None, val_fraction: float, split_seed: int, image_size: int = 224, channels: int | None = None,
                      augment: bool = True) -> DataSplits:
    """Any images in class folders: <root>/train/<class>/*, <root>/test/<class>/* (or val/); any size, grey or colour."""
    layout = "<data.root>/train/<class>/<image> and <data.root>/test/<class>/<image> (or val/ instead of test/)"
    get = "Arrange your images in one folder per class under train/ and test/."
    folder = require_root("imagefolder", root, layout, get)
    return build_class_folders("imagefolder", folder, val_fraction, split_seed, image_size=image_size, channels=channels,
                               augment=augment, layout=layout, get=get)


@datasets.register("imagenet")
def build_imagenet(root: str | None, val_fraction: float, split_seed: int, image_size: int = 224, augment: bool = True) -> DataSplits:
    """ImageNet-1K via torchvision's ImageNet (devkit + archives or meta.bin) or as train/ and val/ wnid folders."""
    layout = ("torchvision's ImageNet layout (ILSVRC2012_devkit_t12.tar.gz or meta.bin beside ILSVRC2012_img_train.tar / "
              "ILSVRC2012_img_val.tar or the train/ and val/ folders they unpack to), or train/<wnid>/*.JPEG with "
              "val/<wnid>/*.JPEG")
    get = "ImageNet cannot be downloaded automatically: get ILSVRC2012 from https://image-net.org and put it there."
    folder = require_root("imagenet", root, layout, get)
    if not any((folder / name).exists() for name in ("meta.bin", "ILSVRC2012_devkit_t12.tar.gz")):
        return build_class_folders("imagenet", folder, val_fraction, split_seed, image_size=image_size, channels=3,
                                   augment=augment, layout=layout, get=get)
    try:
        train, test = (torchvision.datasets.ImageNet(str(folder), split=split) for split in ("train", "val"))
    except (RuntimeError, FileNotFoundError) as exc:
        raise missing("imagenet", folder, layout, f"{get} (torchvision: {exc})") from exc
    to_train = [train.wnid_to_idx[wnid] for wnid in test.wnids]  # each folder numbers its own classes
    test_samples = [(path, to_train[label]) for path, label in test.samples]
    return file_splits(train.samples, test_samples, list(train.wnids), val_fraction, split_seed,
                       image_size=image_size, channels=3, augment=augment)
