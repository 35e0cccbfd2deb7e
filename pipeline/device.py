"""Choosing where tensors live: one rule for every step, `auto` prefers CUDA."""

from __future__ import annotations

import torch

from .constants import DEVICE_CHOICES

MSG_NO_CUDA = "--device cuda was asked for, but no CUDA device is available (torch {version}); use --device auto or cpu"


def resolve_device(name: str = "auto") -> torch.device:
    """Map a user's `auto|cpu|cuda` to a torch device, failing clearly when CUDA is missing."""
    if name not in DEVICE_CHOICES:
        raise ValueError(f"device must be one of {DEVICE_CHOICES}, got {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(MSG_NO_CUDA.format(version=torch.__version__))
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
