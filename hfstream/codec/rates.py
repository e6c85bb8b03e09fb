"""How an encode chooses each patch's rung of the continuous stream: one value, three kinds.

>>> codec.encode(image, rate=Fixed(3))            # every patch at rung 3 (or above, see Fixed)
>>> codec.encode(image, rate=Budget(1500))        # the frame's strings fitted to 1500 bytes
>>> codec.encode(image, rate=PerPatch((0, 2)))    # the planner's choice, patch by patch

``rate=None`` is ``Fixed()``: the model's default rung. A single-rate model has one rung
(0) and takes ``Fixed()``, ``Fixed(0)`` or ``PerPatch`` of zeros only. Torch-free."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Fixed:
    """Every patch at ``rung``, raised where a patch's thumbnail would otherwise fall
    below the quality floor (``hfstream.codec.estimates.QUALITY_FLOOR_DB``)."""

    rung: int | None = None  #: None: the model's ``default_rung``


@dataclass(frozen=True)
class Budget:
    """The frame's continuous strings fitted to ``bytes``, every patch starting from
    ``rung`` and the quality floor (see ``hfstream.codec.allocation``)."""

    bytes: int  #: for the whole frame's continuous strings, > 0
    rung: int | None = None  #: None: the model's ``default_rung``

    def __post_init__(self) -> None:
        if self.bytes <= 0:
            raise ValueError(f"Invalid continuous budget {self.bytes}, should be positive")


@dataclass(frozen=True)
class PerPatch:
    """Every patch's rung as given, row-major (the frame planner's choice); no floor."""

    rungs: tuple[int, ...]  #: one per patch of the coded (possibly scaled) frame

    def __post_init__(self) -> None:
        # Lists are welcome; the value keeps a tuple of ints (hashable, immutable).
        object.__setattr__(self, "rungs", tuple(int(r) for r in self.rungs))


RungChoice = Fixed | Budget | PerPatch
