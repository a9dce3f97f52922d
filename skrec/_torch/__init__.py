"""PyTorch plumbing shared by every model: devices, device-resident CSR, top-k, the loop."""

from .device import DeviceCSR, make_generator, resolve_device
from .topk import topk_items
from .training import LoopSettings, TrainingDiverged, make_optimizer, run_training

__all__ = [
    "DeviceCSR",
    "LoopSettings",
    "TrainingDiverged",
    "make_generator",
    "make_optimizer",
    "resolve_device",
    "run_training",
    "topk_items",
]
