"""Every built-in dataset, loaded from small files written in its real format through the code users
run (registry -> builder -> DataSplits), and the errors a user sees when the files are not there."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import pytest
import torch
import torchvision
from click.testing import CliRunner
from dataset_files import (
    write_cifar,
    write_class_folders,
    write_fashion_mnist,
    write_imagenet_meta,
    write_tinyimagenet,
)

from swast import registry
from swast.cli import main
from swast.config import build_config
from swast.data.datasets import CIFAR10_FLIPS
from swast.data.loading import iterate_batches
from swast.errors import UsageError
from swast.trainer import Trainer, load_data

WNIDS = ["n01443537", "n01629819", "n01641577"]


def build(name: str, root, val_fraction: float = 0.2, split_seed: int = 0, **options):
    return registry.datasets.get(name)(None if root is None else str(root), val_fraction, split_seed, **options)


def test_cifar10_loads_through_torchvision_in_memory_with_stratified_validation(tmp_path, monkeypatch):
    images, _ = write_cifar(tmp_path, monkeypatch)
    splits = build("cifar10", tmp_path, val_fraction=0.2)
    assert splits.num_classes == 10 and splits.input_shape == (3, 32, 32)
    assert splits.train.classes == [f"class{c}" for c in range(10)], "class names come from batches.meta"
    assert splits.train.in_memory and splits.val.in_memory and splits.test.in_memory
    assert len(splits.train) == 80 and len(splits.val) == 20 and len(splits.test) == 30
    assert torch.equal(torch.bincount(splits.val.labels, minlength=10), torch.full((10,), 2)), "stratified"
    # Normalised per channel with the training split's statistics.
    x = splits.train.inputs
    assert torch.allclose(x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(x.std(dim=(0, 2, 3), correction=0), torch.ones(3), atol=1e-4)
    # Train and val together hold the 100 written training images, none of them twice.
    pool = torch.cat([splits.train.inputs, splits.val.inputs]).flatten(1)
    assert torch.unique(pool, dim=0).shape[0] == len(images) == 100
    # Only training batches are augmented; the documented class flips come with the splits.
    assert splits.train.augment is not None and splits.val.augment is None and splits.test.augment is None
    assert splits.class_flips == CIFAR10_FLIPS


def test_cifar_pixels_and_labels_round_trip_in_file_order(tmp_path, monkeypatch):
    images, labels = write_cifar(tmp_path, monkeypatch)
    splits = build("cifar10", tmp_path, val_fraction=0.0)
    assert splits.val is None and torch.equal(splits.train.labels, torch.from_numpy(labels))
    raw = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    mean, std = raw.mean(dim=(0, 2, 3)), raw.std(dim=(0, 2, 3), correction=0)
    assert torch.allclose(splits.train.inputs * std.view(1, 3, 1, 1) + mean.view(1, 3, 1, 1), raw, atol=1e-5)


def test_cifar100_uses_fine_labels(tmp_path, monkeypatch):
    _, labels = write_cifar(tmp_path, monkeypatch, cifar100=True, per_class=4, test_per_class=1)
    splits = build("cifar100", tmp_path, val_fraction=0.25)
    assert splits.num_classes == 100 and splits.class_flips is None
    assert len(splits.train) == 300 and len(splits.val) == 100 and len(splits.test) == 100
    assert torch.equal(torch.bincount(splits.val.labels, minlength=100), torch.ones(100, dtype=torch.long))
    assert sorted(torch.cat([splits.train.labels, splits.val.labels]).tolist()) == sorted(labels.tolist())


def test_cifar_without_files_says_what_layout_and_how_to_get_it(tmp_path):
    with pytest.raises(UsageError) as error:
        build("cifar10", tmp_path)
    message = str(error.value)
    assert "data.root (--data-root)" in message and "cifar-10-batches-py" in message
    assert "cifar-10-python.tar.gz" in message and "data.options.download=true" in message
    with pytest.raises(UsageError, match="data.root is not set.*cifar-100-python"):
        build("cifar100", None)


def test_cifar_with_a_corrupted_file_is_refused(tmp_path, monkeypatch):
    write_cifar(tmp_path, monkeypatch)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"truncated")
    with pytest.raises(UsageError, match="corrupted"):
        build("cifar10", tmp_path)


def test_fashion_mnist_reads_idx_gz_files(tmp_path):
    images, labels = write_fashion_mnist(tmp_path / "fm")
    splits = build("fashion-mnist", tmp_path / "fm", val_fraction=0.0)
    assert splits.input_shape == (1, 28, 28) and splits.num_classes == 10
    assert splits.train.classes[0] == "T-shirt/top" and splits.train.augment is None
    assert torch.equal(splits.train.labels, torch.from_numpy(labels))
    x = splits.train.inputs[:, 0]
    raw = torch.from_numpy(images).float() / 255
    assert torch.allclose(x * raw.std(correction=0) + raw.mean(), raw, atol=1e-5)
    assert len(splits.test) == 20
    # torchvision's download layout works too.
    write_fashion_mnist(tmp_path / "tv" / "FashionMNIST" / "raw")
    assert torch.equal(build("fashion-mnist", tmp_path / "tv", val_fraction=0.0).train.labels, splits.train.labels)


def test_fashion_mnist_missing_files_point_to_the_debian_package(tmp_path):
    with pytest.raises(UsageError, match="apt-get install dataset-fashion-mnist"):
        build("fashion-mnist", tmp_path)


def test_tinyimagenet_reads_the_release_layout(tmp_path):
    folder = write_tinyimagenet(tmp_path, WNIDS)
    splits = build("tinyimagenet", tmp_path, val_fraction=1 / 3, image_size=16)  # the parent folder works
    assert splits.num_classes == 3 and splits.input_shape == (3, 16, 16) and splits.train.classes == WNIDS
    assert not splits.train.in_memory
    assert len(splits.train) == 12 and len(splits.val) == 6 and len(splits.test) == 6
    # Test labels come from val_annotations.txt: val_i.JPEG belongs to class i mod 3.
    assert splits.test.labels.tolist() == [i % 3 for i in range(6)]
    x, y, ids = splits.train[0]
    assert x.shape == (3, 16, 16) and x.dtype == torch.float32, "grey JPEGs load as three channels"
    assert torch.equal(build("tinyimagenet", folder, val_fraction=1 / 3, image_size=16).test.labels, splits.test.labels)


def test_tinyimagenet_missing_annotations_is_a_usage_error(tmp_path):
    folder = write_tinyimagenet(tmp_path, WNIDS)
    (folder / "val" / "val_annotations.txt").unlink()
    with pytest.raises(UsageError, match="val_annotations.txt"):
        build("tinyimagenet", folder)


def test_imagefolder_takes_any_size_and_mixed_grey_and_colour(tmp_path):
    write_class_folders(tmp_path, ["cat", "dog"], {"train": 6, "test": 3})
    splits = build("imagefolder", tmp_path, val_fraction=1 / 3, image_size=12)
    assert splits.input_shape == (3, 12, 12) and splits.train.classes == ["cat", "dog"]
    assert len(splits.train) == 8 and len(splits.val) == 4 and len(splits.test) == 6
    for x, y, i in [splits.test[k] for k in range(len(splits.test))]:
        assert x.shape == (3, 12, 12)


def test_imagefolder_of_grey_images_has_one_channel_and_val_is_the_test_split(tmp_path):
    write_class_folders(tmp_path, ["a", "b", "c"], {"train": 4, "val": 2}, grey=True)
    splits = build("imagefolder", tmp_path, val_fraction=0.0, image_size=10)
    assert splits.input_shape == (1, 10, 10) and len(splits.test) == 6
    assert build("imagefolder", tmp_path, val_fraction=0.0, image_size=10, channels=3).input_shape == (3, 10, 10)


def test_imagefolder_errors_name_the_layout(tmp_path):
    with pytest.raises(UsageError, match="train/<class>"):
        build("imagefolder", tmp_path)
    write_class_folders(tmp_path, ["a", "b"], {"train": 2, "test": 1})
    write_class_folders(tmp_path, ["zebra"], {"test": 1})
    with pytest.raises(UsageError, match="zebra"):
        build("imagefolder", tmp_path, val_fraction=0.0)


def test_imagenet_folder_layout_and_torchvision_meta_give_the_same_data(tmp_path):
    write_class_folders(tmp_path, WNIDS, {"train": 4, "val": 2})
    folders = build("imagenet", tmp_path, val_fraction=0.25, image_size=16)
    write_imagenet_meta(tmp_path, WNIDS)
    via_torchvision = build("imagenet", tmp_path, val_fraction=0.25, image_size=16)
    assert folders.input_shape == via_torchvision.input_shape == (3, 16, 16)
    assert folders.train.classes == via_torchvision.train.classes == WNIDS
    assert torch.equal(folders.test.labels, via_torchvision.test.labels)
    assert torch.equal(folders.train.labels, via_torchvision.train.labels)
    assert torch.equal(folders.val[0][0], via_torchvision.val[0][0])


def test_file_backed_batches_go_through_dataloader_workers_with_augmentation(tmp_path):
    write_class_folders(tmp_path, ["a", "b"], {"train": 6, "test": 2})
    splits = build("imagefolder", tmp_path, val_fraction=0.0, image_size=16)
    ids = torch.arange(len(splits.train))
    plain = torch.cat([x for x, *_ in iterate_batches(splits.train, ids, 4, shuffle=False, augment=False)])
    torch.manual_seed(0)
    batches = list(iterate_batches(splits.train, ids, 4, shuffle=False, augment=True, num_workers=2))
    augmented = torch.cat([x for x, *_ in batches])
    assert torch.cat([i for _, _, i, _ in batches]).tolist() == ids.tolist()
    assert augmented.shape == plain.shape and not torch.equal(augmented, plain)
    assert torch.equal(plain[0], splits.train[0][0]), "the plain view is what the dataset yields"


def test_subset_and_asymmetric_noise_apply_to_training_only(tmp_path, monkeypatch):
    write_cifar(tmp_path, monkeypatch, per_class=20)
    cfg = build_config(None, {"data.dataset": "cifar10", "data.root": str(tmp_path), "data.subset": 0.5,
                              "data.label_noise": 0.4, "data.noise_type": "asymmetric"})
    splits = load_data(cfg)
    assert len(splits.train) == 90 and torch.equal(torch.bincount(splits.train.clean_labels), torch.full((10,), 9))
    noisy = splits.train.noisy
    sources = splits.train.clean_labels[noisy]
    assert set(sources.tolist()) == set(CIFAR10_FLIPS), "only the documented source classes flip"
    assert all(CIFAR10_FLIPS[int(s)] == int(t) for s, t in zip(sources, splits.train.labels[noisy]))
    assert int(noisy.sum()) == 5 * round(0.4 * 9)
    assert not splits.val.noisy.any() and not splits.test.noisy.any() and len(splits.val) == 20
    again = load_data(cfg)
    assert torch.equal(again.train.labels, splits.train.labels) and torch.equal(again.train.inputs, splits.train.inputs)


def test_cli_reports_missing_cifar_with_exit_code_2(tmp_path):
    result = CliRunner().invoke(main, ["run", "--dataset", "cifar10", "--data-root", str(tmp_path / "nothing"),
                                       "--no-progress", "--output-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2 and "cifar-10-batches-py" in result.output and "Traceback" not in result.output


def test_unknown_dataset_option_names_the_valid_ones(tmp_path):
    write_class_folders(tmp_path, ["a", "b"], {"train": 2, "test": 1})
    cfg = build_config(None, {"data.dataset": "imagefolder", "data.root": str(tmp_path)}, ["data.options.imagesize=8"])
    with pytest.raises(UsageError, match="imagesize"):
        load_data(cfg)


@pytest.mark.parametrize("size", [0.5, 50])
def test_subset_is_stratified_and_seeded(size):
    full = load_data(build_config(None, {})).train
    a, b = load_data(build_config(None, {"data.subset": size})), load_data(build_config(None, {"data.subset": size, "data.split_seed": 1}))
    expected = size if isinstance(size, int) else round(size * len(full))
    assert len(a.train) == len(b.train) == expected
    share = expected / len(full)
    counts, full_counts = (torch.bincount(d.labels, minlength=10).float() for d in (a.train, full))
    assert (counts - share * full_counts).abs().max() <= 1, "every class keeps its share"
    assert not torch.equal(a.train.inputs, b.train.inputs), "split_seed chooses the subset"
    assert torch.equal(load_data(build_config(None, {"data.subset": size})).train.inputs, a.train.inputs)


def test_subset_that_cannot_be_drawn_is_refused():
    with pytest.raises(UsageError, match=r"data.subset \(--subset\): 100000 samples"):
        load_data(build_config(None, {"data.subset": 100000}))
    with pytest.raises(UsageError, match="class-stratified 5 of 1293"):
        load_data(build_config(None, {"data.subset": 5}))


def run_config(tmp_path, sets=None, **flags):
    base = {"train.epochs": 4, "coreset.warmup": 2, "coreset.interval": 1, "train.batch_size": 32,
            "logging.progress": False, "output_dir": str(tmp_path / "runs"), "device": "cpu"}
    return build_config(None, {**base, **flags}, sets)


def test_swast_cut_on_cifar_files_learns_and_records_the_flipped_labels(tmp_path, monkeypatch):
    write_cifar(tmp_path / "data", monkeypatch, per_class=30)
    cfg = run_config(tmp_path, ["model.options.width=8"], **{
        "data.dataset": "cifar10", "data.root": str(tmp_path / "data"), "data.label_noise": 0.2, "data.noise_type": "asymmetric",
        "coreset.fraction": 0.5, "coreset.selector": "random"})
    trainer = Trainer(cfg, tmp_path / "run")
    summary = trainer.fit()
    assert [r["phase"] for r in trainer.history] == ["warm-up", "warm-up", "coreset", "coreset"]
    # Chance is 0.1; images and labels misaligned anywhere in loading, augmentation or batching stay there.
    assert summary["test_acc"] > 0.3, "images and labels stay aligned through loading, augmentation and batching"
    noisy_ids = trainer.state_dict()["noisy_ids"]
    assert len(noisy_ids) == summary["noisy_train_samples"] == 5 * round(0.2 * 27)
    assert set(trainer.train_set.clean_labels[noisy_ids].tolist()) == set(CIFAR10_FLIPS)
    assert "noisy_share" in trainer.history[-1]


def test_a_run_on_an_image_folder_goes_through_the_dataloader(tmp_path):
    write_class_folders(tmp_path / "data", ["cat", "dog", "eel"], {"train": 8, "test": 2})
    flags = {"data.dataset": "imagefolder", "data.root": str(tmp_path / "data"), "train.epochs": 2, "coreset.warmup": 1,
             "coreset.selector": "random", "data.num_workers": 1, "train.batch_size": 8}
    cfg = run_config(tmp_path, ["data.options.image_size=16", "data.options.channels=1"], **flags)
    trainer = Trainer(cfg, tmp_path / "run")
    summary = trainer.fit()
    assert trainer.data.input_shape == (1, 16, 16) and not trainer.train_set.in_memory
    assert summary["train_size"] == 21 and trainer.history[-1]["val_acc"] is not None


def test_imagenet_errors_name_both_layouts(tmp_path):
    with pytest.raises(UsageError, match="ILSVRC2012_devkit_t12.tar.gz.*train/<wnid>"):
        build("imagenet", tmp_path)
    write_imagenet_meta(tmp_path, WNIDS)  # torchvision's layout, but without the train archive or folder
    with pytest.raises(UsageError, match="ILSVRC2012_img_train.tar"):
        build("imagenet", tmp_path)


def test_every_dataset_and_preset_is_documented():
    root = Path(__file__).parents[1]
    guide = (root / "docs" / "DATASETS.md").read_text()
    for name in registry.datasets.names():
        assert f"| `{name}` |" in guide, name
    for preset in (root / "configs").glob("*.yaml"):
        assert preset.name in guide or preset.name in (root / "README.md").read_text(), preset.name


@pytest.mark.parametrize("name", ["cifar10", "fashion-mnist"])
def test_download_happens_only_when_asked_and_a_failed_one_is_a_usage_error(tmp_path, monkeypatch, name):
    calls = []

    def offline(url, *args, **kwargs):
        calls.append(url)
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torchvision.datasets.cifar, "download_and_extract_archive", offline)
    monkeypatch.setattr(torchvision.datasets.mnist, "download_and_extract_archive", offline)
    with pytest.raises(UsageError, match="not found"):
        build(name, tmp_path)
    assert calls == []
    with pytest.raises(UsageError, match="data.options.download: downloading .* failed"):
        build(name, tmp_path, download=True)
    assert calls and all(url.startswith("http") for url in calls)
