"""HGT attention computed densely on the padded observations: PyG's ``HGTConv``, fused.

An observation graph (:mod:`tapfinger.graph`) is tiny: N clusters, at most W pending and R
running task slots. PyG's :class:`torch_geometric.nn.HGTConv` runs it as sparse message passing
over a batched union (index building, gathers, a scatter softmax per edge type): about 1 ms per
layer at batch 1. :class:`DenseHGTConv` is an ``HGTConv`` (same parameters, same ``state_dict``
keys, so checkpoints load into either) that can also run on the padded node rows directly
(:class:`DenseGraph`): HGT's relation transforms are folded into one weight per node type, and
each destination attends in one masked softmax over the sources of all its incoming edge types,
which is HGT's per-destination softmax; padded slots are never sources. Outputs of valid nodes
equal ``HGTConv.forward`` on the graph of :func:`tapfinger.graph.build_graph_batch` (tested to
float32 precision); rows of padded slots are finite and ignored by the caller.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.nn import HGTConv
from torch_geometric.utils import scatter, softmax

from tapfinger.graph import LINKS, REV_RUNS_ON, REV_VISIBLE_TO, RUNS_ON, VISIBLE_TO

#: Score of a masked (absent) edge: finite, so a node without any in-edge gets zero weights.
ABSENT = -1e9


#: Incoming edge types of each destination group, in the order their sources are concatenated.
CLUSTER_SOURCES = (VISIBLE_TO, RUNS_ON, LINKS)
TASK_SOURCES = (REV_VISIBLE_TO, REV_RUNS_ON)


@dataclass
class DenseGraph:
    """B padded observation graphs as node rows and two attention masks.

    Nodes of every observation are ordered clusters (N), pending slots (W), running slots (R),
    padded slots included. Clusters receive from pending tasks (``visible_to``), from running
    tasks (``runs_on``) and from the other clusters (``links``); pending and running tasks
    receive from clusters only (``rev_visible_to``, ``rev_runs_on``). So the layer runs two
    attentions: clusters over ``W + R + N`` sources, and all task slots over ``2N`` sources
    (every cluster once as a ``rev_visible_to`` source, once as a ``rev_runs_on`` one).

    Attributes:
        sizes: ``{node_type: slots}`` in node order.
        cluster_mask: ``[B, 1, N, W + R + N]`` bool: cluster receives from that source.
        task_mask: ``[B, 1, W + R, 2N]`` bool: task slot receives from that source.
    """

    sizes: dict[str, int]
    cluster_mask: Tensor
    task_mask: Tensor

    @classmethod
    def from_observations(cls, obs: dict[str, Tensor]) -> DenseGraph:
        """The edges of stacked observation tensors (:func:`tapfinger.graph.to_tensors`): the
        same as :func:`tapfinger.graph.build_graph_batch`'s."""
        me = obs["agent"].bool()  # [B, N] one-hot
        b, n = me.shape
        w = obs["pending"].shape[1]
        r = obs["running"].shape[1]
        visible = obs["pending_visible"].bool() & obs["pending_mask"].bool().unsqueeze(-1)
        runs_on = obs["running_mask"].bool().unsqueeze(-1) & me.unsqueeze(1)  # [B, R, N]
        links = ~torch.eye(n, dtype=torch.bool, device=me.device)
        cluster_mask = torch.cat(
            [visible.transpose(1, 2), runs_on.transpose(1, 2), links.expand(b, n, n)], dim=-1
        )
        task_mask = torch.cat(
            [F.pad(visible, (0, n)), F.pad(runs_on, (n, 0))], dim=1
        )  # rows: pending then running; columns: rev_visible_to then rev_runs_on sources
        return cls(
            sizes={"cluster": n, "task": w, "running": r},
            cluster_mask=cluster_mask.unsqueeze(1),
            task_mask=task_mask.unsqueeze(1),
        )

    def split(self, x: Tensor) -> list[Tensor]:
        """``[B, S, C]`` into its node types' ``[B, S_t, C]`` parts, in node order."""
        return list(torch.split(x, list(self.sizes.values()), dim=1))


