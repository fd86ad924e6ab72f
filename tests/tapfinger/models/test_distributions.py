"""LeanCategorical gives torch's Categorical numbers: log-probs, entropies and the same samples."""

from __future__ import annotations

import torch
from torch.distributions import Categorical

from tapfinger.models.distributions import LeanCategorical
from tapfinger.models.network import MASKED


def test_same_numbers_and_samples_as_torch_categorical() -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 9, generator=gen) * 3
    mask = torch.rand(64, 9, generator=gen) > 0.4
    mask[:, 0] = True
    logits = logits.masked_fill(~mask, MASKED)
    ours, ref = LeanCategorical(logits), Categorical(logits=logits)
    torch.testing.assert_close(ours.logits, ref.logits)
    torch.testing.assert_close(ours.probs, ref.probs)
    torch.testing.assert_close(ours.entropy(), ref.entropy())
    assert torch.isfinite(ours.entropy()).all()
    assert (ours.probs[~mask] == 0).all()
    torch.manual_seed(3)
    a = ours.sample()
    torch.manual_seed(3)
    b = ref.sample()
    assert torch.equal(a, b) and mask[torch.arange(64), a].all()
    torch.testing.assert_close(ours.log_prob(a), ref.log_prob(a))
