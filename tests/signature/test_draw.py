"""draw_signature_graph writes a PNG of the graph it built."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from frugalcv.signature import draw_signature_graph

pytestmark = pytest.mark.unit


def test_draw_on_the_image_itself_writes_png_with_every_node(tmp_path):
    image = torch.rand(3, 16, 12, generator=torch.Generator().manual_seed(0))
    out = draw_signature_graph(image, tmp_path / "sub" / "g.png", patch_size=4)
    path = tmp_path / "sub" / "g.png"
    assert out["path"] == path and path.stat().st_size > 1000
    with Image.open(path) as png:
        assert png.format == "PNG" and png.size[0] > 100
    grid = (4, 3)
    assert out["graph"].grid == grid
    assert out["num_nodes_drawn"] == 2 * 4 * 3 == out["graph"].num_nodes
    m = 2 * 4 * 3 - 4 - 3  # neighbouring patch pairs
    assert out["num_edges_drawn"] == 4 * 3 + 2 * m == len(out["graph"].edges)


def test_draw_feature_map_response_over_a_larger_grey_image(tmp_path):
    image = torch.rand(1, 32, 32)
    response = torch.zeros(8, 8)
    response[1, 6] = 1.0  # the max node of patch (0, 1) with 4x4 patches
    out = draw_signature_graph(
        image, tmp_path / "g.png", response=response, patch_size=4, nodes="max", title="t"
    )
    assert out["num_nodes_drawn"] == 4 and out["num_edges_drawn"] == 4
    assert out["graph"].nodes[0, 0, 1].tolist() == [1.0, 1.0, 6.0]
    assert (tmp_path / "g.png").stat().st_size > 0


def test_draw_rejects_bad_shapes(tmp_path):
    with pytest.raises(ValueError, match="image must be"):
        draw_signature_graph(torch.rand(2, 8, 8), tmp_path / "g.png")
    with pytest.raises(ValueError, match="response must be"):
        draw_signature_graph(torch.rand(8, 8), tmp_path / "g.png", response=torch.rand(1, 8, 8))
