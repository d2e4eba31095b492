"""Speed and memory of training, inference and evaluation on this machine, in one run.

Prints a table and, with ``--json PATH``, writes the numbers (docs/PERFORMANCE.md explains each
key). Efficiencies are model FLOP/s (counted with torch's FlopCounterMode) over the fp32 matrix
product peak measured in the same run (the faster of MKL's ``torch.mm`` and oneDNN, see
``matmul_peaks``), so they compare across machines; times are the best of a few
repeats. ``--quick`` is a seconds-long smoke run (tiny models, one thread, torch.compile's
tracing without code generation); its numbers mean nothing.

    python tools/benchmark.py --json results/benchmark.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lib.core.acceleration import CompiledModel  # noqa: E402
from lib.core.builders import build_augmenter, build_model, build_normalizer  # noqa: E402
from lib.core.config import get_cfg_defaults, merge_file  # noqa: E402
from lib.core.evaluation import evaluate_checkpoint  # noqa: E402
from lib.core.losses import RefinementLoss  # noqa: E402
from lib.core.trainer import Trainer, TrainerSettings  # noqa: E402
from lib.data.dataset import PoseWindowDataset, collate_batch  # noqa: E402
from lib.data.skeletons import get_skeleton  # noqa: E402
from lib.data.smoothnet_io import SequenceSet  # noqa: E402
from lib.data.windows import overlap_add, window_frame_index, window_starts  # noqa: E402
from lib.errors import run_main  # noqa: E402
from lib.models.cpu_fast import linear_activation, onednn_usable  # noqa: E402
from lib.utils.checkpoint import save_checkpoint  # noqa: E402
from lib.utils.distributed import DistInfo, epoch_sampler  # noqa: E402
from lib.utils.host_memory import keep_freed_memory  # noqa: E402

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_SKELETON = "lsp14"  # aist: 14 LSP joints x 3 coordinates


@dataclass
class Plan:
    """Sizes of one benchmark run (full or quick)."""

    config: str  # YAML delta of the benchmarked model (the released aist setting)
    overrides: list  # KEY VALUE pairs on top of it
    batch: int  # windows per training step and per inference call
    matmul_size: int
    repeats: int
    eval_frames: tuple  # lengths of the generated test sequences (evaluated at step 1)
    rss_frames: int
    overlap_frames: int
    compile: bool
    compile_backend: str  # quick: dynamo tracing only ("eager"); inductor takes minutes


FULL = Plan("configs/aist_vibe_3D.yaml", [], 128, 2048, 5, (1200, 900), 100_000, 2000, True,
            "inductor")
QUICK = Plan("configs/aist_vibe_3D.yaml",
             ["MODEL.SLIDE_WINDOW_SIZE", 16, "MODEL.HIDDEN_SIZE", 32, "MODEL.RES_HIDDEN_SIZE", 16,
              "MODEL.NUM_BLOCKS", 1], 16, 256, 2, (120, 90), 100_000, 200, True,
             "eager")


# Wall time by default; --cpu-clock switches to this process's CPU time (with --threads 1 it
# ignores the time other jobs hold the core, not their cache and memory traffic).
_CLOCK = {"clock": time.perf_counter}
# Whether this process keeps freed memory (KEEP_FREED_MEMORY, as train.py and eval.py do by
# default); --no-keep-freed-memory measures glibc's default allocator behaviour instead.
_ALLOCATOR = {"keep_freed_memory": False}


def best_time(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Smallest time of ``repeats`` calls after ``warmup`` calls (seconds)."""
    clock = _CLOCK["clock"]
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        times.append(clock() - start)
    return min(times)


def matmul_peaks(size: int, repeats: int) -> dict[str, float]:
    """Best fp32 FLOP/s of square products on each path torch offers here (default threads).

    ``mkl`` is ``torch.mm`` (MKL's GEMM on x86); ``onednn`` is the fused oneDNN product the
    models' layers use (:mod:`lib.models.cpu_fast`), where this torch build has it. On CPUs
    where MKL does not pick its widest kernels (AMD EPYC among them) the two differ by about
    2x; the machine's fp32 limit is the larger one.
    """
    a, b = torch.randn(size, size), torch.randn(size, size)
    peaks = {"mkl": 2 * size**3 / best_time(lambda: a @ b, max(repeats, 3))}
    if onednn_usable(a, b):
        peaks["onednn"] = 2 * size**3 / best_time(lambda: linear_activation(a, b),
                                                  max(repeats, 3))
    return peaks


def counted_flops(fn: Callable[[], object]) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def make_cfg(plan: Plan, *extra):
    cfg = get_cfg_defaults()
    merge_file(cfg, os.path.join(_REPO, plan.config))
    cfg.merge_from_list([str(v) for v in [*plan.overrides, *extra]])
    return cfg


