"""Training and decision speed of TapFinger: env steps per second, decision latency, graph builds.

Prints four figures:

1. Training throughput on ``--scenario`` (default ``paper_synthetic``, with its config's model and
   training sections): environment steps per second of a :class:`tapfinger.training.Trainer`,
   collection and PPO update together, as the trainer itself computes it for ``charts/SPS``
   (steps of the iteration over the wall time of its collection + GAE + update), over
   ``--iterations`` iterations after ``--warmup`` ones; periodic evaluation is off. Collection
   alone and the update time per iteration are shown beside it. Timed side by side for each
   ``--collectors`` setting: ``inline`` (collection in the learner's process, then the update)
   and ``overlap`` (one rollout worker process collecting the next rollout while the learner
   updates: one core each, a policy lag of one iteration).
2. Decision latency per round on ``--latency-scenario`` (default ``paper_hetero6``: 6 clusters),
   over ``--rounds`` rounds of a real episode driven by the (untrained, greedy) policy: each
   agent's decision alone (batch 1: stack + tensors + graph + network, actions back on the host;
   agents with nothing to start are skipped, as the policy skips them) and the whole round
   (``act_batch``: all agents in one batch, Bayes rule included), p50 / p95 in ms, in wall time
   and in the thread's CPU time (which other processes on a shared machine cannot inflate). The
   paper's implementation takes 5.34 ms per decision.
3. Graph-batch build time for ``--batch`` observations (``benchmarks/graph_build.py``'s setup).
4. Parameter count of the model on each scenario, by part.

The machine load (``os.getloadavg``) is printed before and after: on a shared machine the
figures are only as good as the cores they got.

Usage: ``python benchmarks/train_throughput.py [--scenario paper_synthetic] [--device cpu]``.
"""

from __future__ import annotations

import copy
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from graph_build import collect as collect_observations
from graph_build import median_ms

from envs import edge_cluster_v0
from envs.errors import ConfigError, InputError
from tapfinger.checkpoint import build_network
from tapfinger.cli import OneLineParser, add_set_argument, error_line
from tapfinger.config import ExperimentConfig, load_config
from tapfinger.graph import build_graph_batch, stack_observations, to_tensors
from tapfinger.models.network import TapFingerNet
from tapfinger.policies.learned import act_batch, model_inputs
from tapfinger.runs import pick_device
from tapfinger.training import Trainer


def load() -> str:
    """The 1, 5 and 15 minute load averages."""
    return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


# ---------------------------------------------------------------------------------- 1. SPS
def training_throughput(
    cfg: ExperimentConfig, device: torch.device, warmup: int, iterations: int
) -> dict[str, Any]:
    """Run ``warmup + iterations`` trainer iterations; per-iteration figures of the last ones."""
    tc = cfg.train
    per_iteration = tc.num_envs * tc.rollout_steps
    tc.total_steps = (warmup + iterations) * per_iteration
    tc.bc_steps = 0
    tc.checkpoint_every = 0
    rows: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, Path(tmp), device, show_progress=False)
        # No evaluation at all (not even the final one): this measures training only.
        trainer.evaluate = lambda: {"tapfinger": float("inf")}  # type: ignore[method-assign]
        collect, log = trainer.collect, trainer._log
        mark: dict[str, float] = {}

        def timed_collect(collector):
            mark["start"] = time.perf_counter()
            out = collect(collector)
            mark["collected"] = time.perf_counter()
            return out

        def timed_log(stats, ro, adv, ret, finished, sps):
            done = time.perf_counter()
            rows.append(
                {
                    "sps": sps,
                    "collect_s": mark["collected"] - mark["start"],
                    "update_s": done - mark["collected"],
                    "loss_finite": float(all(np.isfinite(v) for v in stats.values())),
                }
            )
            return log(stats, ro, adv, ret, finished, sps)

        trainer.collect = timed_collect  # type: ignore[method-assign]
        trainer._log = timed_log  # type: ignore[method-assign]
        trainer.train()
    measured = rows[warmup:]
    streams = tc.num_envs * len(edge_cluster_v0.EdgeClusterEnv(cfg.scenario).possible_agents)
    return {
        "steps_per_iteration": per_iteration,
        "samples_per_update": per_iteration // tc.num_envs * streams * tc.epochs,
        "sps": [r["sps"] for r in measured],
        "collect_sps": [per_iteration / r["collect_s"] for r in measured],
        "update_s": [r["update_s"] for r in measured],
        "finite": all(r["loss_finite"] for r in rows),
    }


