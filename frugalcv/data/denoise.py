"""Image-denoising data: clean images, additive white Gaussian noise, and noisy/clean pairs.

Embedded (no download): the natural photographs bundled with scikit-image, grey-scale or colour,
split into train and test **by image** (no image gives crops to both). Real: folders of images
for the usual benchmark sets and sRGB noisy/clean pairs (SIDD layout), read from ``--data.root``
or ``FRUGALCV_DATA``.

Noise model (DnCNN, Zhang et al., TIP 2017, Sec. IV-A): ``y = x + (sigma / 255) * n`` with
``n ~ N(0, I)``, ``x`` in [0, 1], ``sigma`` given on the 0-255 scale (15, 25, 50 are the usual
levels); ``y`` is **not** clipped (as in DnCNN's synthetic protocol). The blind setting draws
``sigma ~ U[0, 55]`` per image (DnCNN-B's training range). Test noise is drawn once from a seeded
generator, so every run scores the same noisy test images.

Layouts under the data root:
    <root>/denoise/BSD400/*.png            grey training set (DnCNN)
    <root>/denoise/CBSD432/*.png           colour training set (BSD500 minus CBSD68)
    <root>/denoise/BSD68/, Set12/          grey test sets
    <root>/denoise/CBSD68/, Kodak24/       colour test sets
    <root>/SIDD/**/NOISY_SRGB_<k>.PNG      sRGB pairs; the clean image of each is the file of the
                                           same folder named GT_SRGB_<k>.PNG (SIDD-Medium layout)
Image files: .png, .jpg, .jpeg, .bmp, .tif, .tiff (any case).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from frugalcv.data.base import data_root, data_source, stream_generator, tensor_fingerprint

__all__ = [
    "BLIND_SIGMA_RANGE",
    "DENOISE_FOLDERS",
    "DENOISE_SETS",
    "IMAGE_SUFFIXES",
    "SKIMAGE_COLOR",
    "SKIMAGE_GREY",
    "SKIMAGE_TEST",
    "DenoiseData",
    "NoisyCleanPairs",
    "add_gaussian_noise",
    "center_crops",
    "find_noisy_clean_pairs",
    "load_denoise",
    "load_image_folder",
    "noise_transform",
    "pair_crops",
    "random_crops",
    "skimage_images",
]

# Photographs in skimage.data that load offline (env_check.md section 3); `cat` is left out (the
# same picture as chelsea), and so are the synthetic images and the tiny/flat ones.
SKIMAGE_GREY: tuple[str, ...] = (
    "brick", "camera", "clock", "coins", "grass", "gravel", "moon", "page", "text",
)  # fmt: skip
SKIMAGE_COLOR: tuple[str, ...] = (
    "astronaut", "chelsea", "coffee", "hubble_deep_field", "immunohistochemistry", "retina",
    "rocket", "stereo_motorcycle",
)  # fmt: skip
# Held-out images (our choice): camera is in Set12; coins is a grey photo of small objects;
# astronaut and coffee are the colour test images (converted to grey in the grey setting).
SKIMAGE_TEST: tuple[str, ...] = ("astronaut", "camera", "coffee", "coins")

# sigma ~ U[0, 55] per image in the blind setting: DnCNN-B's training range (Zhang et al. 2017).
BLIND_SIGMA_RANGE = (0.0, 55.0)

# Longer side, in pixels, that larger skimage photos are area-downscaled to (our choice, as in
# frugalcv.data.background): retina is 1411 px and hubble_deep_field 1000 px.
_MAX_SIDE = 512

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")

# set name -> folder under <root>/denoise/ and whether it is a colour set
DENOISE_FOLDERS: dict[str, tuple[str, bool]] = {
    "bsd400": ("BSD400", False),
    "cbsd432": ("CBSD432", True),
    "bsd68": ("BSD68", False),
    "set12": ("Set12", False),
    "cbsd68": ("CBSD68", True),
    "kodak24": ("Kodak24", True),
}

# name passed to load_denoise -> (train set, test set); "skimage" sets are embedded.
DENOISE_SETS: dict[str, tuple[str, str]] = {
    "skimage-grey": ("skimage", "skimage"),
    "skimage-color": ("skimage", "skimage"),
    "bsd68": ("bsd400", "bsd68"),
    "set12": ("bsd400", "set12"),
    "cbsd68": ("cbsd432", "cbsd68"),
    "kodak24": ("cbsd432", "kodak24"),
}

Sigma = float | tuple[float, float]


# ---------------------------------------------------------------------------------------------
# clean images


@functools.lru_cache(maxsize=2)
def _skimage_all(color: bool) -> dict[str, Tensor]:
    import skimage.data
    from skimage.color import rgb2gray

    names = SKIMAGE_COLOR if color else SKIMAGE_GREY + SKIMAGE_COLOR
    out = {}
    for name in names:
        image = getattr(skimage.data, name)()
        if isinstance(image, tuple):  # stereo_motorcycle -> (left, right, disparity)
            image = image[0]
        if image.ndim == 3 and not color:
            arr = rgb2gray(image[..., :3])[None]  # (1, H, W) float64 in [0, 1]
        elif image.ndim == 3:
            arr = image[..., :3].transpose(2, 0, 1) / 255.0  # (3, H, W)
        else:
            arr = image[None] / float(np.iinfo(image.dtype).max)
        t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
        longer = max(t.shape[1:])
        if longer > _MAX_SIDE:
            size = [round(s * _MAX_SIDE / longer) for s in t.shape[1:]]
            t = F.interpolate(t[None], size=size, mode="area")[0]
        out[name] = t.clamp_(0.0, 1.0).contiguous()
    return out


def skimage_images(*, split: str, color: bool = False) -> dict[str, Tensor]:
    """The embedded photographs of one split, ``{name: (C, H, W) float32 in [0, 1]}``.

    Args:
        split: ``"train"``, ``"test"`` (the images in ``SKIMAGE_TEST``) or ``"all"``.
        color: RGB (only the colour photos, C = 3) or grey (every photo, colour ones converted
            with ``skimage.color.rgb2gray``, C = 1).
    """
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all'; got {split!r}")
    images = _skimage_all(bool(color))
    if split == "all":
        return dict(images)
    test = split == "test"
    return {k: v for k, v in images.items() if (k in SKIMAGE_TEST) == test}


def _read_image(path: Path, *, color: bool) -> Tensor:
    with Image.open(path) as im:
        arr = np.asarray(im.convert("RGB" if color else "L"), dtype=np.float32) / 255.0
    arr = arr.transpose(2, 0, 1) if color else arr[None]
    return torch.from_numpy(np.ascontiguousarray(arr))


def load_image_folder(path: str | Path, *, color: bool) -> list[Tensor]:
    """Every image file directly in ``path``, sorted by name, as ``(C, H, W)`` in [0, 1].

    Raises:
        FileNotFoundError: the folder is missing or holds no image file.
    """
    path = Path(path)
    files = (
        sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if path.is_dir()
        else []
    )
    if not files:
        raise FileNotFoundError(
            f"no image files ({', '.join(IMAGE_SUFFIXES)}) in {path}; put the set's images there"
        )
    return [_read_image(p, color=color) for p in files]


# ---------------------------------------------------------------------------------------------
# noise and crops


def add_gaussian_noise(
    clean: Tensor, sigma: float | Tensor, *, generator: torch.Generator | None = None
) -> Tensor:
    """``clean + sigma / 255 * N(0, 1)``, unclipped (DnCNN's AWGN protocol).

    Args:
        clean: ``(C, H, W)`` or ``(B, C, H, W)`` in [0, 1].
        sigma: standard deviation on the 0-255 scale; a float, or ``(B,)`` one per image.
    """
    noise = torch.randn(clean.shape, generator=generator, dtype=clean.dtype)
    s = torch.as_tensor(sigma, dtype=clean.dtype) / 255.0
    if s.dim() == 1:
        if clean.dim() != 4 or s.shape[0] != clean.shape[0]:
            raise ValueError(
                f"per-image sigma of shape {tuple(s.shape)} needs a (B, C, H, W) batch with "
                f"B = {s.shape[0]}; got {tuple(clean.shape)}"
            )
        s = s.view(-1, 1, 1, 1)
    return clean + s.to(clean.device) * noise.to(clean.device)


def _draw_sigmas(sigma: Sigma, num: int, generator: torch.Generator) -> Tensor:
    if isinstance(sigma, (tuple, list)):
        lo, hi = (float(s) for s in sigma)
        if not 0 <= lo <= hi:
            raise ValueError(f"blind sigma range must be 0 <= low <= high; got {sigma}")
        return lo + (hi - lo) * torch.rand(num, generator=generator)
    if float(sigma) < 0:
        raise ValueError(f"sigma must be >= 0 (0-255 scale); got {sigma}")
    return torch.full((num,), float(sigma))


def noise_transform(sigma: Sigma) -> Callable[[tuple[Tensor, ...], torch.Generator], tuple]:
    """A ``TensorLoader`` transform: batch ``(clean,)`` -> ``(noisy, clean)``, noise drawn from
    the loader's per-batch generator (so it is fixed by seed, epoch and batch).

    Args:
        sigma: 0-255 scale; a float, or ``(low, high)`` for the blind setting (per image).
    """

    def transform(batch: tuple[Tensor, ...], generator: torch.Generator) -> tuple[Tensor, Tensor]:
        clean = batch[0]
        sigmas = _draw_sigmas(sigma, clean.shape[0], generator)
        return add_gaussian_noise(clean, sigmas, generator=generator), clean

    return transform


def random_crops(
    images: Sequence[Tensor], num: int, size: int, *, generator: torch.Generator
) -> Tensor:
    """``num`` random ``size x size`` crops: an image uniformly among those large enough, then a
    uniform corner. Returns ``(num, C, size, size)``."""
    usable = [im for im in images if im.shape[-2] >= size and im.shape[-1] >= size]
    if not usable:
        raise ValueError(f"crop size {size} exceeds every image; use a smaller crop")
    if len({im.shape[0] for im in usable}) != 1:
        raise ValueError("images mix channel counts; load them all grey or all colour")
    which = torch.randint(len(usable), (num,), generator=generator).tolist()
    u = torch.rand(num, 2, generator=generator, dtype=torch.float64)
    out = []
    for k, (a, b) in zip(which, u.tolist(), strict=True):
        im = usable[k]
        r = int(a * (im.shape[-2] - size + 1))
        c = int(b * (im.shape[-1] - size + 1))
        out.append(im[:, r : r + size, c : c + size])
    return torch.stack(out)


def center_crops(images: Sequence[Tensor], size: int) -> Tensor:
    """The central ``size x size`` crop of every image, stacked ``(N, C, size, size)``."""
    out = []
    for im in images:
        h, w = im.shape[-2:]
        if h < size or w < size:
            raise ValueError(f"image of size {h}x{w} is smaller than the crop {size}")
        r, c = (h - size) // 2, (w - size) // 2
        out.append(im[..., r : r + size, c : c + size])
    return torch.stack(out)


# ---------------------------------------------------------------------------------------------
# synthetic-noise sets


@dataclass
class DenoiseData:
    """Clean training images and fixed noisy/clean test images.

    Attributes:
        name: e.g. ``"skimage-grey"`` or ``"bsd68"``.
        train: clean training images, each ``(C, H, W)`` in [0, 1] (sizes may differ).
        test_clean, test_noisy: test images and their fixed noisy versions (same sizes).
        test_sigmas: ``(M,)`` the noise level of each test image, 0-255 scale.
        sigma: the setting: a float, or ``(low, high)`` for blind denoising.
        source: where the images came from, never a machine path.
    """

    name: str
    train: list[Tensor]
    test_clean: list[Tensor]
    test_noisy: list[Tensor]
    test_sigmas: Tensor
    sigma: Sigma
    source: str = ""

    @property
    def in_chans(self) -> int:
        return int(self.test_clean[0].shape[0])

    @property
    def fingerprint(self) -> str:
        return tensor_fingerprint(*self.train, *self.test_clean, *self.test_noisy)

    def train_crops(self, num: int, size: int, *, seed: int = 0) -> Tensor:
        """``num`` clean training crops ``(num, C, size, size)`` (noise is added per batch by
        :func:`noise_transform`)."""
        return random_crops(self.train, num, size, generator=stream_generator(seed, 1))

    def test_crops(self, size: int) -> tuple[Tensor, Tensor]:
        """Central crops of the fixed noisy and clean test images, ``(M, C, size, size)`` each."""
        return center_crops(self.test_noisy, size), center_crops(self.test_clean, size)


def _check_sigma(sigma: float | str | tuple[float, float]) -> Sigma:
    if sigma == "blind":
        return BLIND_SIGMA_RANGE
    if isinstance(sigma, str):
        raise ValueError(
            f"sigma must be a number (0-255 scale), (low, high) or 'blind'; got {sigma!r}"
        )
    if isinstance(sigma, (tuple, list)):
        return (float(sigma[0]), float(sigma[1]))
    return float(sigma)


def load_denoise(
    name: str = "skimage-grey",
    *,
    sigma: float | str | tuple[float, float] = 25.0,
    seed: int = 0,
    root: str | Path | None = None,
) -> DenoiseData:
    """A denoising set by name (see ``DENOISE_SETS``) with AWGN at ``sigma``.

    Args:
        name: ``"skimage-grey"`` / ``"skimage-color"`` (embedded; test images
            ``SKIMAGE_TEST``), or ``"bsd68"``, ``"set12"`` (train BSD400), ``"cbsd68"``,
            ``"kodak24"`` (train CBSD432), read from ``<root>/denoise/<Folder>/``.
        sigma: 15, 25, 50, ... on the 0-255 scale; ``"blind"`` or ``(low, high)`` draws one
            sigma per image uniformly (test images included).
        seed: seeds the test noise (stream 0 of ``stream_generator(seed, .)``).
        root: data folder for the real sets (else FRUGALCV_DATA).
    """
    if name not in DENOISE_SETS:
        raise ValueError(f"unknown denoising set {name!r}; use one of {sorted(DENOISE_SETS)}")
    sig = _check_sigma(sigma)
    train_name, test_name = DENOISE_SETS[name]
    if train_name == "skimage":
        color = name == "skimage-color"
        train = list(skimage_images(split="train", color=color).values())
        test = list(skimage_images(split="test", color=color).values())
        source = f"skimage.data ({'colour' if color else 'grey'})"
    else:
        base = data_root(root) / "denoise"
        sets = []
        for set_name in (train_name, test_name):
            folder, color = DENOISE_FOLDERS[set_name]
            sets.append(load_image_folder(base / folder, color=color))
        train, test = sets
        source = data_source(root, "denoise", DENOISE_FOLDERS[test_name][0])
    g = stream_generator(seed, 0)
    sigmas = _draw_sigmas(sig, len(test), g)
    noisy = [
        add_gaussian_noise(x, s, generator=g) for x, s in zip(test, sigmas.tolist(), strict=True)
    ]
    return DenoiseData(
        name=name,
        train=train,
        test_clean=test,
        test_noisy=noisy,
        test_sigmas=sigmas,
        sigma=sig,
        source=source,
    )


# ---------------------------------------------------------------------------------------------
# real noisy/clean pairs (SIDD layout)


def find_noisy_clean_pairs(root: str | Path | None = None) -> list[tuple[Path, Path]]:
    """``(noisy, clean)`` file pairs under ``<root>/SIDD``: every ``NOISY_SRGB_<k>.<ext>`` with a
    ``GT_SRGB_<k>.<ext>`` in the same folder (SIDD-Medium sRGB layout), sorted by path.

    Raises:
        FileNotFoundError: no folder or no pair, naming the expected layout; a noisy file
            without its clean partner is also an error (a half-copied set).
    """
    base = data_root(root) / "SIDD"
    noisy = sorted(
        p
        for p in (base.rglob("*") if base.is_dir() else [])
        if p.name.upper().startswith("NOISY_SRGB_") and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not noisy:
        raise FileNotFoundError(
            f"no noisy/clean pairs under {base}: expected <scene>/NOISY_SRGB_<k>.PNG with "
            f"GT_SRGB_<k>.PNG beside it (SIDD-Medium sRGB layout)"
        )
    pairs = []
    for p in noisy:
        stem = p.name[len("NOISY_SRGB_") :]
        match = [q for q in p.parent.iterdir() if q.name.upper() == ("GT_SRGB_" + stem).upper()]
        if not match:
            raise FileNotFoundError(f"{p} has no clean partner GT_SRGB_{stem} in {p.parent}")
        pairs.append((p, match[0]))
    return pairs


class NoisyCleanPairs(Dataset):
    """Real sRGB pairs read lazily: item ``i`` is ``(noisy, clean)``, each ``(3, H, W)`` in
    [0, 1]. Mismatched sizes are an error."""

    def __init__(self, *, root: str | Path | None = None, max_pairs: int | None = None) -> None:
        self.pairs = find_noisy_clean_pairs(root)[:max_pairs]
        self.source = data_source(root, "SIDD")

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        noisy, clean = (_read_image(p, color=True) for p in self.pairs[i])
        if noisy.shape != clean.shape:
            raise ValueError(
                f"{self.pairs[i][0].name} is {tuple(noisy.shape)} but its clean image is "
                f"{tuple(clean.shape)}; the pair must have one size"
            )
        return noisy, clean


def pair_crops(
    pairs: Dataset, num: int, size: int, *, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """``num`` aligned random crops of noisy/clean pairs: ``(noisy, clean)``, each
    ``(num, 3, size, size)``; a pair uniformly, then a uniform corner (the same in both)."""
    which = torch.randint(len(pairs), (num,), generator=generator).tolist()
    u = torch.rand(num, 2, generator=generator, dtype=torch.float64).tolist()
    loaded = {k: pairs[k] for k in sorted(set(which))}  # each file read once
    noisy, clean = [], []
    for k, (a, b) in zip(which, u, strict=True):
        y, x = loaded[k]
        if y.shape[-1] < size or y.shape[-2] < size:
            raise ValueError(f"pair {k} is {tuple(y.shape)}, smaller than the crop {size}")
        r, c = int(a * (y.shape[-2] - size + 1)), int(b * (y.shape[-1] - size + 1))
        noisy.append(y[:, r : r + size, c : c + size])
        clean.append(x[:, r : r + size, c : c + size])
    return torch.stack(noisy), torch.stack(clean)
