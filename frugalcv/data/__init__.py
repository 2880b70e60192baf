"""Data: embedded sets, procedural generators and readers for real data sets on disk.

Nothing here downloads. Real sets live under `--data.root` or the FRUGALCV_DATA variable; built
sets (mnist-back, mnist-rot-back) are cached as .npz under FRUGALCV_CACHE (~/.cache/frugalcv).
"""

from frugalcv.data.background import sample_patches
from frugalcv.data.images import (
    IMAGE_DATASETS,
    ImageData,
    cache_dir,
    data_root,
    load_images,
    stratified_indices,
)
from frugalcv.data.real import (
    VOC_CLASSES,
    VOCSegmentationDataset,
    imagefolder_datasets,
    load_cifar,
    load_imagefolder,
    load_voc_segmentation,
)
from frugalcv.data.segmentation import SegData, make_digit_scenes

__all__ = [
    "IMAGE_DATASETS",
    "ImageData",
    "SegData",
    "VOCSegmentationDataset",
    "VOC_CLASSES",
    "cache_dir",
    "data_root",
    "imagefolder_datasets",
    "load_cifar",
    "load_imagefolder",
    "load_images",
    "load_voc_segmentation",
    "make_digit_scenes",
    "sample_patches",
    "stratified_indices",
]
