"""ICKD: inter-channel correlation knowledge distillation.

Li Liu, Qingle Huang, Sihao Lin, Hongwei Xie, Bing Wang, Xiaojun Chang, Xiaodan Liang,
"Exploring Inter-Channel Correlation for Diversity-preserved Knowledge Distillation", ICCV 2021,
arXiv 2202.03680. Official code: github.com/ADLab-AutoDrive/ICKD (commit 403b8d3).

For every sample the loss compares the C x C matrix of channel-to-channel inner products
(the inter-channel correlation, ICC) of the student feature with that of the teacher feature.
The student feature first goes through a learned embed (Conv + BN) that maps it to the teacher's
channel count. Only C has to match: each Gram is taken over its own network's spatial positions.

Components (no config, no trainer): :func:`ickd_loss`, :func:`grid_ickd_loss`, :class:`ICKDEmbed`,
:class:`ICKDLoss` and the weight holder :class:`DistillWeights`. The paper's equation numbers could
not be checked against the paper text here, so this module cites the authors' code instead.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "NORMALIZE_OPTIONS",
    "REDUCTION_OPTIONS",
    "DistillWeights",
    "ICKDEmbed",
    "ICKDLoss",
    "grid_ickd_loss",
    "ickd_loss",
]

Normalize = Literal["row_l2", "none"]
Reduction = Literal["official_cifar", "official_imagenet", "paper", "sum"]
NORMALIZE_OPTIONS: tuple[str, ...] = typing.get_args(Normalize)
REDUCTION_OPTIONS: tuple[str, ...] = typing.get_args(Reduction)

# F.normalize's default eps, which the authors' code uses (Cifar100/distiller_zoo/ICKD.py).
_ROW_L2_EPS = 1e-12


def _check_option(name: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ValueError(f"unknown {name}={value!r}; valid options are {', '.join(valid)}")


def _check_features(f_s: Tensor, f_t: Tensor) -> None:
    for name, f in (("f_s", f_s), ("f_t", f_t)):
        if f.dim() != 4:
            raise ValueError(
                f"{name} must be a 4-D feature map (B, C, H, W); got shape {tuple(f.shape)}"
            )
    if f_s.shape[0] != f_t.shape[0]:
        raise ValueError(
            f"f_s and f_t must have the same batch size; got {f_s.shape[0]} and {f_t.shape[0]}"
        )
    for name, f in (("f_s", f_s), ("f_t", f_t)):
        if f.numel() == 0:
            raise ValueError(
                f"{name} is empty (shape {tuple(f.shape)}): the ICKD loss needs at least one "
                "sample, one channel and one position; skip the loss for an empty batch"
            )
    if f_s.shape[1] != f_t.shape[1]:
        raise ValueError(
            f"f_s has {f_s.shape[1]} channels but f_t has {f_t.shape[1]}; embed the student "
            f"feature to the teacher's channel count first with ICKDEmbed (or use ICKDLoss)"
        )


def _check_grid(grid: tuple[int, int]) -> None:
    if (
        not isinstance(grid, (tuple, list))
        or len(grid) != 2
        or not all(isinstance(g, int) and not isinstance(g, bool) for g in grid)
        or min(grid) < 1
    ):
        raise ValueError(f"grid must be a pair of positive ints (n, m); got {grid!r}")


def _divisor(reduction: str, *, num_channels: int, batch_size: int) -> int:
    """The constant that the summed squared differences of one cell are divided by."""
    c, b = num_channels, batch_size
    if reduction == "official_cifar":
        return c * b  # Cifar100/distiller_zoo/ICKD.py, batch_loss
    if reduction == "official_imagenet":
        return c * b * b  # ImageNet/torchdistill/losses/single.py, ChSimLoss.batch_loss
    if reduction == "paper":
        return c * c * b  # 1/C^2 per sample, then the batch mean
    return 1  # "sum"


def _at_least_fp32(f: Tensor) -> Tensor:
    """fp16 / bf16 -> fp32; fp32 and fp64 are kept."""
    return f if f.dtype in (torch.float32, torch.float64) else f.float()


def _channel_correlation(f: Tensor, normalize: str) -> Tensor:
    """ICC matrices of flattened features: (N, C, P) -> (N, C, C).

    Call with autocast off and ``f`` in fp32 or fp64 (see `_cell_losses`): a Gram entry sums P
    products, so a 32 x 32 map of RMS 8 already reaches 64 * 1024 > 65504, the fp16 maximum.
    """
    g = torch.bmm(f, f.transpose(1, 2))  # (N, C, C)
    if normalize == "row_l2":
        g = F.normalize(g, p=2.0, dim=2, eps=_ROW_L2_EPS)
    return g


def _cell_losses(cells_s: Tensor, cells_t: Tensor, *, normalize: str, reduction: str) -> Tensor:
    """One ICKD loss per cell.

    Args:
        cells_s: (B, K, C, P_s) student cells, spatial positions flattened (zero padding allowed:
            an all-zero position adds nothing to a Gram matrix).
        cells_t: (B, K, C, P_t) teacher cells.

    Returns:
        (K,) the loss of each cell, reduced over the batch by ``reduction``, in fp32 (fp64 for
        fp64 inputs) whatever the input dtype and autocast state.
    """
    b, k, c, _ = cells_s.shape
    # Under fp16 autocast torch.bmm would run in fp16 and its sums of H*W products overflow
    # (inf, then NaN or a wrong loss after the row normalisation); bf16 keeps the range but
    # loses digits. So the Grams and everything after them run in fp32 with autocast off.
    with torch.autocast(device_type=cells_s.device.type, enabled=False):
        cells_s, cells_t = _at_least_fp32(cells_s), _at_least_fp32(cells_t)
        g_s = _channel_correlation(cells_s.flatten(0, 1), normalize)  # (B*K, C, C)
        g_t = _channel_correlation(cells_t.flatten(0, 1), normalize)  # (B*K, C, C)
        sq = (g_s - g_t).pow(2).sum(dim=(1, 2)).view(b, k)  # (B, K)
        return sq.sum(dim=0) / _divisor(reduction, num_channels=c, batch_size=b)


def ickd_loss(
    f_s: Tensor,
    f_t: Tensor,
    *,
    normalize: str = "row_l2",
    reduction: str = "official_cifar",
) -> Tensor:
    """Image-level ICKD loss between an embedded student feature and a teacher feature.

    For each sample b, with F the feature reshaped to (C, H*W): G = F F^T (C x C). With
    ``normalize="row_l2"`` each row of G is divided by its L2 norm (``F.normalize``, eps 1e-12),
    as in the authors' code. The loss is ``sum_b sum_ij (G_s - G_t)_ij^2 / D`` with D set by
    ``reduction``:

    - ``"official_cifar"``: D = C*B (Cifar100/distiller_zoo/ICKD.py). With ``row_l2`` each row
      difference has squared norm <= 4, so the loss is <= 4.
    - ``"official_imagenet"``: D = C*B*B (ImageNet/torchdistill/losses/single.py ChSimLoss, and
      torchdistill's port).
    - ``"paper"``: D = C*C*B, i.e. 1/C^2 per sample averaged over the batch, as the paper's formula
      reads in the research notes. That reading is from memory, not checked against the paper text.
      The paper's formula has no row normalisation: pair it with ``normalize="none"``.
    - ``"sum"``: D = 1.

    Worked example (B=1, C=2, H*W=2). Student channels (1, 0) and (0, 1) give G_s = I; teacher
    channels (1, 0) and (1, 0) give G_t = [[1, 1], [1, 1]], whose normalised rows are
    (1/sqrt2, 1/sqrt2). Each row difference has squared norm (1 - 1/sqrt2)^2 + 1/2 = 2 - sqrt2, so
    the sum is 4 - 2*sqrt2 and ``official_cifar`` gives (4 - 2*sqrt2) / 2 = 2 - sqrt2 ~ 0.5858.
    With ``normalize="none"`` the difference is [[0, -1], [-1, 0]], sum 2, ``official_cifar`` 1.

    The teacher feature is used as given: pass it detached (the authors run the teacher in eval
    mode under ``no_grad``). Nothing here detaches it.

    Args:
        f_s: (B, C, H_s, W_s) student feature already embedded to the teacher's C (ICKDEmbed).
        f_t: (B, C, H_t, W_t) teacher feature; H_t, W_t may differ from the student's.
        normalize: ``"row_l2"`` (authors' code) or ``"none"``.
        reduction: ``"official_cifar"``, ``"official_imagenet"``, ``"paper"`` or ``"sum"``.

    Returns:
        Scalar loss in fp32 (fp64 for fp64 inputs): the Gram matrices are computed in fp32 with
        autocast off, so the loss under fp16 autocast equals the fp32 loss.

    Raises:
        ValueError: a feature is not 4-D, is empty (B = 0), or the batch sizes or channel
            counts differ.

    Differences from the paper: the row normalisation and the official divisors come from the
    authors' code, which differs from the formula printed in the paper (see the options above).
    """
    _check_option("normalize", normalize, NORMALIZE_OPTIONS)
    _check_option("reduction", reduction, REDUCTION_OPTIONS)
    _check_features(f_s, f_t)
    b, c = f_s.shape[:2]
    cells_s = f_s.reshape(b, 1, c, -1)  # (B, 1, C, H_s*W_s)
    cells_t = f_t.reshape(b, 1, c, -1)  # (B, 1, C, H_t*W_t)
    return _cell_losses(cells_s, cells_t, normalize=normalize, reduction=reduction)[0]


def _cell_bounds(size: int, num_cells: int) -> list[int]:
    """Cell i covers [bounds[i], bounds[i+1]) with bounds[i] = floor(i * size / num_cells)."""
    return [(i * size) // num_cells for i in range(num_cells + 1)]


def _split_grid(f: Tensor, grid: tuple[int, int]) -> Tensor:
    """Split a feature map into a grid of cells: (B, C, H, W) -> (B, n*m, C, P).

    Cells that are smaller than the largest one are zero-padded to P = max_h * max_w positions;
    zero positions add nothing to a Gram matrix, so the padding does not change the loss.
    """
    b, c, h, w = f.shape
    n, m = grid
    if h < n or w < m:
        raise ValueError(
            f"grid {grid} needs a feature map of at least {n} x {m} positions; got {h} x {w}. "
            f"Use a smaller grid or a higher-resolution feature."
        )
    if h % n == 0 and w % m == 0:
        cells = f.reshape(b, c, n, h // n, m, w // m)  # (B, C, n, h_cell, m, w_cell)
    else:
        rows = _gather_index(h, n, device=f.device)  # (n, max_h), value h = padding
        cols = _gather_index(w, m, device=f.device)  # (m, max_w), value w = padding
        f_pad = F.pad(f, (0, 1, 0, 1))  # (B, C, H+1, W+1); last row and column are zero
        cells = f_pad[:, :, rows[:, :, None, None], cols[None, None, :, :]]  # (B, C, n, mh, m, mw)
    cells = cells.permute(0, 2, 4, 1, 3, 5)  # (B, n, m, C, h_cell, w_cell)
    return cells.reshape(b, n * m, c, -1)  # (B, n*m, C, h_cell*w_cell)


def _gather_index(size: int, num_cells: int, *, device: torch.device) -> Tensor:
    """(num_cells, max_len) positions of each cell along one axis; ``size`` marks padding."""
    bounds = _cell_bounds(size, num_cells)
    lengths = [bounds[i + 1] - bounds[i] for i in range(num_cells)]
    max_len = max(lengths)
    start = torch.tensor(bounds[:-1], device=device)[:, None]  # (num_cells, 1)
    offset = torch.arange(max_len, device=device)[None, :]  # (1, max_len)
    length = torch.tensor(lengths, device=device)[:, None]  # (num_cells, 1)
    return torch.where(offset < length, start + offset, torch.full_like(offset, size))


def grid_ickd_loss(
    f_s: Tensor,
    f_t: Tensor,
    *,
    grid: tuple[int, int] = (4, 4),
    normalize: str = "row_l2",
    reduction: str = "official_cifar",
) -> Tensor:
    """Grid-level ICKD for dense prediction: the ICKD loss per grid cell, averaged over cells.

    This is a reconstruction. The paper's abstract describes grid-level inter-channel correlation
    for dense prediction, and the authors' Pascal VOC table lists grids 1x1, 4x4, 16x16 and 32x32,
    but no training code for it was published (research notes, section 1.4). Chosen here:

    - Each map (student and teacher separately, so their sizes may differ) is split into
      ``grid = (n, m)`` cells: n along H, m along W. Cell i along an axis of length L covers
      positions [floor(i*L/n), floor((i+1)*L/n)). The cells partition the map (no overlap, unlike
      adaptive pooling windows), their sizes differ by at most one, and when n divides L they are
      equal. A map must have at least n x m positions.
    - In each cell the ICC matrix, the normalisation and the ``reduction`` are exactly those of
      :func:`ickd_loss`; the n*m cell losses are averaged with equal weights.

    So ``grid=(1, 1)`` gives exactly :func:`ickd_loss`. Memory grows as B*n*m*C^2 (one C x C Gram
    per cell).

    Args:
        f_s: (B, C, H_s, W_s) student feature already embedded to the teacher's C.
        f_t: (B, C, H_t, W_t) teacher feature (pass it detached).
        grid: (n, m) number of cells along H and along W.
        normalize: see :func:`ickd_loss`.
        reduction: see :func:`ickd_loss`; applied within each cell.

    Returns:
        Scalar loss, in fp32 under any autocast (as :func:`ickd_loss`).

    Raises:
        ValueError: as :func:`ickd_loss`, or a grid larger than a map.
    """
    _check_option("normalize", normalize, NORMALIZE_OPTIONS)
    _check_option("reduction", reduction, REDUCTION_OPTIONS)
    _check_features(f_s, f_t)
    _check_grid(grid)
    cells_s = _split_grid(f_s, grid)  # (B, n*m, C, P_s)
    cells_t = _split_grid(f_t, grid)  # (B, n*m, C, P_t)
    return _cell_losses(cells_s, cells_t, normalize=normalize, reduction=reduction).mean()


class ICKDEmbed(nn.Module):
    """Student embed of ICKD: Conv2d (no bias, 'same' padding) followed by BatchNorm2d.

    Maps the student feature to the teacher's channel count. The authors use a 1x1 conv on
    CIFAR-style nets (Cifar100/distiller_zoo/ICKD.py ``Embed``) and a 3x3 conv with padding 1 on
    ImageNet ResNets (ImageNet/torchdistill/models/special.py ``ChannelSimilarityEmbed``).

    Args:
        in_channels: student channels C_s.
        out_channels: teacher channels C_t.
        kernel_size: odd conv kernel size; padding is kernel_size // 2 so H, W are kept.

    Shapes:
        forward(f_s): (B, C_s, H, W) -> (B, C_t, H, W).
    """

    def __init__(self, *, in_channels: int, out_channels: int, kernel_size: int = 1) -> None:
        super().__init__()
        if in_channels < 1 or out_channels < 1:
            raise ValueError(
                f"in_channels and out_channels must be positive; got {in_channels}, {out_channels}"
            )
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(
                f"kernel_size must be a positive odd int (1 for CIFAR-style nets, 3 for "
                f"ImageNet-style) so that H and W are kept; got {kernel_size}"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size=kernel_size,
            stride=1,
            padding=kernel_size // 2,
            bias=False,
        )
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, f_s: Tensor) -> Tensor:
        if f_s.dim() != 4 or f_s.shape[1] != self.in_channels:
            raise ValueError(
                f"ICKDEmbed expects a (B, {self.in_channels}, H, W) student feature; "
                f"got shape {tuple(f_s.shape)}"
            )
        return self.bn(self.conv(f_s))


class ICKDLoss(nn.Module):
    """ICKD loss with its own student embed (the module exists because the embed has parameters).

    ``forward(f_s_raw, f_t)`` embeds the raw student feature with :class:`ICKDEmbed` and returns
    :func:`grid_ickd_loss` (which equals :func:`ickd_loss` for the default ``grid=(1, 1)``). The
    weight beta is applied by the caller (see :class:`DistillWeights`). Train the embed's
    parameters with the student's, in the same optimizer, as the authors do.

    Args:
        student_channels: C_s of the raw student feature.
        teacher_channels: C_t of the teacher feature.
        kernel_size: embed conv size, 1 (CIFAR code) or 3 (ImageNet code).
        normalize: see :func:`ickd_loss`.
        reduction: see :func:`ickd_loss`.
        grid: (n, m) cells for grid-level ICKD; (1, 1) is image-level ICKD.

    Shapes:
        forward(f_s_raw: (B, C_s, H_s, W_s), f_t: (B, C_t, H_t, W_t)) -> scalar.

    Differences from the authors' code: their CIFAR ``ICKDLoss`` (commit 403b8d3) also registers
    an unused teacher embed ``embed_t`` that only consumes random draws at init; it is left out.
    """

    def __init__(
        self,
        *,
        student_channels: int,
        teacher_channels: int,
        kernel_size: int = 1,
        normalize: str = "row_l2",
        reduction: str = "official_cifar",
        grid: tuple[int, int] = (1, 1),
    ) -> None:
        super().__init__()
        _check_option("normalize", normalize, NORMALIZE_OPTIONS)
        _check_option("reduction", reduction, REDUCTION_OPTIONS)
        _check_grid(grid)
        self.embed = ICKDEmbed(
            in_channels=student_channels, out_channels=teacher_channels, kernel_size=kernel_size
        )
        self.normalize = normalize
        self.reduction = reduction
        self.grid = tuple(grid)

    def forward(self, f_s_raw: Tensor, f_t: Tensor) -> Tensor:
        f_s = self.embed(f_s_raw)  # (B, C_t, H_s, W_s)
        return grid_ickd_loss(
            f_s, f_t, grid=self.grid, normalize=self.normalize, reduction=self.reduction
        )

    def extra_repr(self) -> str:
        return f"normalize={self.normalize!r}, reduction={self.reduction!r}, grid={self.grid}"


@dataclass
class DistillWeights:
    """Weights of the ICKD objective ``ce * CE + kd * KD + ickd * L_ICKD``, applied by the recipe.

    Defaults are the authors' CIFAR-100 README command for ICKD without KL (``-r 1 -a 0 -b 2.5``);
    ICKD+KL uses ``kd=1.0`` (``-a 1 -b 2.5``). The ``train_student.sh`` at commit 403b8d3 uses
    ``-a 0 -b 4`` (``-a 2 -b 4`` commented out), so beta in {2.5, 4} is not settled. The ImageNet
    config instead uses 0.5 CE + 0.5 KL (T=1) plus 500 x ChSimLoss (``official_imagenet``).
    """

    ce: float = 1.0  # gamma, unitless: `-r 1` (Cifar100/README.md)
    kd: float = 0.0  # alpha, unitless: `-a 0` w/o KL, `-a 1` with KL (Cifar100/README.md)
    ickd: float = 2.5  # beta, unitless: `-b 2.5` (Cifar100/README.md); 4 in train_student.sh

    def __post_init__(self) -> None:
        for name in ("ce", "kd", "ickd"):
            if getattr(self, name) < 0:
                raise ValueError(f"DistillWeights.{name} must be >= 0; got {getattr(self, name)}")
