"""Cost of a model (parameters, FLOPs/MACs, latency, peak memory), as every benchmark reports it.

Conventions:

- FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` (no hand-written counting): one
  forward pass, eval mode, no grad. It counts matrix products and convolutions (``mm``, ``addmm``,
  ``bmm``, ``convolution``, attention), two FLOPs per multiply-accumulate, and ignores elementwise
  ops (BN, ReLU, residual adds, pooling, bias adds), the usual convention of the compression
  literature. ``MACs = FLOPs // 2``.
- Latency is wall-clock time of ``model(x)`` in eval mode under ``no_grad``, after warm-up runs;
  CUDA timings synchronise before reading the clock. CPU timings depend on
  ``torch.get_num_threads()``, which is reported alongside.
- Peak memory is ``resident + increment``: ``resident`` is the bytes of the model's parameters and
  buffers and of the input (already allocated before the pass), ``increment`` is the peak of the
  allocator's net allocations during the pass. On CUDA the increment is
  ``torch.cuda.max_memory_allocated()`` (after ``reset_peak_memory_stats``) minus the memory
  allocated before the pass, measured after one warm-up pass (library workspaces that cuBLAS and
  cuDNN allocate on first use and keep are excluded; sizes are the caching allocator's, rounded up
  to 512-byte blocks); on CPU it is the running sum of the allocation/free records of
  ``torch.profiler`` (``profile_memory=True``), which sees every tensor allocation through the c10
  CPU allocator, temporaries inside kernels included. Memory that libraries allocate outside c10
  (oneDNN scratch pads, BLAS buffers) is not seen. Training mode adds a backward pass of the sum of
  the outputs, so gradients and saved activations are counted; optimizer state is not.

Every function leaves the model as it found it: training flag, device, ``.grad`` and buffers
(BatchNorm running statistics) are restored.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode

__all__ = [
    "count_flops",
    "count_macs",
    "count_params",
    "interleaved_latency",
    "measure_latency",
    "model_cost",
    "module_device",
    "peak_memory",
    "to_module",
]


def count_params(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameter elements (shared parameters counted once).

    Args:
        trainable_only: count only parameters with ``requires_grad``.
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def module_device(model: nn.Module) -> torch.device:
    """Device of ``model``'s first parameter (or buffer); ``cpu`` for a module without either.

    Post-fit code (evaluation, feature extraction, cost counting) uses it to put its inputs where
    Fabric put the model: ``x.to(module_device(model))``.
    """
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def _module_float_dtype(model: nn.Module) -> torch.dtype | None:
    """Dtype of ``model``'s first floating-point parameter (or buffer); None without one."""
    for t in (*model.parameters(), *model.buffers()):
        if t.is_floating_point():
            return t.dtype
    return None


def to_module(data: Any, model: nn.Module) -> Any:
    """Move every tensor of a nested tuple/list/dict to ``model``'s device, ready for a forward.

    Floating-point tensors also take the dtype of the model's floating-point parameters, as
    Fabric's precision plugin does for the inputs of its wrapped forward (``"64-true"``,
    ``"16-true"``, ``"bf16-true"`` convert the module). Under the usual 32-bit or mixed
    precision that dtype is float32, so only the device changes. Integer tensors (labels, indices,
    ``uint8`` images) keep their dtype.
    """
    device, dtype = module_device(model), _module_float_dtype(model)

    def move(x: Any) -> Any:
        if torch.is_tensor(x):
            if dtype is not None and x.is_floating_point():
                return x.to(device=device, dtype=dtype)
            return x.to(device)
        if isinstance(x, (tuple, list)):
            return type(x)(move(v) for v in x)
        if isinstance(x, dict):
            return {k: move(v) for k, v in x.items()}
        return x

    return move(data)


@contextlib.contextmanager
def _prepared(
    model: nn.Module, *, device: torch.device | None = None, train: bool = False
) -> Iterator[nn.Module]:
    """Set the train/eval flag (and device), restoring both on exit."""
    was_training = model.training
    first = next(iter(model.parameters()), None)
    if first is None:
        first = next(iter(model.buffers()), None)
    old_device = first.device if first is not None else None
    if device is not None:
        model.to(device)
    model.train(train)
    try:
        yield model
    finally:
        model.train(was_training)
        if device is not None and old_device is not None and old_device != device:
            model.to(old_device)


