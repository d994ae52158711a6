"""Capturing what layers output: the one place Pet Lab registers forward hooks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


class NothingCaptured(RuntimeError):
    """The forward pass never reached the hooked layers."""


@contextmanager
def capture_activations(
    model: nn.Module, layers: dict[str, nn.Module] | list[nn.Module], keep_grad: bool = False
) -> Iterator[dict[str, torch.Tensor]]:
    """Hook `layers` for the duration of the block; yields {name: output} filled by the forward pass.

    Outputs are detached and moved to the CPU inside the hook (unless keep_grad, used by Grad-CAM,
    which needs the graph). Every handle is removed in `finally`, also when the block raises; if
    the block ran a forward pass that never reached a hooked layer, NothingCaptured is raised.
    Use under `model.eval()` and `torch.no_grad()` unless gradients are the point.
    """
    named = layers if isinstance(layers, dict) else {str(i): m for i, m in enumerate(layers)}
    captured: dict[str, torch.Tensor] = {}
    handles = []

    def make_hook(name: str):
        def hook(_module: nn.Module, _inputs, output) -> None:
            out = output[0] if isinstance(output, (tuple, list)) else output
            # inplace ReLUs later in the net would overwrite a shared tensor: keep a copy
            captured[name] = out if keep_grad else out.detach().to("cpu", copy=True)

        return hook

    try:
        for name, module in named.items():
            handles.append(module.register_forward_hook(make_hook(name)))
        yield captured
    finally:
        for handle in handles:
            handle.remove()
    if not captured:
        raise NothingCaptured(f"no activations captured for {list(named)}: was the model run inside the block?")


def hook_count(model: nn.Module) -> int:
    """Total forward/backward hooks left on a model's modules (tests use it to prove none leak)."""
    return sum(
        len(m._forward_hooks) + len(m._backward_hooks) + len(getattr(m, "_forward_pre_hooks", {}))
        for m in model.modules()
    )
