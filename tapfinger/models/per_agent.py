"""One TapFinger network per agent (``model.shared_actor: false``)."""

from __future__ import annotations

import torch
from torch import nn

from envs.observation import Dims
from tapfinger.config import ModelConfig
from tapfinger.models.network import Decision, TapFingerNet


class PerAgentNet(nn.Module):
    """One :class:`TapFingerNet` per agent (``model.shared_actor: false``).

    A batch mixes agents; it is split by the observing agent (``obs["agent"]``), each part goes
    through that agent's network, and the results are merged back in batch order.
    """

    def __init__(self, dims: Dims, feat: dict[str, int], state_size: int, cfg: ModelConfig):
        super().__init__()
        self.dims = dims
        self.cfg = cfg
        self.nets = nn.ModuleList(
            [TapFingerNet(dims, feat, state_size, cfg) for _ in range(dims.clusters)]
        )

    def _parts(self, obs: dict[str, torch.Tensor]):
        owner = obs["agent"].float().argmax(-1)
        for i in torch.unique(owner).tolist():
            idx = torch.nonzero(owner == i).squeeze(-1)
            yield i, idx, {k: v[idx] for k, v in obs.items()}

    @staticmethod
    def _merge(b: int, parts: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        first = parts[0][1]
        out = first.new_zeros((b, *first.shape[1:]))
        for idx, value in parts:
            out = out.index_copy(0, idx, value)
        return out

    def decide(self, obs, actions=None, greedy=False, must_start=None):
        b = obs["agent"].shape[0]
        fields: dict[str, list] = {}
        locals_ = []
        for i, idx, sub in self._parts(obs):
            acts = None if actions is None else actions[idx]
            force = None if must_start is None else must_start[idx]
            decision, local = self.nets[i].decide(
                sub, actions=acts, greedy=greedy, must_start=force
            )
            for name in Decision.__dataclass_fields__:
                fields.setdefault(name, []).append((idx, getattr(decision, name)))
            locals_.append((idx, local))
        merged = Decision(**{k: self._merge(b, v) for k, v in fields.items()})
        return merged, self._merge(b, locals_)

    def encode(self, obs):
        b = obs["agent"].shape[0]
        outs: list[list] = [[], [], []]
        for i, idx, sub in self._parts(obs):
            for k, value in enumerate(self.nets[i].encode(sub)):
                outs[k].append((idx, value))
        return tuple(self._merge(b, o) for o in outs)

    def value(self, obs, state, local=None):
        b = obs["agent"].shape[0]
        parts = []
        for i, idx, sub in self._parts(obs):
            sub_local = None if local is None else local[idx]
            parts.append((idx, self.nets[i].value(sub, state[idx], sub_local)))
        return self._merge(b, parts)
