"""What every training stage shares: device and DDP set-up, resumable checkpoints, logging."""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist


@dataclass
class Runtime:
    rank: int
    world: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_runtime(seed: int, device: str | None = None) -> Runtime:
    """CPU by default, CUDA when present; DDP when launched by ``torchrun``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if world > 1:
        backend = "nccl" if device.startswith("cuda") else "gloo"
        dist.init_process_group(backend)
        if device.startswith("cuda"):
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local)
            device = f"cuda:{local}"
    seed_everything(seed + rank)
    return Runtime(rank=rank, world=world, device=torch.device(device))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def wrap_ddp(module: torch.nn.Module, rt: Runtime) -> torch.nn.Module:
    if rt.world == 1:
        return module
    ids = [rt.device.index] if rt.device.type == "cuda" else None
    # Some parameters only get gradients from auxiliary losses (compressai's quantiles).
    return torch.nn.parallel.DistributedDataParallel(
        module, device_ids=ids, find_unused_parameters=True
    )


def optimizer_step(
    opt: torch.optim.Optimizer, loss: torch.Tensor, params: Iterable[torch.nn.Parameter]
) -> bool:
    """One gradient step with the gradient norm clipped to 1 (every stage's recipe).

    A step whose gradient norm is not finite (a NaN or infinite loss makes it so) is
    skipped and False returned: one bad batch must not poison the weights of a run that
    resumes for days. The decision follows the norm of the (all-reduced) gradients, so
    every process of a distributed run takes the same one."""
    opt.zero_grad()
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(params, 1.0)
    if not torch.isfinite(norm):
        opt.zero_grad()
        return False
    opt.step()
    return True


def entropy_step(model: torch.nn.Module, aux_opt: torch.optim.Optimizer) -> None:
    """One step of compressai's auxiliary loss (the entropy bottleneck's quantiles),
    skipped where it is not finite."""
    aux = model.aux_loss()
    aux_opt.zero_grad()
    if torch.isfinite(aux):
        aux.backward()
        aux_opt.step()


def _all_finite(state: Any) -> bool:
    if isinstance(state, torch.Tensor):
        return not state.is_floating_point() or bool(torch.isfinite(state).all())
    if isinstance(state, dict):
        return all(_all_finite(v) for v in state.values())
    if isinstance(state, (list, tuple)):
        return all(_all_finite(v) for v in state)
    return True


class Checkpoint:
    """A resumable checkpoint: state dicts, the step reached and the stage's arguments.

    Loaded with ``weights_only=True``: a checkpoint is tensors and plain containers only.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def exists(self) -> bool:
        return self.path.exists()

    def save(self, step: int, states: dict[str, Any], args: dict[str, Any]) -> None:
        """Write the checkpoint; refuse (SystemExit, the last one kept) when any weight or
        optimiser state is NaN or infinite, so a diverged run never overwrites a good one."""
        if not _all_finite(states):
            raise SystemExit(
                f"step {step}: the weights are no longer finite (the run diverged); "
                f"{self.path} was not overwritten and holds the last good state"
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        torch.save({"step": step, "states": states, "args": args}, tmp)
        os.replace(tmp, self.path)  # a crash mid-save never corrupts the last checkpoint

    def load(self) -> dict[str, Any]:
        return torch.load(self.path, map_location="cpu", weights_only=True)

    def resume(self, **modules: Any) -> int:
        """Load every named state (a model, optimisers) that the checkpoint holds; return
        the step reached, 0 when there is no checkpoint.

        A checkpoint written by ``init`` (weights from a shipped model) holds the model
        alone: the optimisers then start fresh.
        """
        if not self.exists():
            return 0
        state = self.load()
        for name, module in modules.items():
            if name in state["states"]:
                module.load_state_dict(state["states"][name])
        return int(state["step"])


class JsonLog:
    """Appends one JSON object per line: the training curve of a stage."""

    def __init__(self, path: Path, enabled: bool) -> None:
        self.path = path
        self.enabled = enabled
        self.t0 = time.time()
        if enabled:
            path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, **record: Any) -> None:
        if self.enabled:
            record["elapsed_s"] = round(time.time() - self.t0, 1)
            with self.path.open("a") as f:
                f.write(json.dumps(record) + "\n")