def count_flops(model: nn.Module, x: Tensor) -> int:
    """FLOPs of one forward pass on ``x`` (whole batch), counted by ``FlopCounterMode``.

    Args:
        model: any module; run in eval mode under ``no_grad`` (its mode is restored).
        x: input batch ``(B, ...)``; moved to the model's device (and floating dtype) first, so a
            CPU example input works for a model on the GPU.

    Returns:
        FLOPs = 2 * MACs of the matrix products and convolutions (see the module docstring).
    """
    x = to_module(x, model)
    counter = FlopCounterMode(display=False)
    with _prepared(model), torch.no_grad(), counter:
        model(x)
    return int(counter.get_total_flops())


def count_macs(model: nn.Module, x: Tensor) -> int:
    """Multiply-accumulates of one forward pass on ``x``: ``count_flops(model, x) // 2``.

    ``x`` may live on any device (it is moved to the model's, see :func:`count_flops`).
    """
    return count_flops(model, x) // 2


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_latency(
    model: nn.Module,
    x: Tensor,
    *,
    warmup: int = 5,
    repeats: int = 20,
    device: str | torch.device = "cpu",
) -> dict:
    """Wall-clock time of ``model(x)`` in eval mode under ``no_grad``.

    The model is moved to ``device`` for the measurement and moved back afterwards.

    Args:
        x: input batch ``(B, ...)``; copied to ``device`` (floating dtype: the model's).
        warmup: untimed runs first (allocator, oneDNN/cuDNN algorithm choice).
        repeats: timed runs.

    Returns:
        ``{"median_ms", "p90_ms", "mean_ms": float, "batch_size": int, "device": str,
        "num_threads": int}``; ``p90_ms`` is the 90th percentile with linear interpolation.
    """
    if warmup < 0 or repeats < 1:
        raise ValueError(f"Need warmup >= 0 and repeats >= 1, got warmup={warmup}, {repeats=}.")
    device = torch.device(device)
    times_ms = []
    with _prepared(model, device=device), torch.no_grad():
        x = to_module(x, model)  # model already on `device`; dtype follows the model
        for _ in range(warmup):
            model(x)
        _sync(device)
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(x)
            _sync(device)
            times_ms.append((time.perf_counter() - t0) * 1e3)
    return {
        "median_ms": float(statistics.median(times_ms)),
        "p90_ms": float(np.percentile(times_ms, 90)),
        "mean_ms": float(statistics.fmean(times_ms)),
        "batch_size": int(x.shape[0]),
        "device": str(device),
        "num_threads": torch.get_num_threads(),
    }


def interleaved_latency(
    variants: dict[str, Callable[[], Any]],
    *,
    warmup: int = 3,
    repeats: int = 20,
    device: str | torch.device = "cpu",
) -> dict[str, float]:
    """Median milliseconds of each zero-argument call, timed round-robin.

    Each round times every variant once, so a change of machine load (other processes on a
    shared CPU) hits all variants alike instead of biasing the ones timed during it; use it for
    any ratio of two timings. Runs under ``torch.no_grad``; the callables must already be in
    eval mode on ``device`` (CUDA is synchronised before each clock read).
    """
    if warmup < 0 or repeats < 1:
        raise ValueError(f"Need warmup >= 0 and repeats >= 1, got warmup={warmup}, {repeats=}.")
    if not variants:
        raise ValueError("interleaved_latency needs at least one variant to time.")
    device = torch.device(device)
    times: dict[str, list[float]] = {k: [] for k in variants}
    with torch.no_grad():
        for _ in range(warmup):
            for fn in variants.values():
                fn()
        _sync(device)
        for _ in range(repeats):
            for k, fn in variants.items():
                t0 = time.perf_counter()
                fn()
                _sync(device)
                times[k].append((time.perf_counter() - t0) * 1e3)
    return {k: float(statistics.median(v)) for k, v in times.items()}


def _tensor_bytes(tensors: Iterable[Tensor]) -> int:
    """Bytes of the distinct storages behind ``tensors``."""
    seen: dict[tuple[str, int], int] = {}
    for t in tensors:
        st = t.untyped_storage()
        seen[(str(t.device), st.data_ptr())] = st.nbytes()
    return sum(seen.values())


