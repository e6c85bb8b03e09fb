"""Rung allocation: the quality floor and the byte budget."""

import numpy as np
import pytest

from hfstream.codec.allocation import allocate_rungs, floor_rungs

# Three patches, four rungs: bits grow and error falls with the rung. Patch 2 is dark and
# flat (little signal), so a small error already hides it.
BITS = np.array([[100, 200, 400, 800], [100, 200, 400, 800], [50, 90, 170, 330]], float)
ERROR = np.array([[40, 20, 10, 5], [80, 30, 12, 6], [4, 1, 0.5, 0.3]], float)
SIGNAL = np.array([400.0, 600.0, 5.0])


def test_floor_gives_dark_patches_the_bits_they_need():
    assert floor_rungs(ERROR, SIGNAL, 10.0).tolist() == [0, 1, 2]
    # Unreachable floor: the top rung.
    assert floor_rungs(ERROR, SIGNAL, 60.0).tolist() == [3, 3, 3]
    chosen = allocate_rungs(BITS, ERROR, SIGNAL, base_rung=0, floor_db=10.0)
    assert chosen.tolist() == [0, 1, 2]


def test_budget_is_spent_where_it_removes_most_error():
    chosen = allocate_rungs(BITS, ERROR, SIGNAL, budget_bits=700)
    assert BITS[np.arange(3), chosen].sum() <= 700
    # Patch 1 gains most per bit (80 -> 30 for 100 bits), then patch 0 or 1 again.
    assert chosen[1] >= 1
    more = allocate_rungs(BITS, ERROR, SIGNAL, budget_bits=2000)
    assert BITS[np.arange(3), more].sum() <= 2000
    assert (more >= chosen).all() and more.sum() > chosen.sum()
    everything = allocate_rungs(BITS, ERROR, SIGNAL, budget_bits=1e9)
    assert everything.tolist() == [3, 3, 3]


def test_a_budget_below_the_floor_lowers_the_cheapest_harm_first():
    chosen = allocate_rungs(BITS, ERROR, SIGNAL, base_rung=3, budget_bits=1000)
    assert BITS[np.arange(3), chosen].sum() <= 1000
    tiny = allocate_rungs(BITS, ERROR, SIGNAL, base_rung=3, budget_bits=10)
    assert tiny.tolist() == [0, 0, 0]  # cannot fit: everything at the lowest rung


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="Invalid base rung 4"):
        allocate_rungs(BITS, ERROR, SIGNAL, base_rung=4)
    with pytest.raises(ValueError, match="Invalid budget"):
        allocate_rungs(BITS, ERROR, SIGNAL, budget_bits=0)
    with pytest.raises(ValueError, match="tables must be"):
        allocate_rungs(BITS, ERROR[:2], SIGNAL)


def _greedy_on_arrays(bits, error, chosen, budget_bits):
    """The allocation's two phases as first written, on whole arrays each step: the
    heap version must choose the very same rungs."""
    rungs, p = bits.shape[1], np.arange(bits.shape[0])
    chosen = chosen.copy()
    total = bits[p, chosen].sum()
    while total > budget_bits and (chosen > 0).any():
        down = np.maximum(chosen - 1, 0)
        saved = bits[p, chosen] - bits[p, down]
        harm = (error[p, down] - error[p, chosen]) / np.maximum(saved, 1e-9)
        harm[chosen == 0] = np.inf
        k = int(np.argmin(harm))
        total -= saved[k]
        chosen[k] -= 1
    while True:
        up = np.minimum(chosen + 1, rungs - 1)
        extra = bits[p, up] - bits[p, chosen]
        gain = (error[p, chosen] - error[p, up]) / np.maximum(extra, 1e-9)
        gain[(chosen == rungs - 1) | (total + extra > budget_bits) | (gain <= 0)] = -np.inf
        k = int(np.argmax(gain))
        if not np.isfinite(gain[k]):
            return chosen
        total += extra[k]
        chosen[k] += 1


def test_the_heap_allocation_chooses_what_the_whole_array_greedy_does():
    rng = np.random.default_rng(5)
    for trial in range(300):
        patches, rungs = int(rng.integers(1, 40)), int(rng.integers(2, 8))
        bits = np.cumsum(rng.uniform(0, 400, (patches, rungs)), axis=1)
        error = np.cumsum(rng.uniform(0, 1, (patches, rungs))[:, ::-1], axis=1)[:, ::-1]
        if trial % 3 == 0:  # ties, flat steps and a rung that costs no more bits
            bits, error = np.round(bits, -2), np.round(error, 1)
        signal = np.ones(patches)
        start = rng.integers(0, rungs, patches)
        budget = float(rng.uniform(0.2, 1.2) * bits[np.arange(patches), start].sum() + 1)
        want = _greedy_on_arrays(bits, error, start, budget)
        got = allocate_rungs(bits, error, signal, budget_bits=budget, start=start)
        assert got.tolist() == want.tolist(), trial
