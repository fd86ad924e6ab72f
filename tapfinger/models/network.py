"""TapFinger actor-critic: heterogeneous graph attention, a pointer head, masked allocation heads.

DESIGN §5.2 and the paper (arXiv 2302.00571 §IV): a graph of clusters, pending tasks and running
tasks is encoded by HGT or HAN attention layers; a pointer (attention) head picks one of the
agent's pending tasks or the no-op; allocation heads then pick the CPU amount and, conditioned on
it, the GPU amount, each masked by the env's task-conditional masks. In multi-task mode the
pointer decodes a sequence of starts, with the masks updated along it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from envs.observation import Dims
from tapfinger.config import ModelConfig
from tapfinger.graph import METADATA, build_graph_batch
from tapfinger.models.dense_hgt import DenseGraph, DenseHGTConv
from tapfinger.models.distributions import LeanCategorical
from tapfinger.models.han import PerGraphHANConv

#: Largest batch that runs HGT densely: the dense layer wins on the small batches of acting
#: (one round, a few envs), PyG's sparse message passing on the large ones of an update, where
#: the padded attention of the dense layer does several times the work (benchmarks/
#: train_throughput.py times both). Both compute the same function (tested).
DENSE_HGT_MAX_BATCH = 32

#: Logit given to masked choices: finite, so probabilities are exactly 0 and entropies never NaN.
MASKED = -1e9


def masked_logits(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Logits with invalid choices pushed to a large negative value (never -inf)."""
    return logits.masked_fill(~mask, MASKED)


def greedy_task(logp: torch.Tensor, must_start: torch.Tensor | None = None) -> torch.Tensor:
    """Greedy pointer choice from log-probabilities [B, A]: idle only if the no-op outweighs
    starting any task at all.

    A plain argmax idles whenever the no-op beats each task alone, even when most of the mass
    is on starting something (0.3 against five tasks of 0.14), and a greedy agent can then idle
    forever. Deciding "start or not" by total mass first, then the likeliest task, is the mode
    of that two-step choice. Rows flagged in ``must_start`` start their likeliest valid task
    whatever the no-op's mass (log-probabilities, not probabilities, so that a valid task whose
    probability underflows to 0 is still told apart from a masked one); a row with no valid task
    still idles.
    """
    best = logp[:, 1:].argmax(-1) + 1
    start = torch.logsumexp(logp[:, 1:], -1) > logp[:, 0]
    if must_start is not None:
        start = start | (must_start & (logp[:, 1:].max(-1).values > MASKED / 2))
    return torch.where(start, best, torch.zeros_like(best))


def changeable(cpu_mask: torch.Tensor, gpu_mask: torch.Tensor, alloc: torch.Tensor) -> torch.Tensor:
    """bool [B, A]: the masks allow an allocation other than ``alloc`` ([B, A, 2], each
    choice's current (cpu, gpu)); the masks are per-resource, so any allowed CPU level goes
    with any allowed GPU level."""
    cur_c = torch.nn.functional.one_hot(alloc[..., 0], cpu_mask.shape[-1]).bool()
    cur_g = torch.nn.functional.one_hot(alloc[..., 1], gpu_mask.shape[-1]).bool()
    other_cpu = (cpu_mask & ~cur_c).any(-1) & gpu_mask.any(-1)
    other_gpu = (cpu_mask & cur_c).any(-1) & (gpu_mask & ~cur_g).any(-1)
    return other_cpu | other_gpu


def mlp(sizes: list[int], out_gain: float = 1.0) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        lin = nn.Linear(sizes[i], sizes[i + 1])
        nn.init.orthogonal_(lin.weight, gain=math.sqrt(2) if i < len(sizes) - 2 else out_gain)
        nn.init.zeros_(lin.bias)
        layers.append(lin)
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


