"""PyTorch plumbing shared by every model: devices, device-resident CSR, top-k, fold-in, the loop."""

from .device import DeviceCSR, make_generator, resolve_device
from .foldin import gradient_fold_in, pairwise_fold_in, ridge_fold_in
from .topk import topk_items
from .training import GradientTrainer, Trainer, TrainingDiverged, TrainingResult, fit_epochs, make_optimizer

__all__ = [
    "DeviceCSR",
    "GradientTrainer",
    "Trainer",
    "TrainingDiverged",
    "TrainingResult",
    "fit_epochs",
    "gradient_fold_in",
    "make_generator",
    "make_optimizer",
    "pairwise_fold_in",
    "resolve_device",
    "ridge_fold_in",
    "topk_items",
]
