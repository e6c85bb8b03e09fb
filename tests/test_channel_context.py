"""The channel-wise context model over the hyperprior (``codec.channel_context``)."""

from __future__ import annotations

import pytest
import torch

from hfstream.codec.channel_context import ChannelContext, ChannelContextConfig, symbol_bits


def _terms(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    means = 5 * torch.randn(6, 16, 4, 4, generator=gen)
    scales = 0.2 + 3 * torch.rand(6, 16, 4, 4, generator=gen)
    symbols = torch.round(scales * torch.randn(6, 16, 4, 4, generator=gen))
    return symbols, means, scales


def test_symbol_bits_are_the_streams_own_estimate(codec):
    symbols, means, scales = _terms()
    conditional = codec.continuous.gaussian_conditional
    likelihood = conditional.likelihood_lower_bound(
        conditional._likelihood(symbols + means, scales, means=means)
    )
    expected = -torch.log2(likelihood).flatten(1).sum(1)
    assert torch.allclose(symbol_bits(symbols, torch.zeros_like(means), scales), expected)


def test_an_untrained_context_model_is_the_hyperprior():
    symbols, means, scales = _terms()
    context = ChannelContext(ChannelContextConfig(m=16, slices=4, width=8))
    offsets, out_scales = context(symbols, means, scales)
    assert torch.equal(offsets, torch.zeros_like(means)) and torch.equal(out_scales, scales)
    with pytest.raises(ValueError, match="do not divide"):
        ChannelContext(ChannelContextConfig(m=16, slices=3))


def test_a_slice_reads_only_the_slices_before_it_and_training_saves_bits():
    symbols, means, scales = _terms()
    context = ChannelContext(ChannelContextConfig(m=16, slices=4, width=8))
    for net in context.nets:  # away from the zero start
        torch.nn.init.normal_(net[-1].weight, std=0.1)
    offsets, _ = context(symbols, means, scales)
    later = symbols.clone()
    later[:, 8:] += 3  # slices 2 and 3 change
    moved, _ = context(later, means, scales)
    assert torch.equal(moved[:, :8], offsets[:, :8])
    assert torch.equal(moved[:, 8:12], offsets[:, 8:12])
    assert not torch.equal(moved[:, 12:], offsets[:, 12:])
    # A few steps on these patches give their symbols fewer bits.
    context = ChannelContext(ChannelContextConfig(m=16, slices=4, width=8))
    opt = torch.optim.Adam(context.parameters(), lr=1e-2)
    with torch.no_grad():
        before = float(symbol_bits(symbols, *context(symbols, means, scales)).mean())
    for _ in range(30):
        loss = symbol_bits(symbols, *context(symbols, means, scales)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        assert float(symbol_bits(symbols, *context(symbols, means, scales)).mean()) < before
