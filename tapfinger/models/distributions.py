"""A lean categorical distribution for the decoding loop (same numbers as torch's ``Categorical``).

``torch.distributions.Categorical`` validates its arguments and normalises with ``logsumexp``
and a subtraction on every construction; in the decoding loop of a batch-1 decision that costs
more than the heads themselves. :class:`LeanCategorical` computes the same normalised logits
(one ``log_softmax``), the same samples from the same random stream (``torch.multinomial`` on
the probabilities, as ``Categorical.sample`` does), the same log-probabilities and entropies
(tested against ``Categorical``).
"""

from __future__ import annotations

import torch


class LeanCategorical:
    """Categorical distribution over the last dimension of ``logits`` ([B, K])."""

    def __init__(self, logits: torch.Tensor) -> None:
        self.logits = torch.log_softmax(logits, dim=-1)
        """Normalised log-probabilities [B, K]."""
        self._probs: torch.Tensor | None = None

    @property
    def probs(self) -> torch.Tensor:
        """Probabilities [B, K]."""
        if self._probs is None:
            self._probs = self.logits.exp()
        return self._probs

    def sample(self) -> torch.Tensor:
        """One draw per row [B] (``torch.multinomial``, as ``Categorical.sample``)."""
        return torch.multinomial(self.probs, 1, replacement=True).squeeze(-1)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Log-probability [B] of one choice per row."""
        return self.logits.gather(-1, value.long().unsqueeze(-1)).squeeze(-1)

    def entropy(self) -> torch.Tensor:
        """Entropy [B] (masked choices of probability 0 contribute 0)."""
        min_real = torch.finfo(self.logits.dtype).min
        return -(self.logits.clamp(min=min_real) * self.probs).sum(-1)
