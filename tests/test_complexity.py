import numpy as np
import pytest

from hfstream.codec.complexity import ComplexityModel, fit_complexity, patch_features
from hfstream.codec.schedules import Schedule


def _patches():
    rng = np.random.default_rng(0)
    flat = np.full((256, 256, 3), 120, np.uint8)
    ramp = np.repeat(np.linspace(0, 255, 256, dtype=np.uint8)[None, :, None], 256, 0).repeat(3, 2)
    noise = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    return flat, ramp, noise


def test_features_order_simple_to_busy():
    flat, ramp, noise = _patches()
    f_flat, f_ramp, f_noise = (patch_features(p) for p in (flat, ramp, noise))
    assert f_flat.tolist() == [0.0, 0.0, 0.0, 0.0]
    # Noise is busier than a ramp in colour and in frequency; a full ramp has more contrast.
    assert f_noise[2] > f_ramp[2] and f_noise[3] > f_ramp[3]
    assert f_ramp[1] > f_noise[1]
    assert f_ramp[0] == pytest.approx(8.0, abs=0.5)  # nearly all 256 grey levels, equally


def test_fitted_thresholds_split_the_training_set_as_asked():
    rng = np.random.default_rng(1)
    feats = rng.random((5000, 4)) * [8, 80, 9, 40]
    model = fit_complexity(feats, share_ninth=0.5, share_half=0.1)
    scores = np.array(
        [
            np.mean(np.clip((f - model.low) / (np.array(model.high) - model.low), 0, 1))
            for f in feats
        ]
    )
    sched = [model.schedule_for(s) for s in scores]
    assert sched.count(Schedule.NINTH) / len(sched) == pytest.approx(0.5, abs=0.01)
    assert sched.count(Schedule.HALF) / len(sched) == pytest.approx(0.1, abs=0.01)


def test_score_is_clipped_to_unit_interval():
    model = ComplexityModel(low=(0, 0, 0, 0), high=(1, 1, 1, 1), thresholds=(0.3, 0.7))
    flat, _, noise = _patches()
    assert model.score(flat) == 0.0
    assert model.score(noise) == 1.0
    assert model.schedule_for(0.0) is Schedule.NINTH
    assert model.schedule_for(0.5) is Schedule.QUARTER
    assert model.schedule_for(1.0) is Schedule.HALF


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="uint8"):
        patch_features(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="increasing"):
        ComplexityModel.from_dict({"low": [0] * 4, "high": [1] * 4, "thresholds": [0.8, 0.2]})
    with pytest.raises(ValueError, match="4 low"):
        ComplexityModel.from_dict({"low": [0] * 3, "high": [1] * 4, "thresholds": [0.2, 0.8]})
