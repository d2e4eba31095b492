"""Optional speed-ups: bf16 autocast (TRAIN.AMP) and torch.compile (MODEL.COMPILE)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

import torch
from torch import nn

from lib.models.cpu_fast import onednn_usable

logger = logging.getLogger(__name__)


def bf16_supported(device: torch.device) -> bool:
    """Whether ``device`` runs bf16 matrix products fast.

    CUDA needs compute capability 8.0 or newer; on a CPU, oneDNN (which runs bf16 GEMMs) must
    report bf16 support: AVX-512 CPUs, natively with AVX512-BF16 or AMX. Elsewhere bf16 is
    emulated and slower than fp32.
    """
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(torch.backends.mkldnn.is_available()
                    and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def resolve_amp(requested: bool, device: torch.device) -> bool:
    """TRAIN.AMP as it will run: off, with a warning, where bf16 is not fast."""
    if requested and not bf16_supported(device):
        logger.warning("TRAIN.AMP: %s has no fast bf16 matrix products; training and "
                       "evaluating in fp32", device)
        return False
    return requested


def autocast(device: torch.device | str, enabled: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on ``device`` when enabled, else a no-op context."""
    device_type = torch.device(device).type
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=torch.bfloat16)


class CompiledModel(nn.Module):
    """Runs ``torch.compile(module)`` and falls back to eager if compiling fails.

    Compilation happens lazily, on the first call and on every recompilation (a new batch
    size, train / eval mode), so a failure can surface at any call: it is logged once and the
    eager module is used from then on. Errors of the model itself (a bad input shape) are not
    compiler errors and propagate unchanged.

    Args:
        module: the model; it stays reachable as ``.module`` (checkpoints store its weights).
        backend: torch.compile backend.

    Shape:
        as ``module``.
    """

    def __init__(self, module: nn.Module, backend: str | Callable = "inductor") -> None:
        super().__init__()
        self.module = module
        # A plain function, not a submodule: state_dict keys stay those of ``module``.
        self._compiled = torch.compile(module.forward, backend=backend)

    def forward(self, *args, **kwargs):
        if self._compiled is not None:
            try:
                return self._compiled(*args, **kwargs)
            except Exception as err:
                if not _is_compiler_error(err):
                    raise
                logger.warning("MODEL.COMPILE: torch.compile failed (%s: %s); running the "
                               "model eagerly", type(err).__name__, str(err).splitlines()[0]
                               if str(err) else "")
                self._compiled = None
        return self.module(*args, **kwargs)


def _is_compiler_error(err: Exception) -> bool:
    # Imported here: torch._dynamo adds about a second to every start of train.py and eval.py.
    from torch._dynamo.exc import TorchDynamoException

    return isinstance(err, TorchDynamoException)


def maybe_compile(model: nn.Module, enabled: bool) -> nn.Module:
    """``CompiledModel(model)`` when enabled and torch.compile exists, else ``model``."""
    if not enabled:
        return model
    if not hasattr(torch, "compile"):
        logger.warning("MODEL.COMPILE: this torch has no torch.compile; running eagerly")
        return model
    parameter = next(model.parameters(), None)
    if parameter is not None and onednn_usable(parameter):
        logger.warning("MODEL.COMPILE on the CPU: compiled code runs the Linear layers on "
                       "torch's default GEMM instead of the fused oneDNN products of eager mode "
                       "(lib/models/cpu_fast.py); where oneDNN is the faster library (AMD "
                       "EPYC: 2x) the compiled model is slower. Measure with "
                       "tools/benchmark.py (mrn_infer_compile_speedup)")
    return CompiledModel(model)


def unwrap(model: nn.Module) -> nn.Module:
    """The bare model inside DistributedDataParallel and CompiledModel wrappers."""
    while isinstance(model, (CompiledModel, nn.parallel.DistributedDataParallel)):
        model = model.module
    return model
