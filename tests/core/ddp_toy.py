"""Launched by test_ddp.py under torchrun (2 CPU processes, gloo); not a test module itself."""

import json
import sys
from pathlib import Path

import torch

from frugalcv.core.config import OptimConfig, TrainConfig
from frugalcv.core.loader import DatasetLoader, TensorLoader
from frugalcv.core.loop import end_distributed, fit, make_fabric
from frugalcv.core.task import NonFiniteLossError
from frugalcv.testing import ToyTask, toy_data

out = Path(sys.argv[1])
nan_rank = int(sys.argv[2]) if len(sys.argv) > 2 else -1  # this rank's loss turns NaN at step 5
loader_kind = sys.argv[3] if len(sys.argv) > 3 else "tensor"  # "tensor" | "dataset"
train = TrainConfig(
    max_steps=12, batch_size=16, eval_every=6, ckpt_every=6, progress=False, accelerator="cpu"
)
fabric = make_fabric(train)
fabric.launch()
torch.manual_seed(fabric.global_rank)  # different init per rank: DDP must sync them
task = ToyTask(nan_at_step=5 if fabric.global_rank == nan_rank else -1)
x, y = toy_data(256)
if loader_kind == "dataset":  # the DataLoader path: a map-style dataset and a DistributedSampler
    train_loader = DatasetLoader(
        torch.utils.data.TensorDataset(x, y), batch_size=16, shuffle=True, drop_last=True
    )
else:
    train_loader = TensorLoader((x, y), batch_size=16, shuffle=True, drop_last=True)
try:
    res = fit(
        task,
        train_loader=train_loader,
        val_loader=TensorLoader(toy_data(64, seed=5), batch_size=32),
        train=train,
        optim=OptimConfig(lr=0.1, schedule="constant"),
        out_dir=out,
        fabric=fabric,
    )
except NonFiniteLossError as e:
    (out / f"rank{fabric.global_rank}.json").write_text(json.dumps({"error": str(e)}))
    end_distributed()
    sys.exit(3)
flat = torch.cat([p.detach().flatten() for p in task.parameters()])
(out / f"rank{fabric.global_rank}.json").write_text(
    json.dumps(
        {
            "world_size": fabric.world_size,
            "diff": res.replica_max_abs_diff,
            "params": flat.tolist(),
            "acc": res.final["acc"],
            "steps": res.steps,
        }
    )
)
end_distributed()
