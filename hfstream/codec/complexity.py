"""Per-patch complexity score, and the schedule it selects.

Four cues, each cheap and computed on the 256x256 patch:

- ``entropy``: Shannon entropy (bits) of the 256-bin luma histogram;
- ``contrast``: standard deviation of luma (RMS contrast);
- ``colour_entropy``: entropy of the joint RGB histogram at 8 levels per channel;
- ``spatial_frequency``: sqrt(RF^2 + CF^2), the RMS of horizontal and vertical luma
  differences.

Each cue is mapped to [0, 1] with a min/max pair taken from the training patches
(1st and 99th percentiles, clipped), and the score is their mean. Two thresholds, also
fitted on the training patches, split scores into ``1_9`` (simple), ``1_4`` and ``1_2``
(busy). The normalisers and thresholds ship in the model's config.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from hfstream.codec.schedules import Schedule

FEATURES = ("entropy", "contrast", "colour_entropy", "spatial_frequency")


@dataclass(frozen=True)
class ComplexityModel:
    low: tuple[float, float, float, float]  # per-feature value mapped to 0
    high: tuple[float, float, float, float]  # per-feature value mapped to 1
    thresholds: tuple[float, float]  # score < t0 -> 1_9, < t1 -> 1_4, else 1_2

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ComplexityModel:
        low, high, th = tuple(d["low"]), tuple(d["high"]), tuple(d["thresholds"])
        if len(low) != 4 or len(high) != 4 or len(th) != 2:
            raise ValueError("Complexity model needs 4 low, 4 high values and 2 thresholds")
        if not th[0] <= th[1]:
            raise ValueError(f"Complexity thresholds must be increasing, got {th}")
        return cls(low=low, high=high, thresholds=th)  # type: ignore[arg-type]

    def score(self, patch: np.ndarray) -> float:
        f = patch_features(patch)
        lo, hi = np.asarray(self.low), np.asarray(self.high)
        return float(np.mean(np.clip((f - lo) / np.maximum(hi - lo, 1e-9), 0.0, 1.0)))

    def schedule_for(self, score: float) -> Schedule:
        if score < self.thresholds[0]:
            return Schedule.NINTH
        if score < self.thresholds[1]:
            return Schedule.QUARTER
        return Schedule.HALF


def _entropy(counts: np.ndarray) -> float:
    p = counts[counts > 0].astype(np.float64)
    p /= p.sum()
    return float(-(p * np.log2(p)).sum())


def patch_features(patch: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> the four raw cues, in ``FEATURES`` order."""
    if patch.ndim != 3 or patch.shape[2] != 3 or patch.dtype != np.uint8:
        raise ValueError(f"patch must be HxWx3 uint8, got {patch.shape} {patch.dtype}")
    rgb = patch.astype(np.float64)
    luma = rgb @ np.array([0.299, 0.587, 0.114])
    ent = _entropy(np.bincount(np.clip(luma, 0, 255).astype(np.int64).ravel(), minlength=256))
    contrast = float(luma.std())
    q = patch.astype(np.int64) >> 5  # 8 levels per channel
    colour = _entropy(
        np.bincount((q[..., 0] * 64 + q[..., 1] * 8 + q[..., 2]).ravel(), minlength=512)
    )
    rf = np.diff(luma, axis=1)
    cf = np.diff(luma, axis=0)
    sf = float(np.sqrt(np.mean(rf**2) + np.mean(cf**2)))
    return np.array([ent, contrast, colour, sf])


def fit_complexity(features: np.ndarray, share_ninth: float, share_half: float) -> ComplexityModel:
    """Fit normalisers and thresholds on (N, 4) training-patch features.

    The thresholds are score quantiles: the simplest ``share_ninth`` of the patches get
    ``1_9`` and the busiest ``share_half`` get ``1_2``.
    """
    assert features.ndim == 2 and features.shape[1] == 4, features.shape
    low = np.percentile(features, 1, axis=0)
    high = np.percentile(features, 99, axis=0)
    norm = np.clip((features - low) / np.maximum(high - low, 1e-9), 0, 1).mean(axis=1)
    t0, t1 = np.quantile(norm, [share_ninth, 1.0 - share_half])
    return ComplexityModel(
        low=tuple(float(v) for v in low),  # type: ignore[arg-type]
        high=tuple(float(v) for v in high),  # type: ignore[arg-type]
        thresholds=(float(t0), float(t1)),
    )
