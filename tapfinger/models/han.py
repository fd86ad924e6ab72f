"""HAN convolution whose semantic-level attention is computed per graph of a batched union.

PyG's :class:`torch_geometric.nn.HANConv` weighs the per-edge-type (metapath) outputs of each
destination node type with a semantic attention whose score averages ``tanh(k_lin(out))`` over
ALL nodes of that type (``torch_geometric.nn.conv.han_conv.group``). On a disjoint union of B
observation graphs (:func:`tapfinger.graph.build_graph_batch`) this couples the observations: one
observation's embeddings depend on the others in its batch, so rollout and update batches give
different probabilities for the same action.

:class:`PerGraphHANConv` keeps HANConv's parameters (same names, so the same ``state_dict``
keys), node-level attention and initialisation, and only changes the semantic step: the score is
a scatter-mean over the nodes of each graph, the softmax over edge types is taken per graph, and
each node is weighted by its own graph's weights. For a single graph (or ``batch=None``) it is
HANConv.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import HANConv
from torch_geometric.typing import Adj, EdgeType, NodeType
from torch_geometric.utils import scatter


def group_per_graph(
    xs: list[Tensor],
    q: nn.Parameter,
    k_lin: nn.Module,
    batch: Tensor | None = None,
    num_graphs: int | None = None,
) -> tuple[Tensor | None, Tensor | None]:
    """Semantic attention over edge types, per graph of a batched union.

    Args:
        xs: One ``[N, C]`` output per edge type ending at this node type.
        q: Semantic attention query, ``[1, C]``.
        k_lin: Semantic attention key projection (``C -> C``).
        batch: ``[N]`` long: graph of each node; ``None`` treats all nodes as one graph (the
            behaviour of PyG's ``HANConv``).
        num_graphs: Number of graphs B (inferred from ``batch`` when ``None``).

    Returns:
        The ``[N, C]`` weighted sum of ``xs`` (``None`` without edge types; ``[0, C]`` without
        nodes) and the ``[E, B]`` semantic attention weights of each graph (``None`` when there
        is no edge type or no node).
    """
    if len(xs) == 0:
        return None, None
    out = torch.stack(xs)  # [E, N, C]
    if out.numel() == 0:
        return out.view(0, out.size(-1)), None
    key = torch.tanh(k_lin(out))  # [E, N, C]
    if batch is None:
        mean = key.mean(dim=1, keepdim=True)  # [E, 1, C]
        batch = torch.zeros(out.size(1), dtype=torch.long, device=out.device)
    else:
        if num_graphs is None:
            num_graphs = int(batch.max()) + 1
        mean = scatter(key, batch, dim=1, dim_size=num_graphs, reduce="mean")  # [E, B, C]
    attn = F.softmax((q * mean).sum(dim=-1), dim=0)  # [E, B]
    out = (attn[:, batch].unsqueeze(-1) * out).sum(dim=0)  # [N, C]
    return out, attn


class PerGraphHANConv(HANConv):
    """:class:`torch_geometric.nn.HANConv` with the semantic attention computed per graph.

    Same constructor, parameters and node-level attention as ``HANConv``; :meth:`forward` also
    takes the node-to-graph assignment of every node type (``batch_dict``) so that the
    semantic-level attention of one graph of a batched disjoint union only sees that graph's
    nodes (see :func:`group_per_graph`). Without ``batch_dict`` it computes what ``HANConv``
    computes.
    """

    def forward(  # type: ignore[override]
        self,
        x_dict: dict[NodeType, Tensor],
        edge_index_dict: dict[EdgeType, Adj],
        return_semantic_attention_weights: bool = False,
        *,
        batch_dict: dict[NodeType, Tensor] | None = None,
        num_graphs: int | None = None,
    ) -> (
        dict[NodeType, Tensor | None]
        | tuple[dict[NodeType, Tensor | None], dict[NodeType, Tensor | None]]
    ):
        """Run the layer.

        Args:
            x_dict: Node features of each node type.
            edge_index_dict: ``[2, E]`` connectivity of each edge type.
            return_semantic_attention_weights: Also return the ``[E, B]`` semantic attention
                weights of each destination node type (``B = 1`` without ``batch_dict``).
            batch_dict: ``[N_t]`` long graph id of each node of each node type ``t`` (e.g.
                ``data[t].batch``); ``None`` treats the whole input as one graph.
            num_graphs: Number of graphs B; inferred from ``batch_dict`` when ``None``.

        Returns:
            The ``[N_t, out_channels]`` output of each node type (``None`` for a node type that
            no edge type ends at), and the semantic attention weights when asked for.
        """
        heads, dim = self.heads, self.out_channels // self.heads
        x_node_dict: dict[NodeType, Tensor] = {}
        outs_dict: dict[NodeType, list[Tensor]] = {}
        for node_type, x in x_dict.items():
            x_node_dict[node_type] = self.proj[node_type](x).view(-1, heads, dim)
            outs_dict[node_type] = []

        for edge_type, edge_index in edge_index_dict.items():
            src_type, _, dst_type = edge_type
            key = "__".join(edge_type)
            x_src = x_node_dict[src_type]
            x_dst = x_node_dict[dst_type]
            alpha_src = (x_src * self.lin_src[key]).sum(dim=-1)
            alpha_dst = (x_dst * self.lin_dst[key]).sum(dim=-1)
            out = self.propagate(edge_index, x=(x_src, x_dst), alpha=(alpha_src, alpha_dst))
            outs_dict[dst_type].append(F.relu(out))

        if batch_dict is not None and num_graphs is None:
            num_graphs = max(
                (int(b.max()) + 1 for b in batch_dict.values() if b.numel()), default=0
            )
        out_dict: dict[NodeType, Tensor | None] = {}
        semantic_attn_dict: dict[NodeType, Tensor | None] = {}
        for node_type, outs in outs_dict.items():
            batch = None if batch_dict is None else batch_dict[node_type]
            out_dict[node_type], semantic_attn_dict[node_type] = group_per_graph(
                outs, self.q, self.k_lin, batch, num_graphs
            )

        if return_semantic_attention_weights:
            return out_dict, semantic_attn_dict
        return out_dict