def make_trainer(model: torch.nn.Module, cfg, amp: bool) -> Trainer:
    """The project's Trainer, used here only for its train_step."""
    normalizer = build_normalizer(cfg, get_skeleton(_SKELETON), "3D")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, amsgrad=True)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, 0.95)
    settings = TrainerSettings("", 1, torch.device("cpu"), amp=amp)
    return Trainer(model, normalizer, None, optimizer, scheduler, RefinementLoss(),
                   lambda _: {}, settings, {})


def window_batch(batch: int, cfg) -> dict[str, torch.Tensor]:
    frames, channels = cfg.MODEL.SLIDE_WINDOW_SIZE, get_skeleton(_SKELETON).num_joints * 3
    target = torch.randn(batch, frames, channels).cumsum(1) * 0.01
    return {"input": target + 0.02 * torch.randn_like(target), "target": target,
            "mask": torch.ones(batch, frames, dtype=torch.bool)}


def train_speed(cfg, plan: Plan, amp: bool = False) -> tuple[float, float]:
    """(seconds per training step, counted FLOPs of one step) at ``plan.batch`` windows."""
    torch.manual_seed(0)
    model, _ = build_model(cfg, get_skeleton(_SKELETON), "3D")
    trainer, batch = make_trainer(model, cfg, amp), window_batch(plan.batch, cfg)
    flops = counted_flops(lambda: trainer.train_step(batch))
    return best_time(lambda: trainer.train_step(batch), plan.repeats), flops


def infer_speed(model: torch.nn.Module, batch: torch.Tensor, repeats: int,
                amp: bool = False) -> float:
    """Seconds per forward pass of ``batch`` in eval mode without gradients."""
    model.eval()

    def forward():
        with torch.no_grad(), torch.autocast("cpu", torch.bfloat16, enabled=amp):
            return model(batch)
    return best_time(forward, repeats)


def model_section(plan: Plan, results: dict) -> None:
    """Training and inference efficiency of MotionRefineNet and SmoothNet, AMP and compile."""
    cfg = make_cfg(plan)
    step, step_flops = train_speed(cfg, plan)
    step_amp, _ = train_speed(cfg, plan, amp=True)
    torch.manual_seed(0)
    model, _ = build_model(cfg, get_skeleton(_SKELETON), "3D")
    batch = window_batch(plan.batch, cfg)["input"]
    forward_flops = counted_flops(lambda: model.eval()(batch[:1]))
    infer = infer_speed(model, batch, plan.repeats + 2)
    results.update({
        "mrn_gflop_per_window": forward_flops / 1e9,
        "mrn_train_gflop_per_step": step_flops / 1e9,
        "mrn_train_gflops": step_flops / step / 1e9,
        "mrn_infer_gflops": forward_flops * plan.batch / infer / 1e9,
        "mrn_train_amp_speedup": step / step_amp,
        "mrn_infer_amp_speedup": infer / infer_speed(model, batch, plan.repeats + 2, amp=True),
    })
    if plan.compile:
        start = time.perf_counter()
        compiled = CompiledModel(model, plan.compile_backend).eval()
        with torch.no_grad():
            compiled(batch)
        results["mrn_compile_seconds"] = time.perf_counter() - start
        results["mrn_infer_compile_speedup"] = infer / infer_speed(compiled, batch,
                                                                   plan.repeats + 2)
    smooth_cfg = make_cfg(plan, "MODEL.NAME", "smoothnet", "MODEL.RES_HIDDEN_SIZE", 256,
                          "MODEL.NUM_BLOCKS", 3, "MODEL.DROPOUT", 0.5)
    smooth_step, smooth_flops = train_speed(smooth_cfg, plan)
    results["smoothnet_train_gflops"] = smooth_flops / smooth_step / 1e9


def synthetic_set(lengths, seed: int = 0) -> SequenceSet:
    """Smooth random motion plus noise, in the aist layout (14 joints, metres)."""
    rng = np.random.default_rng(seed)
    skeleton = get_skeleton(_SKELETON)
    truth = [np.cumsum(rng.normal(0, 0.005, (n, skeleton.num_joints, 3)), axis=0)
             .astype(np.float32) + rng.normal(0, 0.3, (1, skeleton.num_joints, 3))
             .astype(np.float32) for n in lengths]
    noisy = [(seq + rng.normal(0, 0.03, seq.shape)).astype(np.float32) for seq in truth]
    return SequenceSet("bench_sim_3D", "test", skeleton, "3D", noisy, truth,
                       [f"seq{i}" for i in range(len(lengths))])


