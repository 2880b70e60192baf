"""Numerics under mixed precision: the ICKD Gram matrices never overflow in fp16, and an empty
batch is a clear error (issue 7, part 6)."""

import pytest
import torch

from frugalcv.distill.ickd import ICKDLoss, grid_ickd_loss, ickd_loss

pytestmark = pytest.mark.unit


def _features(rms_t: float = 7.0) -> tuple[torch.Tensor, torch.Tensor]:
    """A student map of RMS 1 and a non-negative (post-ReLU-like) 32 x 32 teacher map of RMS
    `rms_t`: its Gram diagonal is about rms_t^2 * 1024 ~ 50,000 for 7, near the fp16 maximum
    65504, so fp16 sums of the 1024 products round coarsely or overflow."""
    g = torch.Generator().manual_seed(0)
    f_s = torch.randn(2, 8, 32, 32, generator=g)
    f_t = torch.randn(2, 8, 32, 32, generator=g).abs()
    f_t = f_t * (rms_t / f_t.pow(2).mean().sqrt())
    return f_s, f_t


@pytest.mark.parametrize("rms_t", [7.0, 8.0])
@pytest.mark.parametrize("grid", [None, (2, 2)])
def test_fp16_autocast_equals_fp32(rms_t, grid):
    f_s, f_t = _features(rms_t)

    def loss() -> torch.Tensor:
        return ickd_loss(f_s, f_t) if grid is None else grid_ickd_loss(f_s, f_t, grid=grid)

    ref = loss()
    with torch.autocast("cpu", dtype=torch.float16):
        mixed = loss()
    assert mixed.dtype == torch.float32
    assert torch.isfinite(mixed)
    # Before the fix: 1.0 instead of 0.987 at RMS 7 (fp16 rounding of the Gram), NaN at RMS 8.
    assert abs(mixed.item() - ref.item()) <= 1e-3 * abs(ref.item())


def test_fp16_inputs_give_the_fp32_loss_of_the_same_values():
    f_s, f_t = _features(8.0)
    h_s, h_t = f_s.half(), f_t.half()  # as a network run in fp16 hands them over
    out = ickd_loss(h_s, h_t)
    assert out.dtype == torch.float32
    ref = ickd_loss(h_s.float(), h_t.float())
    assert torch.allclose(out, ref, rtol=1e-6, atol=0)


def test_fp64_inputs_stay_fp64():
    f_s, f_t = _features()
    assert ickd_loss(f_s.double(), f_t.double()).dtype == torch.float64


def test_module_under_fp16_autocast_matches_fp32_and_gets_gradients():
    f_s, f_t = _features()
    torch.manual_seed(0)
    crit = ICKDLoss(student_channels=8, teacher_channels=8)
    ref = crit(f_s, f_t)
    with torch.autocast("cpu", dtype=torch.float16):
        mixed = crit(f_s, f_t)
    # The embed's conv runs in fp16 under autocast, so its output (not the Gram) differs by
    # fp16 rounding of its inputs: a looser tolerance than the loss-only test above.
    assert abs(mixed.item() - ref.item()) <= 1e-2 * ref.item()
    mixed.backward()
    assert all(torch.isfinite(p.grad).all() for p in crit.parameters() if p.grad is not None)
    assert crit.embed.conv.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("fn", [ickd_loss, grid_ickd_loss])
def test_empty_batch_is_a_clear_value_error(fn):
    f_s, f_t = _features()
    with pytest.raises(ValueError, match="empty.*at least one sample"):
        fn(f_s[:0], f_t[:0])
