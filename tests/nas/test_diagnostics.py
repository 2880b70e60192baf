"""Hessian power iteration (known Hessians, dense reference on a supernet) and skip share."""

import pytest
import torch
import torch.nn.functional as F

from frugalcv.nas import (
    Genotype,
    NB201Supernet,
    arch_hessian_max_eigenvalue,
    hessian_max_eigenvalue,
    skip_share,
)

pytestmark = pytest.mark.unit


def _rotated(eigs, seed=0):
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(len(eigs), len(eigs), generator=g, dtype=torch.float64))
    return q @ torch.diag(torch.tensor(eigs, dtype=torch.float64)) @ q.T


@pytest.mark.parametrize("eigs,expected", [([5.0, 2.0, -1.0, 0.5], 5.0), ([1.0, -4.0, 2.0], -4.0)])
def test_quadratic_with_known_hessian(eigs, expected):
    a = _rotated(eigs)
    b = torch.randn(len(eigs), dtype=torch.float64)
    x = torch.randn(len(eigs), dtype=torch.float64, requires_grad=True)
    lam = hessian_max_eigenvalue(
        lambda: 0.5 * x @ a @ x + b @ x, [x], num_iters=500, tol=1e-12,
        generator=torch.Generator().manual_seed(1),
    )  # fmt: skip
    assert lam == pytest.approx(expected, rel=1e-6)


def test_hessian_split_over_several_tensors():
    # H = diag(3, 7) with the two coordinates in separate tensors.
    u = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    v = torch.tensor([2.0], dtype=torch.float64, requires_grad=True)
    lam = hessian_max_eigenvalue(lambda: (1.5 * u**2 + 3.5 * v**2).sum(), [u, v], tol=1e-12)
    assert lam == pytest.approx(7.0, rel=1e-6)
    z = torch.zeros(2, requires_grad=True)
    assert hessian_max_eigenvalue(lambda: z.sum(), [z]) == 0.0  # linear loss: zero Hessian


def test_arch_hessian_matches_dense_hessian_of_supernet():
    torch.manual_seed(0)
    net = NB201Supernet(channels=2, num_cells=1, num_classes=3, in_channels=1).double()
    net.eval()
    with torch.no_grad():
        net.alpha.normal_(0, 0.5)
    x = torch.randn(4, 1, 4, 4, dtype=torch.float64)
    y = torch.randint(0, 3, (4,))

    def loss_of(alpha):
        return F.cross_entropy(torch.func.functional_call(net, {"alpha": alpha}, (x,)), y)

    dense = torch.autograd.functional.hessian(loss_of, net.alpha.detach()).reshape(30, 30)
    eigs = torch.linalg.eigvalsh(dense)
    expected = float(eigs[eigs.abs().argmax()])
    got = arch_hessian_max_eigenvalue(
        net, x, y, num_iters=300, tol=1e-12, generator=torch.Generator().manual_seed(0)
    )
    assert got == pytest.approx(expected, rel=1e-4)
    assert abs(expected) > float(eigs.abs().sort().values[-2])  # a well-separated dominant one


def test_skip_share():
    assert skip_share("|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|none~2|") == 2 / 6
    g = Genotype(
        normal=[("skip_connect", 0)] * 6 + [("sep_conv_3x3", 1)] * 2,
        normal_concat=[2, 3, 4, 5],
        reduce=[("skip_connect", 0)] * 8,
        reduce_concat=[2, 3, 4, 5],
    )
    assert skip_share(g) == 0.75
    with pytest.raises(ValueError):
        skip_share(3)