@dataclass
class Decision:
    """Actions and their log-probabilities for a batch of B observations."""

    actions: torch.Tensor
    """long [B, 3 * max_starts]: (task, cpu, gpu) per start, zeros after the first no-op."""
    logp_task: torch.Tensor
    """float [B, max_starts]: log-probability of each pointer choice."""
    logp_alloc: torch.Tensor
    """float [B, max_starts]: log-probability of each (cpu, gpu) choice (0 for no-ops)."""
    entropy: torch.Tensor
    """float [B]: entropy of the pointer plus the allocation heads, summed over the starts."""
    task_probs: torch.Tensor
    """float [B, A]: pointer distribution of the first start (for the Bayes conflict rule)."""
    active: torch.Tensor
    """bool [B, max_starts]: the start was decoded (the sequence had not stopped before it)."""


class Encoder(nn.Module):
    """Node embeddings of clusters, pending and running tasks, by graph attention or an MLP.

    :meth:`forward` returns per-slot embeddings of the padded observation: clusters
    ``[B, N, H]``, pending slots ``[B, W, H]`` and running slots ``[B, R, H]``, zero on padded
    slots. HGT runs densely on the padded tensors (:class:`DenseHGTConv`) unless
    ``model.fused`` is false, then as PyG message passing on the batched graph; HAN always runs
    on the graph; the MLP ablation needs no graph.
    """

    def __init__(self, dims: Dims, feat: dict[str, int], cfg: ModelConfig) -> None:
        super().__init__()
        h = cfg.hidden
        self.backbone = cfg.backbone
        self.dense = cfg.backbone == "mlp" or (cfg.backbone == "hgt" and cfg.fused)
        self.dense_max_batch = DENSE_HGT_MAX_BATCH
        self.fused = cfg.backbone == "hgt" and cfg.fused
        self.inp = nn.ModuleDict({k: nn.Linear(v, h) for k, v in feat.items()})
        if cfg.backbone == "mlp":
            # Ablation without a graph network: each task sees its own features and its agent's
            # cluster only, never the other clusters or tasks.
            # Clusters keep their input embedding and only one norm layer is applied, so no
            # cluster mixer and no norms beyond the first (they would never get a gradient).
            self.mix = nn.ModuleDict({k: mlp([2 * h, h, h]) for k in ("task", "running")})
            self.convs = nn.ModuleList()
        else:
            # HAN: semantic attention per observation graph, not over the whole batch.
            conv = DenseHGTConv if cfg.backbone == "hgt" else PerGraphHANConv
            self.convs = nn.ModuleList(
                [conv(h, h, METADATA, heads=cfg.heads) for _ in range(cfg.layers)]
            )
        depth = 1 if cfg.backbone == "mlp" else cfg.layers
        self.norms = nn.ModuleList(
            [nn.ModuleDict({k: nn.LayerNorm(h) for k in feat}) for _ in range(depth)]
        )

    def forward(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """``(clusters [B, N, H], pending slots [B, W, H], running slots [B, R, H])``."""
        if not self.dense or (
            self.backbone == "hgt" and obs["clusters"].shape[0] > self.dense_max_batch
        ):
            return self._graph_forward(obs)
        x = {
            "cluster": torch.relu(self.inp["cluster"](obs["clusters"])),
            "task": torch.relu(self.inp["task"](obs["pending"])),
            "running": torch.relu(self.inp["running"](obs["running"])),
        }
        if self.backbone == "mlp":
            rows = torch.arange(x["cluster"].shape[0], device=x["cluster"].device)
            me = x["cluster"][rows, obs["agent"].to(torch.uint8).argmax(-1)].unsqueeze(1)
            out = {
                "cluster": x["cluster"],
                **{
                    k: self.mix[k](torch.cat([x[k], me.expand(-1, x[k].shape[1], -1)], -1))
                    for k in ("task", "running")
                },
            }
            x = {k: self.norms[0][k](x[k] + torch.relu(out[k])) for k in x}
        else:
            graph = DenseGraph.from_observations(obs)
            h = torch.cat([x["cluster"], x["task"], x["running"]], dim=1)
            for conv, norm in zip(self.convs, self.norms):
                h = h + torch.relu(conv.dense_forward(h, graph))
                h = torch.cat([norm[t](p) for t, p in zip(graph.sizes, graph.split(h))], dim=1)
            x = dict(zip(graph.sizes, graph.split(h)))
        return (
            x["cluster"],
            x["task"] * obs["pending_mask"].unsqueeze(-1).to(x["task"].dtype),
            x["running"] * obs["running_mask"].unsqueeze(-1).to(x["running"].dtype),
        )

    def _graph_forward(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        graph = build_graph_batch(obs)
        data = graph.data
        x = {k: torch.relu(self.inp[k](data[k].x)) for k in self.inp}
        edges = {et: data[et].edge_index for et in data.edge_types}
        batches = {k: data[k].batch for k in x}
        for conv, norm in zip(self.convs, self.norms):
            if isinstance(conv, PerGraphHANConv):
                out = conv(x, edges, batch_dict=batches, num_graphs=graph.num_graphs)
            elif self.fused:
                out = conv.sparse_forward(x, edges)
            else:
                out = conv(x, edges)
            x = {
                k: norm[k](x[k] + torch.relu(out[k])) if out.get(k) is not None else x[k] for k in x
            }
        b, n = obs["clusters"].shape[:2]
        return (
            x["cluster"].view(b, n, -1),
            gather_slots(x["task"], graph.task_slot_index),
            gather_slots(x["running"], graph.running_slot_index),
        )


def gather_slots(nodes: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Per-slot rows of node embeddings ``[num_nodes, H]`` by a ``[B, S]`` node index (-1: zero)."""
    safe = index.clamp(min=0)
    if nodes.shape[0] == 0:
        return torch.zeros(*index.shape, nodes.shape[-1], dtype=nodes.dtype, device=nodes.device)
    out = nodes[safe]
    return out * (index >= 0).unsqueeze(-1).to(out.dtype)


class TapFingerNet(nn.Module):
    """Actor (pointer + allocation heads) and critic for one scenario's shapes."""

    def __init__(self, dims: Dims, feat: dict[str, int], state_size: int, cfg: ModelConfig):
        super().__init__()
        self.dims = dims
        self.cfg = cfg
        h = cfg.hidden
        self.encoder = Encoder(dims, feat, cfg)
        # Small output layers: the pointer starts near uniform over the valid choices (a peaked
        # random pointer would pick the same task, or idle, from the first step on).
        self.query = mlp([2 * h, h, h], out_gain=0.1)
        self.key = nn.Linear(h, h)
        nn.init.orthogonal_(self.key.weight, gain=0.1)
        nn.init.zeros_(self.key.bias)
        self.noop_key = mlp([2 * h, h, h], out_gain=0.1)
        # Learned offset of the no-op's pointer score, starting below the tasks' so that an
        # untrained agent starts work more often than it idles.
        self.noop_bias = nn.Parameter(torch.tensor(-2.0))
        self.cpu_head = mlp([2 * h, h, dims.cpu_levels], out_gain=0.01)
        self.cpu_embed = nn.Embedding(dims.cpu_levels, h)
        self.gpu_head = mlp([3 * h, h, dims.gpu_levels], out_gain=0.01)
        self.step_embed = nn.Embedding(dims.max_starts, h)
        if cfg.critic == "central":
            self.critic = mlp([state_size + dims.clusters, 2 * h, h, 1], out_gain=1.0)
        else:
            self.critic = mlp([3 * h, 2 * h, h, 1], out_gain=1.0)

    # ------------------------------------------------------------------ encoding
    def encode(self, obs: dict[str, torch.Tensor]):
        """Embeddings: the agent's query context [B, 2H], the pointer keys [B, 1 + A, H] (no-op
        first) and the local critic's features [B, 3H]."""
        clusters, pending, running = self.encoder(obs)
        rows = torch.arange(clusters.shape[0], device=clusters.device)
        me = clusters[rows, obs["agent"].to(torch.uint8).argmax(-1)]
        pooled = clusters.mean(dim=1)
        context = torch.cat([me, pooled], dim=-1)
        tasks = torch.cat([pending, running], dim=1) if self.dims.elastic else pending
        keys = torch.cat([self.noop_key(context).unsqueeze(1), tasks], dim=1)
        local = torch.cat([me, self._masked_mean(pending, obs["pending_mask"]), pooled], dim=-1)
        return context, keys, local

    @staticmethod
    def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.unsqueeze(-1).to(x.dtype)
        return (x * m).sum(1) / m.sum(1).clamp(min=1.0)

    def value(self, obs: dict[str, torch.Tensor], state: torch.Tensor, local=None) -> torch.Tensor:
        """State value per observation: central (global state + which agent) or local."""
        if self.cfg.critic == "central":
            return self.critic(torch.cat([state, obs["agent"].float()], dim=-1)).squeeze(-1)
        if local is None:
            local = self.encode(obs)[2]
        return self.critic(local).squeeze(-1)

    # ------------------------------------------------------------------ decoding
    def decide(
        self,
        obs: dict[str, torch.Tensor],
        actions: torch.Tensor | None = None,
        greedy: bool = False,
        must_start: torch.Tensor | None = None,
    ) -> tuple[Decision, torch.Tensor]:
        """Sample (or score, when ``actions`` is given) the starts of a batch of observations.

        ``must_start`` ([B] bool, greedy only) makes the flagged rows start their likeliest valid
        task whatever the no-op's mass (the round-level no-deadlock rule of ``act_batch``).
        Returns the decision and the local critic features.
        """
        context, keys, local = self.encode(obs)
        d = self.dims
        b = context.shape[0]
        starts = d.max_starts
        task_mask = obs["task_mask"].clone()
        cpu_mask = obs["cpu_mask"].clone()
        gpu_mask = obs["gpu_mask"].clone()
        free = obs["free"].clone()
        demand = obs["demand"]
        dev = context.device
        levels_c = torch.arange(d.cpu_levels, device=dev)
        levels_g = torch.arange(d.gpu_levels, device=dev)
        out_actions = torch.zeros(b, 3 * starts, dtype=torch.long, device=dev)
        logp_task = torch.zeros(b, starts, device=dev)
        logp_alloc = torch.zeros(b, starts, device=dev)
        entropy = torch.zeros(b, device=dev)
        active = torch.zeros(b, starts, dtype=torch.bool, device=dev)
        alive = torch.ones(b, dtype=torch.bool, device=dev)
        first_probs = None
        scale = 1.0 / math.sqrt(self.cfg.hidden)
        k = self.key(keys)
        rows = torch.arange(b, device=dev)
        # Elastic mode: addressing a running task must change its allocation (keeping it is the
        # no-op's job), so the heads never spend a choice on the task's current (cpu, gpu); and
        # a task whose allocation changed in this slot (started, resized, paused) is left alone
        # until the next, so the rounds of a slot cannot resize back and forth.
        resize_rows = torch.arange(d.actions, device=dev) > d.window if d.elastic else None
        current = obs["alloc"] if d.elastic else None
        if d.elastic:
            task_mask = task_mask & ~obs["changed"]
        for j in range(starts):
            if resize_rows is not None:
                task_mask = task_mask & (changeable(cpu_mask, gpu_mask, current) | ~resize_rows)
            q = self.query(context) + self.step_embed.weight[j]
            if self.cfg.pointer:
                scores = 10.0 * torch.tanh((k @ q.unsqueeze(-1)).squeeze(-1) * scale)
                scores = torch.cat([scores[:, :1] + self.noop_bias, scores[:, 1:]], dim=1)
            else:  # ablation: uniform over valid tasks
                scores = torch.zeros(b, keys.shape[1], device=dev)
            dist_t = LeanCategorical(masked_logits(scores, task_mask))
            if first_probs is None:
                first_probs = dist_t.probs
            if actions is not None:
                task = actions[:, 3 * j]
            elif greedy and self.cfg.pointer:
                task = greedy_task(dist_t.logits, must_start if j == 0 else None)
            else:
                task = dist_t.sample()
            task = torch.where(alive, task, torch.zeros_like(task))
            lp_t = dist_t.log_prob(task)
            ent_t = dist_t.entropy() if self.cfg.pointer else torch.zeros(b, device=dev)
            chosen = keys[rows, task]
            ctx_task = torch.cat([chosen, context[:, : self.cfg.hidden]], dim=-1)
            cm = cpu_mask[rows, task]
            gm = gpu_mask[rows, task]
            if resize_rows is not None:
                resize = resize_rows[task]
                cur_c, cur_g = current[rows, task, 0], current[rows, task, 1]
                other_g = (gm & (levels_g[None, :] != cur_g[:, None])).any(-1)
                keep_c = (levels_c[None, :] == cur_c[:, None]) & ~other_g[:, None]
                cm = cm & ~(resize[:, None] & keep_c)
            dist_c = LeanCategorical(masked_logits(self.cpu_head(ctx_task), cm))
            if actions is not None:
                cpu = actions[:, 3 * j + 1]
            elif greedy:
                cpu = dist_c.probs.argmax(-1)
            else:
                cpu = dist_c.sample()
            if resize_rows is not None:
                keep_g = (resize & (cpu == cur_c))[:, None] & (levels_g[None, :] == cur_g[:, None])
                gm = gm & ~keep_g
            ctx_gpu = torch.cat([ctx_task, self.cpu_embed(cpu)], dim=-1)
            dist_g = LeanCategorical(masked_logits(self.gpu_head(ctx_gpu), gm))
            if actions is not None:
                gpu = actions[:, 3 * j + 2]
            elif greedy:
                gpu = dist_g.probs.argmax(-1)
            else:
                gpu = dist_g.sample()
            starting = alive & (task > 0)
            cpu = torch.where(starting, cpu, torch.zeros_like(cpu))
            gpu = torch.where(starting, gpu, torch.zeros_like(gpu))
            lp_a = dist_c.log_prob(cpu) + dist_g.log_prob(gpu)
            ent_a = dist_c.entropy() + dist_g.entropy()
            active[:, j] = alive
            logp_task[:, j] = torch.where(alive, lp_t, torch.zeros_like(lp_t))
            logp_alloc[:, j] = torch.where(starting, lp_a, torch.zeros_like(lp_a))
            entropy = entropy + torch.where(alive, ent_t, torch.zeros_like(ent_t))
            entropy = entropy + torch.where(starting, ent_a, torch.zeros_like(ent_a))
            out_actions[:, 3 * j] = task
            out_actions[:, 3 * j + 1] = cpu
            out_actions[:, 3 * j + 2] = gpu
            alive = starting
            if j + 1 < starts:
                # Masks along the sequence (envs.observation.after_start, in torch).
                free = free.clone()
                free[:, 0] -= torch.where(starting, cpu, torch.zeros_like(cpu))
                free[:, 1] -= torch.where(starting, gpu, torch.zeros_like(gpu))
                free[:, 2] -= torch.where(starting, demand[rows, task, 2], torch.zeros_like(cpu))
                cpu_mask = cpu_mask & (levels_c[None, None, :] <= free[:, 0, None, None])
                gpu_mask = gpu_mask & (levels_g[None, None, :] <= free[:, 1, None, None])
                task_mask = task_mask & cpu_mask.any(-1) & gpu_mask.any(-1)
                task_mask = task_mask & (demand[:, :, 2] <= free[:, 2:3])
                task_mask[rows, task] = task_mask[rows, task] & ~starting
                task_mask[:, 0] = True
                cpu_mask[:, 0, 0] = True
                gpu_mask[:, 0, 0] = True
        assert first_probs is not None
        decision = Decision(out_actions, logp_task, logp_alloc, entropy, first_probs, active)
        return decision, local
