"""Bytes per frame of a stream held to a steady rate, as a video encoder's rate control
shares them: an intra frame may spend several frames' budgets, which the predicted
frames after it pay back, and a frame that leaves bytes unspent leaves them to the
next ones.

Why an intra frame gets more: every predicted frame after it starts from its picture and
only refines it, so the bytes it gets are worth those of several predicted frames
(VP8's and H.264's real-time encoders give their first key frame 3 to 9 frames' budgets
on the project's clips). A debt is repaid by a share of it per frame, so the frames
right after a key frame still get most of their budget, and the stream's bytes stay
within the rate over a few seconds. The latency this adds (a large frame takes longer to
send at the paced rate) is the same trade these encoders make.
"""

from __future__ import annotations

from dataclasses import dataclass

KEY_SHARE = 6.0  #: an intra frame's budget, in frames' budgets (less any debt left)
#: A live sender's intra frames borrow at most this: a larger one takes longer to code and
#: to send, and every frame behind it waits (at 768x512 on 2 cores, 6 frames' budgets
#: showed 9-10 of 132 frames at p95 3.6-4.5 s, 4 showed 13 at 2.4 s).
LIVE_KEY_SHARE = 4.0
REPAY_FRAMES = 8  #: a debt is paid back by 1/REPAY_FRAMES of it a frame
SAVE_FRAMES = 1.0  #: unspent bytes kept for later frames, at most this many frames' budgets
MIN_SHARE = 0.25  #: a predicted frame gets at least this share of its budget
#: Resends of a frame's lost tier 0 may overrun its budget by this many frames' budgets,
#: repaid as an intra frame's loan is: a lost packet of a predicted frame that is not
#: resent loses the whole frame and the reference of the frames after it, which costs
#: far more than the bytes (as WebRTC's NACK resends go on top of the encoder's rate).
RESEND_CREDIT = 1.0


@dataclass
class FrameBudgets:
    """The budget of each frame in turn (``budget``, then ``spent`` with what it sent).
    ``balance``: bytes saved (positive) or owed (negative) against the rate so far.
    A stream of intra frames alone gains nothing by borrowing: give it ``key_share=1``."""

    key_share: float = KEY_SHARE
    balance: float = 0.0

    def __post_init__(self) -> None:
        if not self.key_share >= 1:
            raise ValueError(f"key_share must be at least 1, got {self.key_share}")

    def budget(self, per_frame: float, *, intra: bool, frames_left: int | None = None) -> float:
        """Bytes the next frame may spend when the rate allows ``per_frame`` a frame.
        ``frames_left`` (this one included): a stream that ends (a clip) borrows no more
        than the frames left can repay, and repays within them."""
        if not per_frame > 0:
            raise ValueError(f"per_frame must be positive, got {per_frame}")
        if frames_left is not None and frames_left < 1:
            raise ValueError(f"frames_left must be at least 1, got {frames_left}")
        saved = max(0.0, self.balance)
        debt = min(0.0, self.balance)
        over = REPAY_FRAMES if frames_left is None else min(REPAY_FRAMES, frames_left)
        repaying = max(MIN_SHARE * per_frame, per_frame + debt / over)
        if not intra:
            return saved + repaying
        borrowed = self.key_share * per_frame + debt  # up to key_share frames' budgets
        if frames_left is not None:
            repayable = (frames_left - 1) * (1 - MIN_SHARE) * per_frame
            borrowed = min(borrowed, per_frame + debt + repayable)
        return saved + max(repaying, borrowed)

    def spent(self, per_frame: float, sent: float) -> None:
        """The frame just planned sent ``sent`` bytes of a rate of ``per_frame``."""
        self.balance = min(self.balance + per_frame - sent, SAVE_FRAMES * per_frame)

    def resend_credit(self, per_frame: float, *, frames_left: int | None = None) -> float:
        """Bytes the next frame's resends of lost tier 0 may spend beyond its budget
        (``RESEND_CREDIT`` frames' budgets), as long as the debt stays within what an
        intra frame may borrow and, with ``frames_left`` (this one included), within
        what the frames left can repay."""
        debt = min(0.0, self.balance)
        credit = min(RESEND_CREDIT * per_frame, self.key_share * per_frame + debt)
        if frames_left is not None:
            credit = min(credit, (frames_left - 1) * (1 - MIN_SHARE) * per_frame + debt)
        return max(0.0, credit)

    def planned_credit(
        self, per_frame: float, *, mtu: int, frames_left: int | None = None
    ) -> float:
        """The part of ``resend_credit`` the next frame's plan counts as its room for
        resends (``Channel.resend_credit``): all of it where the rate a frame fits one
        packet of ``mtu`` bytes, none otherwise.

        Where a frame is one packet, one loss loses the whole frame and the reference of
        the frames after it, and parity would double the frame: the plan spends its room
        on tier 0 and leaves the resends to the credit. Where frames are several packets,
        the plan keeps its own room (or parity) and the credit resends only what that
        leaves unprotected: counting it there, every frame's resends came out of the
        frames after it and each lost packet delayed its frame's acknowledgement (2.2 dB
        lost on bigbuckbunny at 20 %, docs/notebook/video.md)."""
        if per_frame > mtu:
            return 0.0
        return self.resend_credit(per_frame, frames_left=frames_left)
