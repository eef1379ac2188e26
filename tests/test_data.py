"""The embedded synthetic dataset and the Cityscapes / ADE20K folder loaders
(on tiny fixture folders the tests build)."""

import numpy as np
import pytest
from PIL import Image

from semcom.common.data.datasets import ADE20KFolder, CityscapesFolder, SyntheticScenes, write_split
from semcom.common.data.labels import IGNORE, colorize
from semcom.common.data.scenes import CLASS_NAMES, generate_scene


def test_scenes_are_deterministic_by_seed_and_differ_across_seeds():
    first, second = generate_scene(64, 128, seed=5), generate_scene(64, 128, seed=5)
    assert np.array_equal(first[0], second[0]) and np.array_equal(first[1], second[1])
    assert not np.array_equal(first[0], generate_scene(64, 128, seed=6)[0])


def test_scenes_use_at_least_eight_cityscapes_classes_across_a_split():
    seen = set()
    for image, labels in (SyntheticScenes("val", 40)[i] for i in range(40)):
        assert image.shape == (64, 128, 3) and image.dtype == np.uint8 and labels.shape == (64, 128)
        seen |= set(np.unique(labels).tolist())
    assert seen <= set(CLASS_NAMES) and len(seen) >= 8


@pytest.mark.parametrize("size", [(32, 32), (64, 64), (96, 256), (256, 512)])
def test_scenes_render_at_any_resolution(size):
    image, labels = generate_scene(*size, seed=1)
    assert image.shape == (*size, 3) and labels.shape == size
    assert len(np.unique(labels)) >= 5


def test_splits_do_not_share_scenes():
    assert not np.array_equal(SyntheticScenes("train", 1)[0][0], SyntheticScenes("val", 1)[0][0])


def test_write_split_writes_images_and_train_id_labels(tmp_path):
    assert write_split(SyntheticScenes("val", 3, size=(32, 64)), tmp_path) == 3
    labels = np.asarray(Image.open(tmp_path / "labels" / "000001.png"))
    assert np.array_equal(labels, SyntheticScenes("val", 3, size=(32, 64))[1][1])
    assert Image.open(tmp_path / "images" / "000002.png").size == (64, 32)


def _save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_cityscapes_folder_maps_label_ids_to_train_ids(tmp_path):
    label_ids = np.zeros((32, 64), np.uint8)
    label_ids[:16], label_ids[16:, :32], label_ids[16:, 32:] = 7, 26, 0  # road, car, unlabeled
    for split, city, stem in (("val", "lindau", "lindau_000000_000019"), ("val", "munster", "munster_000001_000019")):
        _save(tmp_path / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png",
              np.full((32, 64, 3), 90, np.uint8))
        _save(tmp_path / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png", label_ids)
    dataset = CityscapesFolder(tmp_path, "val", size=(16, 32))
    assert len(dataset) == 2
    image, labels = dataset[0]
    assert image.shape == (16, 32, 3) and labels.shape == (16, 32)
    assert set(np.unique(labels[:8])) == {0} and set(np.unique(labels[8:, :16])) == {13}
    assert set(np.unique(labels[8:, 16:])) == {IGNORE}


def test_ade20k_folder_shifts_classes_and_ignores_other(tmp_path):
    annotation = np.array([[0, 1], [150, 7]], np.uint8).repeat(8, 0).repeat(8, 1)
    _save(tmp_path / "images" / "validation" / "ADE_val_00000001.jpg", np.full((16, 16, 3), 50, np.uint8))
    _save(tmp_path / "annotations" / "validation" / "ADE_val_00000001.png", annotation)
    image, labels = ADE20KFolder(tmp_path, size=(16, 16))[0]
    assert labels[0, 0] == IGNORE and labels[0, 15] == 0 and labels[15, 0] == 149 and labels[15, 15] == 6


def test_missing_folders_and_labels_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no image/label pairs"):
        CityscapesFolder(tmp_path)
    _save(tmp_path / "leftImg8bit" / "val" / "x" / "a_leftImg8bit.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(FileNotFoundError, match="has no label file"):
        CityscapesFolder(tmp_path)


def test_colorize_uses_the_cityscapes_palette():
    colours = colorize(np.array([[0, 13, IGNORE]], np.uint8))
    assert colours[0, 0].tolist() == [128, 64, 128] and colours[0, 1].tolist() == [0, 0, 142]
    assert colours[0, 2].tolist() == [0, 0, 0]
