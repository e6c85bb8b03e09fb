import numpy as np
import pytest

from hfstream.codec.schedules import (
    Schedule,
    kept_mask,
    kept_positions,
    withheld_positions,
)

EXPECTED_KEPT = {"0": 0, "1_1": 256, "1_2": 128, "1_4": 64, "1_9": 36, "1_16": 16}


@pytest.mark.parametrize("label,count", EXPECTED_KEPT.items())
def test_exact_kept_counts(label, count):
    s = Schedule.parse(label)
    assert int(kept_mask(s).sum()) == count
    assert len(kept_positions(s)) == count
    assert len(withheld_positions(s)) == 256 - count
    assert set(kept_positions(s)).isdisjoint(withheld_positions(s))


def test_fractions_of_the_lattices():
    assert kept_mask(Schedule.HALF).mean() == 0.5
    assert kept_mask(Schedule.QUARTER).mean() == 0.25
    assert kept_mask(Schedule.SIXTEENTH).mean() == 1 / 16
    assert kept_mask(Schedule.NINTH).mean() == 36 / 256


@pytest.mark.parametrize("label,radius", [("1_2", 1), ("1_4", 1), ("1_9", 1), ("1_16", 2)])
def test_every_withheld_index_has_a_close_kept_neighbour(label, radius):
    kept = np.argwhere(kept_mask(Schedule.parse(label)))
    for r, c in np.argwhere(~kept_mask(Schedule.parse(label))):
        assert np.abs(kept - [r, c]).max(axis=1).min() <= radius


def test_wire_ids_are_fixed():
    assert [int(s) for s in Schedule] == [0, 1, 2, 4, 9, 16]
    assert Schedule.parse("1_9") is Schedule.NINTH
    assert Schedule.parse(Schedule.HALF) is Schedule.HALF


def test_bad_label_names_the_choices():
    with pytest.raises(ValueError, match=r'Invalid schedule "1_3", should be one of 0, 1_1'):
        Schedule.parse("1_3")


def test_masks_are_read_only():
    with pytest.raises(ValueError):
        kept_mask(Schedule.QUARTER)[0, 0] = False
