"""Checkpoints as safetensors, small enough to commit, so a training run outlives its machine.

A training checkpoint (``OUT/STAGE.ckpt``) holds float32 weights and the optimisers'
moments. Its portable form keeps the weights as float16 (what ``export`` ships anyway)
and the optimiser tensors as bfloat16 (Adam's second moments underflow in float16), the
rest (step, arguments, optimiser settings) as JSON metadata. Only tensors and JSON: a
portable checkpoint is safe to load from anywhere.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

FORMAT = "hfstream-training-checkpoint"
MAX_BYTES = 128 * 1024 * 1024
_SEP = "/"


def _flatten_optimizer(name: str, state: dict[str, Any], tensors: dict, meta: dict) -> None:
    scalars: dict[str, dict[str, Any]] = {}
    for pid, slots in state["state"].items():
        for slot, value in slots.items():
            if isinstance(value, torch.Tensor) and value.numel() > 1:
                tensors[_SEP.join((name, "state", str(pid), slot))] = value.to(torch.bfloat16)
            else:
                v = value.item() if isinstance(value, torch.Tensor) else value
                scalars.setdefault(str(pid), {})[slot] = v
    meta[name] = {"param_groups": state["param_groups"], "scalars": scalars}


def _unflatten_optimizer(name: str, tensors: dict, meta: dict) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for pid, slots in meta["scalars"].items():
        state.setdefault(int(pid), {}).update({k: torch.tensor(float(v)) for k, v in slots.items()})
    prefix = name + _SEP + "state" + _SEP
    for key, value in tensors.items():
        if key.startswith(prefix):
            pid, slot = key[len(prefix) :].split(_SEP)
            state.setdefault(int(pid), {})[slot] = value.float()
    return {"state": state, "param_groups": meta["param_groups"]}


def save_portable(checkpoint: dict[str, Any], path: Path) -> None:
    """Write a loaded training checkpoint (``Checkpoint.load()``) as safetensors."""
    tensors: dict[str, torch.Tensor] = {}
    optimizers: dict[str, Any] = {}
    for name, state in checkpoint["states"].items():
        if isinstance(state, dict) and "param_groups" in state:
            _flatten_optimizer(name, state, tensors, optimizers)
            continue
        for key, value in state.items():
            # Scalars (bounds and other constants) stay float32: float16 would flush a
            # likelihood floor of 1e-9 to 0.
            v = value.half() if value.is_floating_point() and value.numel() > 1 else value.clone()
            tensors[_SEP.join((name, key))] = v.contiguous()
    meta = {
        "format": FORMAT,
        "step": str(checkpoint["step"]),
        "args": json.dumps(checkpoint["args"]),
        "optimizers": json.dumps(optimizers),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=meta)


def load_portable(path: Path) -> dict[str, Any]:
    """The training checkpoint (as ``Checkpoint.load()`` gives it) a portable file holds."""
    if not path.is_file():
        raise FileNotFoundError(f'Portable checkpoint "{path}" does not exist')
    if path.stat().st_size > MAX_BYTES:
        raise ValueError(f'"{path}" is larger than {MAX_BYTES} bytes')
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    except Exception as e:  # safetensors raises its own error types for corrupt files
        raise ValueError(f'"{path}" is not a safetensors file: {e}') from e
    if meta.get("format") != FORMAT:
        raise ValueError(f'"{path}" is not an hfstream training checkpoint')
    optimizers = json.loads(meta["optimizers"])
    states: dict[str, Any] = {}
    for key, value in tensors.items():
        name, rest = key.split(_SEP, 1)
        if name in optimizers:
            continue
        # A copy: a float32 tensor would otherwise stay a view into the file's storage.
        states.setdefault(name, {})[rest] = (
            value.to(torch.float32, copy=True) if value.is_floating_point() else value
        )
    for name, opt_meta in optimizers.items():
        states[name] = _unflatten_optimizer(name, tensors, opt_meta)
    return {"step": int(meta["step"]), "args": json.loads(meta["args"]), "states": states}