# ---------------------------------------------------------------------------------- 2. latency
def percentiles(times_s: list[float]) -> tuple[float, float]:
    """p50 and p95 in milliseconds."""
    ms = np.asarray(times_s) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95))


def decision_latency(
    scenario: str, cfg: ExperimentConfig, device: torch.device, rounds: int, warmup: int = 10
) -> dict[str, Any]:
    """Per-agent (batch 1) and per-round (all agents, Bayes rule) latencies on a real episode."""
    env = edge_cluster_v0.parallel_env(scenario, infos="full")
    torch.manual_seed(0)
    net = build_network(env, cfg).to(device).eval()
    n = len(env.possible_agents)
    per_agent: list[float] = []
    per_round: list[float] = []
    round_cpu: list[float] = []  # this thread's CPU time: what other processes cannot inflate
    seed = 0
    obs, infos = env.reset(seed=seed)
    with torch.no_grad():
        for r in range(warmup + rounds):
            for a in env.agents:
                if not obs[a]["task_mask"][1:].any():
                    continue  # nothing to start: the policy does not run the network
                t0 = time.perf_counter()
                decision, _ = net.decide(to_tensors(model_inputs([obs[a]]), device), greedy=True)
                decision.actions.cpu()  # the actions must reach the host (syncs a GPU)
                if r >= warmup:
                    per_agent.append(time.perf_counter() - t0)
            agents = list(env.agents)
            t0, c0 = time.perf_counter(), time.thread_time()
            out = act_batch(
                net,
                [obs[a] for a in agents],
                [infos[a] for a in agents],
                num_agents=n,
                greedy=True,
                bayes=True,
                device=device,
            )
            if r >= warmup:
                per_round.append(time.perf_counter() - t0)
                round_cpu.append(time.thread_time() - c0)
            obs, _, _, _, infos = env.step(dict(zip(agents, out.env_actions)))
            if not env.agents:
                seed += 1
                obs, infos = env.reset(seed=seed)
    return {
        "clusters": n,
        "rounds": rounds,
        "decisions": len(per_agent),
        "agent": percentiles(per_agent),
        "round": percentiles(per_round),
        "round_cpu": percentiles(round_cpu),
    }


