"""Links that wire a board's devices all to all (``mesh_peers``): a collective gets the links to
the peers its traffic goes to, not the board's whole bandwidth (hand-computed cases)."""

from __future__ import annotations

import numpy as np
import pytest

from hwmodels.device_spec import load_device
from hwmodels.gpu import GpuCostModel
from hwmodels.placement import Placement
from workloads.graph import allreduce_table, build_ops
from workloads.model_spec import load_model
from workloads.quant import Quant


@pytest.mark.parametrize(
    "device, peers, gbps",
    [
        ("mi300x", 1, 64.0),
        ("mi300x", 3, 192.0),
        ("mi300x", 7, 448.0),
        ("mi300x", 15, 448.0),  # a board has 7 peers
        ("mi300x", 0, 64.0),  # at least one link's share
        ("gaudi3", 1, 75.0),
        ("gaudi2", 7, 262.5),
        ("h100-sxm", 1, 450.0),  # NVSwitch: any group gets the whole link
        ("h100-sxm", 7, 450.0),
    ],
)
def test_group_bandwidth(device, peers, gbps):
    link = next(v for k, v in load_device(device).links.items() if k != "pcie")
    assert float(link.group_bw(peers)) == pytest.approx(gbps * 1e9)


def _link_s(device: str, tp: int, message_bytes: float) -> float:
    ops = allreduce_table(np.array([message_bytes]), tp, Quant.from_name("bf16"))
    cost = GpuCostModel().estimate(ops, load_device(device), Placement(tp=tp))
    return float(np.ravel(cost.link_s)[0])


def test_a_two_gpu_all_reduce_on_a_mesh_runs_over_one_link():
    """On MI300X, 256 MiB all-reduced over 2 GPUs moves 256 MiB each way over one 64 GB/s link;
    over 8 GPUs, 2 x 7/8 of it over seven: the bandwidth terms differ by 7 x 8/14 = 4x. Taken as
    the time 128 MiB more takes, past the first bytes' slower protocol (``knee_MB``), so the
    latencies and the knee cancel."""
    big, small = 2.0**28, 2.0**27
    two = _link_s("mi300x", 2, big) - _link_s("mi300x", 2, small)
    eight = _link_s("mi300x", 8, big) - _link_s("mi300x", 8, small)
    assert two / eight == pytest.approx(4.0, rel=1e-3)
    # a switched fabric: the 2-GPU ring sends 8/14 of the 8-GPU ring's bytes at the same rate
    h_two = _link_s("h100-sxm", 2, big) - _link_s("h100-sxm", 2, small)
    h_eight = _link_s("h100-sxm", 8, big) - _link_s("h100-sxm", 8, small)
    assert h_two / h_eight == pytest.approx(8 / 14, rel=1e-3)


def test_each_collective_names_its_peers():
    ops = build_ops(
        load_model("mixtral-8x7b"),
        Quant.from_name("fp16"),
        phase="decode",
        batch=8,
        context=100,
        tp=2,
        pp=2,
        ep=4,
    )
    peers = dict(zip(ops.name, ops.link_peers, strict=True))
    assert peers["allreduce_attn"] == 1 and peers["all_to_all_moe"] == 3 and peers["pp_send"] == 1
    assert all(
        p == 0
        for n, p in peers.items()
        if n not in ("allreduce_attn", "allreduce_ffn", "all_to_all_moe", "pp_send")
    )
