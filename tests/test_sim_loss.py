import numpy as np
import pytest

from sim.loss import Bernoulli, GilbertElliott, Pattern


def _runs(losses):
    bursts, n = [], 0
    for x in losses:
        if x:
            n += 1
        elif n:
            bursts.append(n)
            n = 0
    if n:
        bursts.append(n)
    return bursts


def test_bernoulli_rate_and_seed():
    a = [Bernoulli(0.2, np.random.default_rng(1)).lost() for _ in range(10)]
    m1, m2 = Bernoulli(0.2, np.random.default_rng(1)), Bernoulli(0.2, np.random.default_rng(1))
    assert [m1.lost() for _ in range(1000)] == [m2.lost() for _ in range(1000)]
    m = Bernoulli(0.2, np.random.default_rng(2))
    assert np.mean([m.lost() for _ in range(100_000)]) == pytest.approx(0.2, rel=0.03)
    assert len(a) == 10
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        Bernoulli(1.5, np.random.default_rng())


@pytest.mark.parametrize("loss,burst", [(0.05, 2.0), (0.2, 4.0)])
def test_gilbert_elliott_matches_its_formulas_over_a_million_packets(loss, burst):
    ge = GilbertElliott.from_rate(loss, burst, np.random.default_rng(7))
    assert ge.steady_state_loss == pytest.approx(loss)
    assert ge.mean_burst == pytest.approx(burst)
    losses = [ge.lost() for _ in range(1_000_000)]
    assert np.mean(losses) == pytest.approx(loss, rel=0.05)
    assert np.mean(_runs(losses)) == pytest.approx(burst, rel=0.05)


def test_gilbert_elliott_general_formula():
    ge = GilbertElliott(p=0.1, r=0.3, k=0.95, h=0.4, rng=np.random.default_rng(3))
    expected = 0.05 * 0.3 / 0.4 + 0.6 * 0.1 / 0.4
    assert ge.steady_state_loss == pytest.approx(expected)
    assert np.mean([ge.lost() for _ in range(300_000)]) == pytest.approx(expected, rel=0.05)


def test_pattern_is_cyclic():
    p = Pattern([False, True])
    assert [p.lost() for _ in range(5)] == [False, True, False, True, False]
    with pytest.raises(ValueError):
        Pattern([])
