"""Dropped packets in words: the summary's counts by reason and, when no picture arrived,
the one line that says what most likely went wrong (the receiver counts every drop by
reason, so a wrong key or another model is never silent)."""

from __future__ import annotations

DROP_WORDS = {
    "late": "arrived after their frame was closed",
    "fec": "tier-0 parity that could not repair",
    "index-entry": "index entries that failed to decode",
}

# What packets dropped for a reason were, and the likely fix when every picture was lost
# to it; "{message}" is the receiver's newest message for the reason.
MISMATCHES = {
    "auth": ("failed authentication", "wrong --key, or a key on one side only?"),
    "model": ("were for another model", "{message}: use the same --model on both sides"),
    "version": ("were of another wire version", "{message}: run one hfstream version on both"),
    "magic": ("were not hfstream packets", "does another program send to this port?"),
    "session": ("belonged to a session this receiver does not follow", "{message}"),
    "replay": ("were replayed", "each packet counts once"),
}


def drop_counts(drops: dict[str, int]) -> str:
    """The summary's line of drops by reason."""
    if not drops:
        return "packets dropped: none (lost packets never arrive, so they are not counted here)"
    return "packets dropped: " + ", ".join(
        f"{n} {k} ({DROP_WORDS.get(k, 'malformed')})" for k, n in drops.items()
    )


def why_no_picture(drops: dict[str, int], messages: dict[str, str]) -> str | None:
    """One line naming the reason most packets were dropped for, and its likely fix; None
    when none was dropped (then none arrived, or too few to decode)."""
    if not drops:
        return None
    reason, n = max(drops.items(), key=lambda item: item[1])
    total = sum(drops.values())
    message = messages.get(reason, "")
    what, fix = MISMATCHES.get(
        reason, (f"were dropped as {reason}", message or DROP_WORDS.get(reason, "malformed"))
    )
    return f"no picture arrived: {n} of {total} packets {what}: {fix.format(message=message)}"