# ---------------------------------------------------------------------------------- 3. graphs
def graph_build_time(scenario: str, batch: int, device: torch.device) -> dict[str, float]:
    """Median build time of one batched graph, from stacked tensors and end to end."""
    obs_list = collect_observations(scenario, batch)
    tensors = to_tensors(stack_observations(obs_list), device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def build() -> None:
        build_graph_batch(tensors)
        sync()

    def end_to_end() -> None:
        build_graph_batch(to_tensors(stack_observations(obs_list), device))
        sync()

    return {"build_ms": median_ms(build, 100), "end_to_end_ms": median_ms(end_to_end, 100)}


# ---------------------------------------------------------------------------------- 4. size
def parameter_counts(net: TapFingerNet) -> dict[str, int]:
    """Parameters of the whole model and of its parts."""
    parts = {"encoder": 0, "pointer": 0, "allocation": 0, "critic": 0}
    for name, p in net.named_parameters():
        top = name.split(".")[0]
        if top == "encoder":
            parts["encoder"] += p.numel()
        elif top == "critic":
            parts["critic"] += p.numel()
        elif top in ("cpu_head", "cpu_embed", "gpu_head"):
            parts["allocation"] += p.numel()
        else:
            parts["pointer"] += p.numel()
    return {"total": sum(parts.values()), **parts}


# ---------------------------------------------------------------------------------- main
#: Collector settings timed side by side (``--collectors``): in the learner's process, and one
#: rollout worker process whose collection overlaps the learner's update (one core each).
COLLECTORS: dict[str, dict[str, Any]] = {
    "config": {},
    "inline": {"rollout_workers": 0, "overlap": False},
    "workers2": {"rollout_workers": 2, "overlap": False},
    "overlap": {"rollout_workers": 1, "overlap": True},
}


def print_throughput(args, cfg: ExperimentConfig, device: torch.device, name: str) -> None:
    """Part 1 for one collector setting."""
    tc = cfg.train
    print(
        f"\n[1] training throughput ({name}): {args.scenario}, backbone={cfg.model.backbone} "
        f"hidden={cfg.model.hidden}, num_envs={tc.num_envs} rollout_steps="
        f"{tc.rollout_steps} epochs={tc.epochs} minibatches={tc.minibatches}, "
        f"rollout_workers={tc.rollout_workers} overlap={tc.overlap}"
    )
    t0 = time.perf_counter()
    res = training_throughput(cfg, device, args.warmup, args.iterations)
    sps = res["sps"]
    print(
        f"  env steps/s (collection + update): median {statistics.median(sps):.0f} "
        f"[{', '.join(f'{v:.0f}' for v in sps)}]  (target >= 1000)"
    )
    if tc.overlap:
        collect = "learner waits for the overlapped rollout: {:.2f} s per iteration".format(
            statistics.median(res["steps_per_iteration"] / v for v in res["collect_sps"])
        )
    else:
        collect = f"collection alone: {statistics.median(res['collect_sps']):.0f} steps/s"
    print(
        f"  {collect}; update: {statistics.median(res['update_s']):.2f} s per iteration "
        f"({res['samples_per_update']} agent-samples x epochs)"
    )
    print(
        f"  {res['steps_per_iteration']} steps per iteration, {args.warmup} warm-up + "
        f"{args.iterations} timed iterations in {time.perf_counter() - t0:.1f} s; "
        f"losses finite: {res['finite']}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="paper_synthetic", help="training config/preset")
    parser.add_argument("--latency-scenario", default="paper_hetero6")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--warmup", type=int, default=1, help="training iterations not timed")
    parser.add_argument("--iterations", type=int, default=4, help="timed training iterations")
    parser.add_argument("--rounds", type=int, default=200, help="timed decision rounds")
    parser.add_argument("--batch", type=int, default=64, help="graph-batch size")
    parser.add_argument(
        "--collectors",
        default="inline,overlap",
        help="collector settings timed in part 1, comma-separated: "
        + ", ".join(COLLECTORS)
        + " (config: as the config says)",
    )
    add_set_argument(parser)
    parser.add_argument(
        "--skip", default="", help="comma-separated parts to skip: sps, latency, graph"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        device = pick_device(args.device)
        cfg = load_config(args.scenario, args.overrides)
        latency_cfg = load_config(args.latency_scenario)
    except InputError as exc:
        parser.exit(error_line(exc))
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    print(
        f"device={device} threads={torch.get_num_threads()} cores={os.cpu_count()} "
        f"torch={torch.__version__}; {load()}"
    )

    if "sps" not in skip:
        collectors = [c.strip() for c in args.collectors.split(",") if c.strip()]
        for name in collectors:
            if name not in COLLECTORS:
                parser.exit(error_line(ConfigError(f"--collectors: unknown {name!r}")))
        for name in collectors:
            run_cfg = copy.deepcopy(cfg)
            for key, value in COLLECTORS[name].items():
                setattr(run_cfg.train, key, value)
            print_throughput(args, run_cfg, device, name)

    if "latency" not in skip:
        res = decision_latency(args.latency_scenario, latency_cfg, device, args.rounds)
        print(
            f"\n[2] decision latency: {args.latency_scenario} ({res['clusters']} clusters), "
            f"backbone={latency_cfg.model.backbone} hidden={latency_cfg.model.hidden}, "
            f"{res['rounds']} rounds, greedy"
        )
        p50, p95 = res["agent"]
        print(
            f"  one agent, batch 1:            p50 {p50:6.2f} ms  p95 {p95:6.2f} ms  "
            f"(target p50 <= 2; {res['decisions']} decisions of agents with a task to start)"
        )
        p50, p95 = res["round"]
        print(
            f"  whole round, {res['clusters']} agents + Bayes: p50 {p50:6.2f} ms  "
            f"p95 {p95:6.2f} ms  (paper: 5.34 ms per decision)"
        )
        p50, p95 = res["round_cpu"]
        print(f"  whole round, CPU time:         p50 {p50:6.2f} ms  p95 {p95:6.2f} ms")

    if "graph" not in skip:
        res = graph_build_time(args.latency_scenario, args.batch, device)
        print(f"\n[3] graph-batch build: {args.latency_scenario}, B={args.batch}")
        print(f"  build_graph_batch on stacked tensors:  {res['build_ms']:7.3f} ms (median)")
        print(f"  stack + to_tensors + build:            {res['end_to_end_ms']:7.3f} ms (median)")

    print("\n[4] parameters")
    for name, c in ((args.scenario, cfg), (args.latency_scenario, latency_cfg)):
        env = edge_cluster_v0.parallel_env(name, infos="full")
        counts = parameter_counts(build_network(env, c))
        detail = ", ".join(f"{k} {v:,}" for k, v in counts.items() if k != "total")
        print(
            f"  {name} (backbone={c.model.backbone}, hidden={c.model.hidden}, "
            f"critic={c.model.critic}): {counts['total']:,} ({detail})"
        )
    print(f"\n{load()}")


if __name__ == "__main__":
    main()
