"""Helpers and fixtures shared by the whole suite (imported as ``tests.conftest``).

- :func:`one_error_line`: the CLI contract for bad input (one ``error: ...`` line, DESIGN §6).
- :func:`tiny_scenario` and :func:`tiny_trace`: a hand-written world for hand-computed tests.
- ``single_thread_torch`` (autouse): the models' graphs are tiny, and a second intra-op thread
  only spins against whatever else shares the cores.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from envs.scenario import ClusterSpec, ScenarioConfig, TaskTypeSpec
from envs.trace import Trace

#: A task type for tiny worlds: (name, min cpu, min gpu, cap cpu, cap gpu).
TypeRow = tuple[str, int, int, int, int]
#: A task for tiny traces: (arrival slot, type name, work, clusters that see it).
TaskRow = tuple[int, str, float, Sequence[int]]


def one_error_line(err: str, naming: str | Path | None = None) -> str:
    """The single ``error: ...`` line of ``err`` (which names ``naming``, when given)."""
    lines = err.splitlines()
    assert len(lines) == 1 and err.endswith("\n"), err
    assert lines[0].startswith("error: "), err
    if naming is not None:
        assert str(naming) in lines[0], err
    return lines[0]


def tiny_scenario(
    clusters: Sequence[tuple[int, int]], types: Sequence[TypeRow], num_tasks: int, **settings: Any
) -> ScenarioConfig:
    """A scenario of ``clusters`` (cpu, gpu) and ``types`` on the paper's synthetic speeds."""
    return ScenarioConfig(
        name="tiny",
        clusters=[ClusterSpec(c, g) for c, g in clusters],
        task_types=[TaskTypeSpec(n, mc, mg, 0, xc, xg) for n, mc, mg, xc, xg in types],
        speed_model="paper_synthetic",
        num_tasks=num_tasks,
        **{"window": 4, **settings},
    )


def tiny_trace(types: Sequence[TypeRow], rows: Sequence[TaskRow], num_clusters: int) -> Trace:
    """A trace of hand-written ``rows``; each task's demand and cap come from its type."""
    spec = {t[0]: t for t in types}
    names = [t[0] for t in types]
    visible = np.zeros((len(rows), num_clusters), dtype=bool)
    for i, row in enumerate(rows):
        visible[i, list(row[3])] = True
    return Trace(
        names,
        task_id=np.arange(len(rows)),
        arrival=np.array([r[0] for r in rows]),
        type_idx=np.array([names.index(r[1]) for r in rows]),
        work=np.array([r[2] for r in rows], dtype=float),
        visible=visible,
        min_demand=np.array([[spec[r[1]][1], spec[r[1]][2], 0] for r in rows]).reshape(-1, 3),
        cap=np.array([[spec[r[1]][3], spec[r[1]][4]] for r in rows]).reshape(-1, 2),
    )


@pytest.fixture(autouse=True, scope="session")
def single_thread_torch() -> Iterator[None]:
    """One torch thread for the whole session, where torch is used at all (envs tests do not
    import it: measured x10-x40 slower with two threads beside another job on 2 cores)."""
    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch else None
    if torch:
        torch.set_num_threads(1)
    yield
    if torch and before:
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    """A local 2-CPU Ray for the module's tests (skipped without the ray extra)."""
    import warnings

    ray = pytest.importorskip("ray")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Ray's own start-up warnings
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
