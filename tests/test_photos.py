"""Real photos from what packages ship (`semcom data photos`): checked, named when missing, and
loaded at their own size. The tests that need the installed photos skip, saying why, without them."""

from __future__ import annotations

import pytest

from helpers import needs_photos
from semcom.common.data import photos
from semcom.tools import cli

MATPLOTLIB = next(source for source in photos.SOURCES if source.name == "matplotlib")
NOWHERE = photos.Source("no-such-package", "pip download --no-deps semcom-no-such-package==0.0.0",
                        photos.wheel_fetcher("semcom-no-such-package==0.0.0"),
                        {"x.jpg": ("train", "x.jpg", "0" * 64)})


def test_a_source_that_cannot_be_fetched_is_named_and_the_others_are_installed(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(photos, "SOURCES", (NOWHERE, MATPLOTLIB))
    assert cli.main(["data", "photos", "--dir", str(tmp_path)]) == 1  # a real `pip download` that fails
    assert "semcom data photos: no-such-package: `" in capsys.readouterr().err
    assert (tmp_path / "train" / "matplotlib-grace_hopper.jpg").is_file()  # the source that works, installed
    assert photos.missing(tmp_path) == [("train", "x.jpg")]


def test_a_file_that_differs_from_its_checksum_is_refused(tmp_path, monkeypatch):
    member, (split, name, _) = next(iter(MATPLOTLIB.files.items()))
    tampered = photos.Source("matplotlib", MATPLOTLIB.how, MATPLOTLIB.fetch, {member: (split, name, "0" * 64)})
    monkeypatch.setattr(photos, "SOURCES", (tampered,))
    with pytest.raises(photos.SourceUnavailable, match="sha256"):
        photos.install(tmp_path, progress=lambda line: None)
    assert not (tmp_path / split / name).exists()


def test_missing_photos_name_the_command_that_installs_them(tmp_path):
    with pytest.raises(photos.PhotosMissing, match="semcom data photos"):
        photos.photo_paths("kodak", tmp_path)


@needs_photos
def test_the_installed_photos_load_at_their_own_size():
    kodak = photos.load_photos("kodak")
    assert len(kodak) == 5 and all(image.shape == (384, 512, 3) for image in kodak)  # TID2013's Kodak size
    train = photos.load_photos("train")
    assert len(train) == 29 and len({image.shape for image in train}) > 10  # many sizes, none resized
    assert all(image.ndim == 3 and image.shape[2] == 3 for image in train)
