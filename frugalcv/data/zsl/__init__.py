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

from frugalcv.data.zsl.attr_shapes import ATTR_SHAPES_GROUPS, make_attr_shapes
from frugalcv.data.zsl.container import SEMANTICS_OPTIONS, ZSLData, text_semantics
from frugalcv.data.zsl.image_folder import load_zsl_image_folder
from frugalcv.data.zsl.xlsa17 import XLSA17_NAMES, XLSA17_SIZES, load_xlsa17
from frugalcv.data.zsl.zsl_digits import (
    DIGIT_ATTRIBUTE_NAMES,
    DIGIT_ATTRIBUTES,
    DIGIT_NAMES,
    make_zsl_digits,
)

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