def write_checkpoint(cfg, path: str) -> None:
    """An untrained checkpoint of the configured model in the project's format."""
    torch.manual_seed(0)
    skeleton = get_skeleton(_SKELETON)
    model, kwargs = build_model(cfg, skeleton, "3D")
    save_checkpoint(path, {"model": model.state_dict(), "model_name": cfg.MODEL.NAME,
                           "model_kwargs": kwargs, "epoch": 0, "cfg": cfg.dump(),
                           "normalizer_kwargs": build_normalizer(cfg, skeleton, "3D").kwargs()})


def model_only_time(cfg, seq_set: SequenceSet) -> Callable[[], None]:
    """Model calls alone on the very windows evaluation cuts (step 1), batch by batch."""
    torch.manual_seed(0)
    model, _ = build_model(cfg, seq_set.skeleton, "3D")
    model.eval()
    window = cfg.MODEL.SLIDE_WINDOW_SIZE
    windows = [torch.from_numpy(seq.reshape(len(seq), -1))[
        window_frame_index(torch.from_numpy(window_starts(len(seq), window, 1)), window)]
        for seq in seq_set.detected]
    batches = torch.cat(windows).split(cfg.EVAL.BATCH_SIZE)

    def run() -> None:
        with torch.no_grad():
            for batch in batches:
                model(batch)
    return run


def eval_section(plan: Plan, results: dict) -> None:
    """End-to-end evaluation (windows, model, overlap-add, metrics) over model-only time."""
    cfg = make_cfg(plan, "EVAL.SLIDE_STEP", 1)
    seq_set = synthetic_set(plan.eval_frames)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "bench.pth")
        write_checkpoint(cfg, path)
        device = torch.device("cpu")
        end_to_end = best_time(lambda: evaluate_checkpoint(path, seq_set, cfg, device), 2, 0)
    model_only = best_time(model_only_time(cfg, seq_set), 2, 0)
    results["eval_overhead"] = end_to_end / model_only
    results["eval_windows"] = sum(len(seq) - cfg.MODEL.SLIDE_WINDOW_SIZE + 1
                                  for seq in seq_set.detected)


def loader_time(cfg, seq_set: SequenceSet, augment: str, batch: int) -> float:
    """Seconds per training batch from the project's dataset and sampler (no workers)."""
    cfg = cfg.clone()
    cfg.TRAIN.AUGMENT = augment
    augmenter = build_augmenter(cfg, seq_set.skeleton, "3D", "aist")
    dataset = PoseWindowDataset(seq_set.detected, seq_set.groundtruth,
                                cfg.MODEL.SLIDE_WINDOW_SIZE, 1, augmenter, augment)
    loader = DataLoader(dataset, batch_size=batch, sampler=epoch_sampler(dataset, DistInfo(), 0),
                        collate_fn=collate_batch)
    batches = iter(loader)
    return best_time(lambda: next(batches), 10)


def data_section(plan: Plan, results: dict) -> None:
    """Batch loading beside a training step: plain windows and fresh simulated errors."""
    cfg = make_cfg(plan)
    seq_set = synthetic_set((3000, 2000))
    results["data_ms_per_batch"] = 1e3 * loader_time(cfg, seq_set, "none", plan.batch)
    results["data_augment_ms_per_batch"] = 1e3 * loader_time(cfg, seq_set, "replace",
                                                             plan.batch)


def naive_overlap_add(windows: np.ndarray, starts: np.ndarray, num_frames: int) -> np.ndarray:
    """The per-frame Python loop that :func:`lib.data.windows.overlap_add` replaces."""
    total = np.zeros((num_frames, *windows.shape[2:]), dtype=windows.dtype)
    count = np.zeros(num_frames)
    for window, start in zip(windows, starts):
        for offset, frame in enumerate(window):
            total[start + offset] += frame
            count[start + offset] += 1
    return total / count[:, None]


def overlap_add_section(plan: Plan, results: dict) -> None:
    frames, window = plan.overlap_frames, 32
    starts = window_starts(frames, window, 1)
    windows = np.random.default_rng(0).normal(size=(len(starts), window, 42)).astype(np.float32)
    fast = best_time(lambda: overlap_add(torch.from_numpy(windows), torch.from_numpy(starts),
                                         frames), 5)
    slow = best_time(lambda: naive_overlap_add(windows, starts, frames), 1, 0)
    results["overlap_add_speedup"] = slow / fast


def rss_child(frames: int, quick: bool) -> None:
    """Evaluate one ``frames``-long sequence and print this process's peak RSS in MB."""
    plan = QUICK if quick else FULL
    # Step = window: memory does not depend on the step, the run time does (100 k windows).
    cfg = make_cfg(plan)
    cfg.merge_from_list(["EVAL.SLIDE_STEP", str(cfg.MODEL.SLIDE_WINDOW_SIZE)])
    seq_set = synthetic_set((frames,))
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "bench.pth")
        write_checkpoint(cfg, path)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        evaluate_checkpoint(path, seq_set, cfg, torch.device("cpu"))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peak_mb": peak, "before_eval_mb": before, "vmhwm_mb": vm_hwm_mb()}))


