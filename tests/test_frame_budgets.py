"""Frame budgets: intra frames borrow from the frames after them, which pay it back."""

from __future__ import annotations

import pytest

from hfstream.planning.frame_budgets import MIN_SHARE, REPAY_FRAMES, FrameBudgets


def test_an_intra_frame_borrows_and_the_predicted_frames_pay_it_back():
    budgets = FrameBudgets(key_share=4)
    first = budgets.budget(1000, intra=True)
    assert first == 4000
    budgets.spent(1000, first)
    assert budgets.balance == -3000
    after = budgets.budget(1000, intra=False)
    assert after == 1000 - 3000 / REPAY_FRAMES
    spent = [first]
    for _ in range(59):
        b = budgets.budget(1000, intra=False)
        assert MIN_SHARE * 1000 <= b < 1000
        budgets.spent(1000, b)
        spent.append(b)
    # Over 60 frames, within 2 % of the rate.
    assert 60_000 < sum(spent) < 60_000 * 1.02
    assert -1000 * 0.02 * 60 < budgets.balance < 0


def test_a_second_intra_frame_borrows_only_what_is_left():
    budgets = FrameBudgets(key_share=4)
    budgets.spent(1000, budgets.budget(1000, intra=True))
    second = budgets.budget(1000, intra=True)
    assert second == 1000  # 4 frames' budgets less the 3 still owed
    budgets.spent(1000, second)
    assert budgets.balance == -3000  # the debt never passes key_share - 1 frames


def test_without_borrowing_intra_frames_repay_like_the_others():
    budgets = FrameBudgets(key_share=1, balance=-800)
    assert budgets.budget(1000, intra=True) == 1000 - 800 / REPAY_FRAMES


def test_a_stream_that_ends_borrows_only_what_its_last_frames_repay():
    budgets = FrameBudgets(key_share=4)
    spent = []
    for left in (3, 2, 1):
        b = budgets.budget(1000, intra=left == 3, frames_left=left)
        budgets.spent(1000, b)
        spent.append(b)
    assert spent[0] == 1000 + 2 * 750  # two frames left to repay, down to a quarter each
    assert sum(spent) <= 3000 + 1e-9


def test_unspent_bytes_carry_to_the_next_frames_up_to_one_frame():
    budgets = FrameBudgets()
    budgets.spent(1000, 200)
    assert budgets.budget(1000, intra=False) == 1800
    budgets.spent(1000, 0)
    assert budgets.balance == 1000 and budgets.budget(1000, intra=False) == 2000


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="key_share must be at least 1"):
        FrameBudgets(key_share=0.5)
    with pytest.raises(ValueError, match="per_frame must be positive"):
        FrameBudgets().budget(0, intra=False)


def test_resends_may_overrun_a_frame_by_a_credit_that_the_next_frames_repay():
    from hfstream.planning.frame_budgets import RESEND_CREDIT

    budgets = FrameBudgets(key_share=4)
    assert budgets.resend_credit(1000) == RESEND_CREDIT * 1000
    # The debt stays within what an intra frame may borrow.
    budgets.balance = -3500
    assert budgets.resend_credit(1000) == 500
    budgets.balance = -4000
    assert budgets.resend_credit(1000) == 0
    # A clip's last frame has no frame after it to repay anything.
    assert FrameBudgets().resend_credit(1000, frames_left=1) == 0
    # What the credit spent is owed, and the next frames get less.
    budgets = FrameBudgets(key_share=4)
    budgets.spent(1000, 1000 + budgets.resend_credit(1000))
    assert budgets.budget(1000, intra=False) < 1000


def test_the_plan_counts_the_credit_only_where_a_frame_fits_one_packet():
    budgets = FrameBudgets(key_share=4)
    assert budgets.planned_credit(1000, mtu=1200) == budgets.resend_credit(1000) > 0
    assert budgets.planned_credit(1201, mtu=1200) == 0
    assert budgets.planned_credit(1000, mtu=1200, frames_left=1) == 0
