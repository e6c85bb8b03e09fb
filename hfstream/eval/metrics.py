"""Picture quality: PSNR, MS-SSIM and HaarPSI (a non-learned perceptual metric).

HaarPSI (Reisenhofer et al., 2018) compares Haar-wavelet responses with a perceptual
weighting and needs no trained network, which matters here: no learned metric's weights
can be downloaded on the machines this project runs on. All three: higher is better.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from hfstream.extras import require


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
    return float(
        require("piq", purpose="MS-SSIM").multi_scale_ssim(b, a, data_range=1.0, kernel_size=kernel)
    )


@torch.inference_mode()
def haarpsi(ref: np.ndarray, test: np.ndarray) -> float:
    return float(require("piq", purpose="HaarPSI").haarpsi(_t(test), _t(ref), data_range=1.0))


def all_metrics(ref: np.ndarray, test: np.ndarray, *, vmaf: bool = False) -> dict[str, float]:
    """PSNR, MS-SSIM and HaarPSI of ``test`` against ``ref``; with ``vmaf``, VMAF too
    (``hfstream.eval.vmaf``: an FFmpeg run)."""
    if ref.shape != test.shape:
        raise ValueError(f"reference is {ref.shape}, test image is {test.shape}")
    out = {"psnr": psnr(ref, test), "ms_ssim": ms_ssim(ref, test), "haarpsi": haarpsi(ref, test)}
    if vmaf:
        from hfstream.eval.vmaf import vmaf as vmaf_of

        out["vmaf"] = vmaf_of(ref, test).mean
    return out


def seam_ratio(image: np.ndarray, patch: int = 256, phase: int = 8) -> float:
    """Mean absolute step across patch borders over the mean step at the same phase inside.

    Neighbouring pixels differ about as much across a patch border as anywhere in a
    natural picture (ratio near 1); a codec that codes patches apart shows its seams as a
    larger ratio. The inside steps are those every ``phase`` pixels in line with the
    borders (between pixels 8k-1 and 8k), so that the 8-px block grid of a JPEG original
    weighs on both sides alike. Steps are taken along rows and columns on the grey level;
    an image without any patch border has ratio 1.
    """
    grey = image.astype(np.float64).mean(axis=2)
    border, inner = [], []
    for axis in (0, 1):
        steps = np.abs(np.diff(grey, axis=axis))  # step k lies between pixels k and k+1
        k = np.arange(steps.shape[axis])
        at_phase = (k + 1) % phase == 0
        at_border = (k + 1) % patch == 0
        border.append(np.compress(at_border, steps, axis=axis).ravel())
        inner.append(np.compress(at_phase & ~at_border, steps, axis=axis).ravel())
    b, i = np.concatenate(border), np.concatenate(inner)
    if b.size == 0 or i.size == 0 or i.mean() == 0:
        return 1.0
    return float(b.mean() / i.mean())