def attend(query: Tensor, key: Tensor, value: Tensor, mask: Tensor) -> Tensor:
    """Masked multi-head attention: ``[B, Sd, H, D]`` queries over ``[B, Ss, H, D]`` sources.

    Scores are used as given (HGT's prior and scale are folded into the keys); a destination
    without any source gets zeros. Returns ``[B, Sd, H * D]``.
    """
    b, sd, h, d = query.shape
    score = query.transpose(1, 2) @ key.permute(0, 2, 3, 1)  # [B, H, Sd, Ss]
    weight = torch.softmax(score.masked_fill(~mask, ABSENT), dim=-1) * mask
    return (weight @ value.transpose(1, 2)).transpose(1, 2).reshape(b, sd, h * d)


class DenseHGTConv(HGTConv):
    """:class:`torch_geometric.nn.HGTConv` with a dense forward on padded observations.

    ``forward`` (inherited) is PyG's sparse message passing on a ``HeteroData`` batch;
    :meth:`dense_forward` computes the same layer on the ``[B, S, C]`` node rows of a
    :class:`DenseGraph`. HGT's per-edge-type key and value transforms (``k_rel``, ``v_rel``)
    and its prior (``p_rel``) are linear maps after ``kqv_lin``, so they are folded into one
    weight per node type (:meth:`composed_weights`): one matmul per node type gives its query
    and the key and value it sends along each of its outgoing edge types. Without gradients
    the folded weights are cached until a parameter changes.
    """

    #: Outgoing edge types of each node type, in the column order of its folded weight.
    OUTGOING = {
        "cluster": (LINKS, REV_VISIBLE_TO, REV_RUNS_ON),
        "task": (VISIBLE_TO,),
        "running": (RUNS_ON,),
    }

    def composed_weights(self) -> dict[str, tuple[Tensor, Tensor]]:
        """Per node type: weight ``[F (1 + 2k), C]`` and bias giving ``[Q | K_e... | V_e...]``
        for its k outgoing edge types (keys scaled by ``p_rel / sqrt(D)``)."""
        if not torch.is_grad_enabled():
            params = self.__dict__.get("_param_list")
            if params is None:  # parameters() walks the module tree: too slow per call
                params = self.__dict__["_param_list"] = list(self.parameters())
            version = tuple(p._version for p in params)
            cached = getattr(self, "_composed_cache", None)
            if cached is not None and cached[0] == version:
                return cached[1]
        heads = self.heads
        dim = self.out_channels // heads
        index = {et: i for i, et in enumerate(self.edge_types)}
        num_e = len(self.edge_types)
        k_rel = self.k_rel.weight.view(heads, num_e, dim, dim)
        v_rel = self.v_rel.weight.view(heads, num_e, dim, dim)
        out = {}
        for node_type, edges in self.OUTGOING.items():
            lin = self.kqv_lin.lins[node_type]
            c = lin.weight.shape[1]
            w = lin.weight.view(3, heads, dim, c)
            bias = lin.bias.view(3, heads, dim)
            sel = [index[et] for et in edges]
            prior = torch.stack([self.p_rel["__".join(et)][0] for et in edges]) / math.sqrt(dim)
            rk, rv = k_rel[:, sel], v_rel[:, sel]  # [H, k, D, D]
            wk = torch.einsum("hedf,hdc->ehfc", rk, w[0]) * prior.view(-1, heads, 1, 1)
            bk = torch.einsum("hedf,hd->ehf", rk, bias[0]) * prior.view(-1, heads, 1)
            wv = torch.einsum("hedf,hdc->ehfc", rv, w[2])
            bv = torch.einsum("hedf,hd->ehf", rv, bias[2])
            weight = torch.cat([w[1].reshape(-1, c), wk.reshape(-1, c), wv.reshape(-1, c)])
            out[node_type] = (
                weight,
                torch.cat([bias[1].reshape(-1), bk.reshape(-1), bv.reshape(-1)]),
            )
        if not torch.is_grad_enabled():
            self._composed_cache = (version, out)
        return out

    def dense_forward(self, x: Tensor, graph: DenseGraph) -> Tensor:
        """The layer on padded node rows.

        Args:
            x: ``[B, S, C]`` node rows in ``graph``'s order (padded slots included: their rows
                are never read as sources).
            graph: Layout and edges.

        Returns:
            ``[B, S, out_channels]``; rows of padded slots are finite garbage.
        """
        heads = self.heads
        dim = self.out_channels // heads
        b = x.shape[0]
        weights = self.composed_weights()
        parts = {}
        for t, rows in zip(graph.sizes, graph.split(x)):
            w, bias = weights[t]
            parts[t] = F.linear(rows, w, bias).view(b, rows.shape[1], -1, heads, dim)
        qc, kc, vc = parts["cluster"].split([1, 3, 3], dim=2)  # links, rev_visible, rev_runs
        qt, kt, vt = parts["task"].unbind(2)
        qr, kr, vr = parts["running"].unbind(2)
        to_cluster = attend(
            qc[:, :, 0],
            torch.cat([kt, kr, kc[:, :, 0]], dim=1),
            torch.cat([vt, vr, vc[:, :, 0]], dim=1),
            graph.cluster_mask,
        )
        to_tasks = attend(
            torch.cat([qt, qr], dim=1),
            torch.cat([kc[:, :, 1], kc[:, :, 2]], dim=1),
            torch.cat([vc[:, :, 1], vc[:, :, 2]], dim=1),
            graph.task_mask,
        )
        agg = F.gelu(torch.cat([to_cluster, to_tasks], dim=1))
        out = torch.cat(
            [self.out_lin.lins[t](part) for t, part in zip(graph.sizes, graph.split(agg))], dim=1
        )
        alpha = torch.cat(
            [self.skip[t].sigmoid().expand(size) for t, size in graph.sizes.items()]
        ).view(1, -1, 1)
        return alpha * out + (1 - alpha) * x

    def sparse_forward(
        self, x_dict: dict[str, Tensor], edge_index_dict: dict[tuple[str, str, str], Tensor]
    ) -> dict[str, Tensor]:
        """The layer as message passing on a batched graph, with the folded weights.

        What ``HGTConv.forward`` computes on the same ``HeteroData`` (every node type a
        destination), without its per-(head, edge type) loop of relation matmuls: for large
        batches, where the dense layer's padded attention does several times the work.
        """
        heads = self.heads
        dim = self.out_channels // heads
        weights = self.composed_weights()
        query: dict[str, Tensor] = {}
        key: dict[tuple[str, str, str], Tensor] = {}
        value: dict[tuple[str, str, str], Tensor] = {}
        offset: dict[str, int] = {}
        total = 0
        for t, edges in self.OUTGOING.items():
            w, bias = weights[t]
            out = F.linear(x_dict[t], w, bias).view(-1, 1 + 2 * len(edges), heads, dim)
            query[t] = out[:, 0]
            for i, et in enumerate(edges):
                key[et] = out[:, 1 + i]
                value[et] = out[:, 1 + len(edges) + i]
            offset[t] = total
            total += out.shape[0]
        scores, messages, index = [], [], []
        for et, edge_index in edge_index_dict.items():
            src, dst = edge_index[0], edge_index[1]
            scores.append(
                (query[et[2]].index_select(0, dst) * key[et].index_select(0, src)).sum(-1)
            )
            messages.append(value[et].index_select(0, src))
            index.append(dst + offset[et[2]])
        idx = torch.cat(index)
        alpha = softmax(torch.cat(scores), idx, num_nodes=total)  # [E, H]
        msg = torch.cat(messages) * alpha.unsqueeze(-1)
        agg = scatter(msg, idx, dim=0, dim_size=total, reduce="sum").view(total, -1)
        agg = F.gelu(agg)
        out_dict = {}
        for t in self.OUTGOING:
            rows = agg[offset[t] : offset[t] + x_dict[t].shape[0]]
            alpha_t = self.skip[t].sigmoid()
            out_dict[t] = alpha_t * self.out_lin.lins[t](rows) + (1 - alpha_t) * x_dict[t]
        return out_dict
