import pytest

from frugalcv.data.detection import make_zsd_digits


@pytest.fixture(scope="session")
def zsd_digits(tmp_path_factory):
    """A small procedural ZSD set written to COCO json in a temporary folder."""
    out = tmp_path_factory.mktemp("zsd") / "digits"
    return make_zsd_digits(num_train=48, num_val=8, num_test=24, seed=0, out_dir=out)