def _cpu_peak_increment(fn: Callable[[], None]) -> int:
    """Peak of the running sum of c10 CPU allocations/frees recorded while ``fn()`` runs."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    records = [
        e
        for e in prof.profiler.kineto_results.events()
        if e.name() == "[memory]" and e.device_type() == DeviceType.CPU
    ]
    records.sort(key=lambda e: e.start_ns())  # stable: ties keep recording order
    current = peak = 0
    for e in records:
        current += e.nbytes()  # positive for an allocation, negative for a free
        peak = max(peak, current)
    return peak


def peak_memory(
    model: nn.Module, x: Tensor, *, device: str | torch.device = "cpu", train: bool = False
) -> int:
    """Peak bytes of one forward pass (with ``train``: forward + backward) on ``x``.

    Returns ``resident + increment`` as defined in the module docstring. With ``train`` the model
    runs in train mode and ``output.sum().backward()`` follows; ``.grad`` and buffers are restored
    afterwards, so BatchNorm statistics are not changed by the measurement.

    Args:
        x: input batch ``(B, ...)``; copied to ``device`` (floating dtype: the model's).
        device: ``"cpu"`` or a CUDA device; the model is moved there and back.
        train: include the backward pass (gradients, saved activations).
    """
    device = torch.device(device)
    with _prepared(model, device=device, train=train):
        x = to_module(x, model)  # model already on `device`; dtype follows the model
        saved_grads = {p: p.grad for p in model.parameters()}
        saved_buffers = {k: b.detach().clone() for k, b in model.named_buffers()}
        for p in model.parameters():
            p.grad = None
        resident = _tensor_bytes([*model.parameters(), *model.buffers(), x])

        def run() -> None:
            if train:
                outs = [t for t in tree_flatten(model(x))[0] if isinstance(t, Tensor)]
                sum(o.float().sum() for o in outs if o.requires_grad).backward()
            else:
                with torch.no_grad():
                    model(x)

        try:
            if device.type == "cuda":
                # One untimed pass first: cuBLAS/cuDNN allocate workspaces through the caching
                # allocator on first use and keep them; they are not part of this model's cost.
                run()
                for p in model.parameters():
                    p.grad = None
                torch.cuda.synchronize(device)
                torch.cuda.reset_peak_memory_stats(device)
                before = torch.cuda.memory_allocated(device)
                run()
                torch.cuda.synchronize(device)
                increment = torch.cuda.max_memory_allocated(device) - before
            else:
                increment = _cpu_peak_increment(run)
        finally:
            for p, g in saved_grads.items():
                p.grad = g
            with torch.no_grad():
                for k, b in model.named_buffers():
                    b.copy_(saved_buffers[k])
    return int(resident + increment)


def model_cost(
    model: nn.Module,
    *,
    input_shape: tuple[int, ...],
    device: str | torch.device = "cpu",
    batch_sizes: tuple[int, ...] = (1, 32),
    warmup: int = 5,
    repeats: int = 20,
) -> dict:
    """The cost numbers a benchmark puts in a results row's ``extra`` (a flat JSON-ready dict).

    Args:
        input_shape: shape of *one* sample without the batch dimension, e.g. ``(3, 32, 32)``.
        device: where latency and memory are measured.
        batch_sizes: batch sizes for latency and peak memory.
        warmup, repeats: passed to :func:`measure_latency`.

    Returns:
        ``{"params": int, "macs": int, "flops": int}`` (MACs/FLOPs per sample, counted at batch 1),
        ``"input_shape": "3x32x32"``, ``"device"``, ``"num_threads"``, and for each batch size
        ``b``: ``"latency_ms_b{b}"`` (median), ``"latency_p90_ms_b{b}"`` and
        ``"peak_memory_bytes_b{b}"`` (inference, :func:`peak_memory`).
    """
    if not input_shape or any(int(s) < 1 for s in input_shape):
        raise ValueError(
            f"input_shape must be a per-sample shape like (3, 32, 32), got {input_shape}."
        )
    if not batch_sizes or any(int(b) < 1 for b in batch_sizes):
        raise ValueError(f"batch_sizes must be positive integers, got {batch_sizes}.")
    device = torch.device(device)
    gen = torch.Generator().manual_seed(0)  # local generator: leaves the global RNG untouched
    x1 = torch.randn(1, *input_shape, generator=gen)
    with _prepared(model, device=device):
        flops = count_flops(model, x1.to(device))
    cost: dict = {
        "params": count_params(model),
        "macs": flops // 2,
        "flops": flops,
        "input_shape": "x".join(str(int(s)) for s in input_shape),
        "device": str(device),
        "num_threads": torch.get_num_threads(),
    }
    for b in batch_sizes:
        x = torch.randn(int(b), *input_shape, generator=gen)
        lat = measure_latency(model, x, warmup=warmup, repeats=repeats, device=device)
        cost[f"latency_ms_b{b}"] = lat["median_ms"]
        cost[f"latency_p90_ms_b{b}"] = lat["p90_ms"]
        cost[f"peak_memory_bytes_b{b}"] = peak_memory(model, x, device=device)
    return cost
