"""Picture quality: PSNR, MS-SSIM and HaarPSI (a non-learned perceptual metric).

HaarPSI (Reisenhofer et al., 2018) compares Haar-wavelet responses with a perceptual
weighting and needs no trained network, which matters here: no learned metric's weights
can be downloaded on the machines this project runs on. All three: higher is better.
"""

from __future__ import annotations

import math

import numpy as np
import piq
import torch


def _t(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(img, copy=True)).permute(2, 0, 1)[None].float() / 255.0


def psnr(ref: np.ndarray, test: np.ndarray) -> float:
    mse = np.mean((ref.astype(np.float64) - test.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


@torch.inference_mode()
def ms_ssim(ref: np.ndarray, test: np.ndarray) -> float:
    """MS-SSIM; images smaller than 161 px on a side use fewer scales' worth of window."""
    a, b = _t(ref), _t(test)
    kernel = 11 if min(ref.shape[:2]) >= 161 else 3
    return float(piq.multi_scale_ssim(b, a, data_range=1.0, kernel_size=kernel))


@torch.inference_mode()
def haarpsi(ref: np.ndarray, test: np.ndarray) -> float:
    return float(piq.haarpsi(_t(test), _t(ref), data_range=1.0))


def all_metrics(ref: np.ndarray, test: np.ndarray) -> dict[str, float]:
    if ref.shape != test.shape:
        raise ValueError(f"reference is {ref.shape}, test image is {test.shape}")
    return {"psnr": psnr(ref, test), "ms_ssim": ms_ssim(ref, test), "haarpsi": haarpsi(ref, test)}