def vm_hwm_mb() -> float:
    """Peak RSS of this process image from /proc (0 elsewhere).

    ru_maxrss survives exec, so a child started by a large parent reports at least the
    parent's size; the benchmark therefore measures memory first, and VmHWM cross-checks it.
    """
    if not os.path.isfile("/proc/self/status"):
        return 0.0
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return float(line.split()[1]) / 1024
    return 0.0


def rss_section(plan: Plan, quick: bool, results: dict) -> None:
    command = [sys.executable, os.path.abspath(__file__), "--rss-child", str(plan.rss_frames),
               "--threads", str(torch.get_num_threads())]
    if not _ALLOCATOR["keep_freed_memory"]:  # the child evaluates as eval.py would here
        command.append("--no-keep-freed-memory")
    done = subprocess.run(command + (["--quick"] if quick else []), capture_output=True,
                          text=True, check=True, cwd=_REPO)
    child = json.loads(done.stdout.strip().splitlines()[-1])
    results["peak_rss_mb_100k"] = child["peak_mb"]
    results["rss_mb_before_eval_100k"] = child["before_eval_mb"]
    results["peak_vmhwm_mb_100k"] = child["vmhwm_mb"]


def machine() -> dict:
    cpu = platform.processor() or "unknown"
    if os.path.isfile("/proc/cpuinfo"):
        names = [line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    return {"cpu": cpu, "logical_cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "cuda": torch.cuda.is_available(),
            "freed_memory_kept": _ALLOCATOR["keep_freed_memory"],
            "load_average_start": os.getloadavg()}


def run(plan: Plan, quick: bool) -> dict:
    results: dict = {"machine": machine()}
    started, cpu_started = time.perf_counter(), time.process_time()
    rss_section(plan, quick, results)  # first, while this process is small (see vm_hwm_mb)
    # The peak is the best fp32 product of any path, measured before and after the models so
    # that a slow start (frequency scaling, a neighbour's burst) does not flatter them.
    peaks = matmul_peaks(plan.matmul_size, plan.repeats)
    model_section(plan, results)
    for path, flops in matmul_peaks(plan.matmul_size, plan.repeats).items():
        peaks[path] = max(peaks[path], flops)
    results["matmul_gflops"] = max(peaks.values()) / 1e9
    for path, flops in peaks.items():
        results[f"matmul_gflops_{path}"] = flops / 1e9
    for name in ("mrn_train", "mrn_infer", "smoothnet_train"):
        results[f"{name}_pct_peak"] = 100 * results[f"{name}_gflops"] / results["matmul_gflops"]
    eval_section(plan, results)
    data_section(plan, results)
    overlap_add_section(plan, results)
    results["machine"]["load_average_end"] = os.getloadavg()
    results["benchmark_seconds"] = time.perf_counter() - started
    # CPU seconds per wall second: near torch_threads on an idle machine, lower when shared.
    results["machine"]["cpu_share"] = (time.process_time() - cpu_started) / \
        results["benchmark_seconds"]
    results["machine"]["clock"] = "cpu" if _CLOCK["clock"] is time.process_time else "wall"
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default="", help="also write the results here")
    parser.add_argument("--quick", action="store_true", help="seconds-long smoke run")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile (minutes)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads (default: torch's choice, all cores)")
    parser.add_argument("--cpu-clock", action="store_true",
                        help="time with process CPU time (use with --threads 1 on a busy machine)")
    parser.add_argument("--no-keep-freed-memory", action="store_true",
                        help="leave glibc's allocator as it is (train.py's KEEP_FREED_MEMORY "
                             "False), to measure what keeping freed memory gains")
    parser.add_argument("--rss-child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.no_keep_freed_memory:
        _ALLOCATOR["keep_freed_memory"] = keep_freed_memory()
    if args.quick or args.threads:
        # A smoke run, often beside other jobs: a second thread only adds waits at barriers.
        torch.set_num_threads(args.threads or 1)
    if args.cpu_clock:
        _CLOCK["clock"] = time.process_time
    if args.rss_child:
        rss_child(args.rss_child, args.quick)
        return 0
    plan = QUICK if args.quick else FULL
    plan.compile = plan.compile and not args.no_compile
    results = run(plan, args.quick)
    for key, value in results.items():
        print(f"{key:28s} {value:.3f}" if isinstance(value, float) else f"{key:28s} {value}")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)
    return 0


if __name__ == "__main__":
    run_main(main, "benchmark")
