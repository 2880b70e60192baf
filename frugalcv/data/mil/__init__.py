"""Multiple-instance data: the `Bags` container, generators, a bag file format and MIL readers.

A bag is a video (or a molecule, an image) and its instances are segments (conformations,
regions). `Bags` stores the instances of all bags concatenated, with offsets, so bags of any size
live in one array. Bag labels are event indices: ``labels[b] = e`` means bag b shows event
``event_names[e]``; ``-1`` means a background (negative) bag. A binary MIL set has one event.

- `make_mnist_bags`: MNIST-bags (Ilse, Tomczak, Welling, ICML 2018): a bag of digits is positive
  iff it holds the target digit.
- `make_event_bags`: synthetic MED-like videos: segments with features and concept scores, events
  defined by key concepts, event semantic vectors.
- `save_bags` / `load_bags`: the bag file format (.npz always; .h5/.hdf5 when h5py is installed).
- `read_musk_data`, `read_mil_mat`, `read_mil_csv`, `load_classic_mil`: Musk1/2, Elephant, Fox,
  Tiger in their common distribution formats.
- `BagDataset`, `collate_bags`: padded torch batches for attention MIL.

Nothing downloads; real files are read from ``--data.root`` / FRUGALCV_DATA.
"""

from frugalcv.data.mil.bags import BagDataset, Bags, collate_bags, split_bags
from frugalcv.data.mil.classic import (
    CLASSIC_MIL_FILES,
    load_classic_mil,
    read_mil_csv,
    read_mil_mat,
    read_musk_data,
)
from frugalcv.data.mil.files import BAG_FILE_KEYS, load_bags, save_bags

# ``name as name``: public names of the old module outside its __all__, still importable here.
from frugalcv.data.mil.files import BAG_FILE_VERSION as BAG_FILE_VERSION
from frugalcv.data.mil.generators import MNIST_BAG_FEATURES as MNIST_BAG_FEATURES
from frugalcv.data.mil.generators import make_event_bags, make_mnist_bags

__all__ = [
    "BAG_FILE_KEYS",
    "CLASSIC_MIL_FILES",
    "BagDataset",
    "Bags",
    "collate_bags",
    "load_bags",
    "load_classic_mil",
    "make_event_bags",
    "make_mnist_bags",
    "read_mil_csv",
    "read_mil_mat",
    "read_musk_data",
    "save_bags",
    "split_bags",
]
