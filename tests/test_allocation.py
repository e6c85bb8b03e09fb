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
