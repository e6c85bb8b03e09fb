"""Random crops from a folder of photos, for training every stage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from hfstream.media.images import list_images

GRAPHICS_SETS = 12  # sets of ``media.graphics`` pictures painted for training (5 each)


class PhotoCrops:
    """Keeps the photos in memory and cuts random, randomly rescaled, flipped crops.

    Rescaling by a random factor in ``[min_scale, 1]`` (never below the crop size) lets a
    crop of a 1024-px photo look like one of a 768x512 picture, which is what the codec
    meets at evaluation time.
    """

    def __init__(
        self,
        folder: str | Path,
        crop: int,
        seed: int = 0,
        min_scale: float = 0.5,
        *,
        graphics_share: float = 0.0,
    ):
        if not 0 <= graphics_share <= 1:
            raise ValueError(f"graphics_share must be in [0, 1], got {graphics_share}")
        self.crop = crop
        self.min_scale = min_scale
        self.rng = np.random.default_rng(seed)
        self.images: list[Image.Image] = []
        for path in list_images(folder):
            with Image.open(path) as im:
                im = im.convert("RGB")
                if min(im.size) >= crop:
                    self.images.append(im.copy())
        if not self.images:
            raise ValueError(f"No image in {folder} is at least {crop} px on its short side")
        # Graphics made in code (``media.graphics``), painted from seeds the evaluation's
        # set (seed 0) does not use: a share of the crops comes from them.
        self.graphics_share = graphics_share
        self.graphics: list[Image.Image] = []
        if graphics_share > 0:
            from hfstream.media.graphics import graphics_set

            for set_seed in range(1, GRAPHICS_SETS + 1):
                self.graphics += [Image.fromarray(a) for _, a in graphics_set(seed=set_seed)]
            self.graphics = [g for g in self.graphics if min(g.size) >= crop]

    def sample(self) -> np.ndarray:
        pool = self.images
        if self.graphics and self.rng.random() < self.graphics_share:
            pool = self.graphics
        im = pool[self.rng.integers(len(pool))]
        w, h = im.size
        lo = max(self.min_scale, self.crop / min(w, h))
        scale = float(self.rng.uniform(lo, 1.0))
        # Crop a window in original pixels, then resize it to the crop size.
        win = min(int(round(self.crop / scale)), w, h)
        x0 = int(self.rng.integers(0, w - win + 1))
        y0 = int(self.rng.integers(0, h - win + 1))
        patch = im.crop((x0, y0, x0 + win, y0 + win))
        if win != self.crop:
            patch = patch.resize((self.crop, self.crop), Image.Resampling.BICUBIC)
        arr = np.asarray(patch)
        if self.rng.random() < 0.5:
            arr = arr[:, ::-1]
        return np.ascontiguousarray(arr)

    def batch(self, n: int) -> torch.Tensor:
        """(n,3,crop,crop) float in [0,1]."""
        arr = np.stack([self.sample() for _ in range(n)])
        return torch.from_numpy(arr).permute(0, 3, 1, 2).float().div_(255.0)
