"""Single-object tracking data: the `Sequence` container, procedural sequences, and readers/writers
for the folder layouts of OTB-2015, GOT-10k, LaSOT, UAV123 and TrackingNet.

Boxes are always float32 ``(T, 4)`` rows ``(x, y, w, h)`` in pixels, OTB convention: ``(x, y)`` is
the top-left corner in continuous pixel coordinates (the left edge of pixel column 0 is x = 0), so
a box covers ``[x, x + w) x [y, y + h)`` and its centre is ``(x + w / 2, y + h / 2)``. The files
of every benchmark use the same convention (OTB, GOT-10k, LaSOT, UAV123 and TrackingNet all store
``x, y, w, h`` per line); a row of NaN (UAV123 out-of-view) is kept as NaN and flagged absent.

Procedural sequences (`make_sequence`, `make_sequences`) paint targets (mnist5k digits, filled
shapes or image patches) that move, change scale and pass behind occluders over slowly panning
natural images from scikit-image, with distractors of the same kind and motion-blurred stretches;
`write_got10k` / `write_otb` store them in the real layouts so that the readers are exercised end to
end. Nothing is downloaded.

Layouts read here (root = the folder passed as ``root``, or ``$FRUGALCV_DATA/<name>``):

- OTB-2015: ``root/<seq>/img/0001.jpg ...`` and ``root/<seq>/groundtruth_rect.txt``.
- GOT-10k: ``root/<split>/list.txt``, ``root/<split>/<seq>/00000001.jpg ...``,
  ``groundtruth.txt`` (comma separated), optional ``absence.label`` and ``cover.label``.
- LaSOT: ``root/<category>/<category>-<k>/img/00000001.jpg ...``, ``groundtruth.txt``,
  ``full_occlusion.txt`` and ``out_of_view.txt`` (one comma-separated row of 0/1).
- UAV123: ``root/data_seq/UAV123/<seq>/000001.jpg ...`` and ``root/anno/UAV123/<seq>.txt``.
- TrackingNet: ``root/TRAIN_<k>/frames/<seq>/0.jpg ...`` and ``root/TRAIN_<k>/anno/<seq>.txt``.
"""

from frugalcv.data.tracking.procedural import TARGET_KINDS, make_sequence, make_sequences

# ``name as name``: a public name of the old module outside its __all__, still importable here.
from frugalcv.data.tracking.procedural import TargetKind as TargetKind
from frugalcv.data.tracking.readers import (
    read_boxes,
    read_got10k,
    read_lasot,
    read_otb,
    read_trackingnet,
    read_uav123,
)
from frugalcv.data.tracking.sequence import Sequence, load_frame
from frugalcv.data.tracking.writers import write_got10k, write_otb

__all__ = [
    "TARGET_KINDS",
    "Sequence",
    "load_frame",
    "make_sequence",
    "make_sequences",
    "read_boxes",
    "read_got10k",
    "read_lasot",
    "read_otb",
    "read_trackingnet",
    "read_uav123",
    "write_got10k",
    "write_otb",
]
