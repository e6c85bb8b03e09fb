"""The real-kernel harness: two network namespaces, nftables dropping every k-th datagram.

Skipped where namespaces or nftables cannot be used (not root, no ``ip``/``nft``)."""

import pytest

from sim.kernel import NetnsLink, kernel_support, run_kernel

WHY = kernel_support()
pytestmark = pytest.mark.skipif(WHY is not None, reason=f"kernel harness: {WHY}")


def test_every_fourth_datagram_dropped_and_frames_still_shown():
    run = run_kernel(0.25, frames=3, fps=2.0, mode="every")
    assert run.datagrams >= 8
    assert run.dropped == run.datagrams // 4  # exactly every 4th, counted by nftables
    assert run.frames_shown == 3
    assert run.psnr > 12.0  # a picture, not the grey of an undecodable frame


def test_namespaces_removed_after_use():
    import subprocess

    with NetnsLink(0.1) as link:
        names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert link.tx in names and link.rx in names
        assert link.counters() == (0, 0)
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert link.tx not in names and link.rx not in names


def test_bad_settings_refused():
    with pytest.raises(ValueError, match="loss must be"):
        NetnsLink(1.5)
    with pytest.raises(ValueError, match="Invalid loss mode"):
        NetnsLink(0.1, mode="sometimes")
