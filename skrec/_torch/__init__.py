"""PyTorch plumbing shared by every model: devices, device-resident CSR, top-k, the loop."""

from .device import DeviceCSR, make_generator, resolve_device
from .foldin import gradient_fold_in, ridge_fold_in
from .topk import topk_items
from .training import LoopSettings, TrainingDiverged, make_optimizer, run_training

__all__ = [
    "DeviceCSR",
    "LoopSettings",
    "TrainingDiverged",
    "gradient_fold_in",
    "make_generator",
    "make_optimizer",
    "resolve_device",
    "ridge_fold_in",
    "run_training",
    "topk_items",
]
