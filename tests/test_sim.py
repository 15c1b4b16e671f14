"""The event engine, systems, TP/PP simulation and offload."""

import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwmodels import registry
from hwmodels.device_spec import load_device
from sim.engine import TaskGraph, run
from sim.offload import Policy, build_offload_graph, layer_costs, policy_time_s
from sim.simulate import simulate
from sim.system import load_system, parse_system, system_names
from workloads.errors import ConfigError, UnknownNameError
from workloads.graph import build_ops
from workloads.model_spec import load_model
from workloads.quant import Quant


def test_engine_hand_case():
    """Two 1 s tasks on one resource serialize (2 s); on two resources they overlap (1 s); a dependency waits."""
    g = TaskGraph()
    a = g.add("a", "gpu", 1.0)
    g.add("b", "gpu", 1.0)
    assert run(g).makespan_s == pytest.approx(2.0)
    g = TaskGraph()
    a = g.add("a", "gpu", 1.0)
    g.add("b", "link", 1.0)
    g.add("c", "link", 0.5, [a])
    t = run(g)
    assert t.makespan_s == pytest.approx(1.5) and t.utilization()["gpu"] == pytest.approx(1 / 1.5)


def test_engine_rejects_forward_dependency():
    g = TaskGraph()
    with pytest.raises(ConfigError, match="depends on task 3"):
        g.add("a", "gpu", 1.0, [3])


def test_one_device_event_time_equals_analytic_sum():
    """The event path's invariant: one device, no overlap, no contention."""
    spec, q, dev = load_model("llama-2-7b"), Quant.from_name("fp16"), load_device("a100-sxm-80gb")
    gpu = registry.get("gpu")
    r = simulate("1xa100", "llama-2-7b", batch=4, input_len=300, output_len=20)
    pre = gpu.estimate(build_ops(spec, q, phase="prefill", batch=4, tokens=300), dev).total_time_s()
    dec = gpu.estimate(build_ops(spec, q, phase="decode", batch=4, context=300 + np.arange(19.0)), dev)
    assert float(r.estimate.ttft_s) == pytest.approx(float(pre), rel=1e-9)
    assert float(r.estimate.e2e_s) == pytest.approx(float(pre + dec.total_time_s().sum()), rel=1e-9)


def test_simulate_is_deterministic():
    a = simulate("2x8xh100-ib", "llama-2-13b", batch=4, input_len=64, output_len=4)
    b = simulate("2x8xh100-ib", "llama-2-13b", batch=4, input_len=64, output_len=4)
    assert a.timeline.intervals.equals(b.timeline.intervals)


def _allreduce_share(result):
    iv = result.timeline.intervals
    busy = (iv["end_s"] - iv["start_s"]).groupby(iv["task"].str.contains("allreduce")).sum()
    return busy.get(True, 0.0) / busy.sum()


def test_tensor_parallel_scaling_and_link_share():
    """Llama-2-70B decode on 1, 2, 4, 8 H100s: time falls with TP, the all-reduce share grows; over PCIe it is larger."""
    runs = {
        tp: simulate("8xh100-nvlink", "llama-2-70b", batch=1, input_len=256, output_len=4, tp=tp)
        for tp in (1, 2, 4, 8)
    }
    tpot = [float(runs[tp].estimate.tpot_s) for tp in (1, 2, 4, 8)]
    assert tpot[0] > tpot[1] > tpot[2] > tpot[3]
    share = [_allreduce_share(runs[tp]) for tp in (1, 2, 4, 8)]
    assert share[0] == 0 and share[1] < share[2] < share[3]
    pcie = simulate("8xh100-pcie", "llama-2-70b", batch=1, input_len=256, output_len=4, tp=8)
    assert _allreduce_share(pcie) > share[3] and pcie.estimate.tpot_s > runs[8].estimate.tpot_s


def test_pipeline_microbatches_overlap_stages():
    r = simulate("2x8xh100-ib", "llama-2-70b", batch=16, input_len=128, output_len=4)
    u = r.utilization
    assert u["stage0"] > 0.3 and u["stage1"] > 0.3 and "pp_link" in u


@settings(max_examples=15, deadline=None)
@given(
    gbs=st.sampled_from([1, 4, 16]),
    k=st.integers(1, 4),
    w_gpu=st.sampled_from([0.0, 0.3, 0.6]),
    kv=st.sampled_from(
        [
            (("gpu", 1.0),),
            (("host", 1.0),),
            (("disk", 1.0),),
            (("gpu", 0.5), ("host", 0.5)),
            (("host", 0.3), ("disk", 0.7)),
        ]
    ),
    disk=st.booleans(),
)
def test_offload_never_beats_its_slowest_resource(gbs, k, w_gpu, kv, disk):
    """Any split of weights and KV across GPU, host and disk: a step is never faster than its
    busiest resource alone, nor slower than all of them one after another."""
    system = load_system("t4-flexgen")
    spec = load_model("opt-6.7b")
    weights = (("gpu", w_gpu), ("disk" if disk else "host", 1 - w_gpu)) if w_gpu < 1 else (("gpu", 1.0),)
    policy = Policy(gbs, k, tuple((t, f) for t, f in weights if f > 0), kv)
    lc = layer_costs(spec, Quant.from_name("fp16"), system, gbs, 64, 4, "flexgen")
    t = run(build_offload_graph(system, spec, policy, lc, 4))
    busiest = max(t.busy_s(r) for r in t.intervals["resource"].unique())
    assert t.makespan_s >= busiest * (1 - 1e-12)
    assert t.makespan_s <= sum(t.busy_s(r) for r in t.intervals["resource"].unique()) * (1 + 1e-12)


def test_system_files_load_and_bad_files_are_clear(tmp_path):
    assert {"1xa100", "8xh100-nvlink", "2x8xh100-ib", "t4-flexgen", "a6000-offload"} <= set(system_names())
    with pytest.raises(UnknownNameError, match="8xh100-nvlink"):
        load_system("8xh100-nvlnk")
    raw = {
        "schema_version": 1,
        "name": "x",
        "devices": {"gpu": {"device": "h100-sxm", "count": 2}},
        "links": {},
        "parallelism": {"tp": 4},
        "placement": {"weights": "gpu", "kv": "gpu"},
    }
    with pytest.raises(ConfigError, match="exceeds the 2 GPUs"):
        parse_system(raw, "x.yaml")
    raw["parallelism"] = {"tp": 1}
    raw["placement"] = {"weights": {"gpu": 0.5, "host": 0.6}}
    with pytest.raises(ConfigError, match="sum to 1.1"):
        parse_system(raw, "x.yaml")


def test_cli_simulate_and_reproduce():
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "hwsim",
            "simulate",
            "--system",
            "1xa100",
            "--model",
            "llama-2-7b",
            "--batch",
            "2",
            "--output-len",
            "4",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert {"ttft_s", "tpot_s", "tokens_per_j", "utilization"} <= set(data) and data["utilization"][
        "stage0"
    ] > 0.9
    r = subprocess.run(
        [sys.executable, "-m", "hwsim", "systems", "--json"], capture_output=True, text=True, timeout=60
    )
    assert any(s["name"] == "t4-flexgen" for s in json.loads(r.stdout))


def test_reproduce_flexgen_rows_obey_the_t4_bandwidth_bound():
    """Each FlexGen row carries the verdict columns, and its all-GPU policy cannot generate faster
    than the T4 streams the weights: OPT-6.7B's 13.3 GB of fp16 weights at 320 GB/s take 41.6 ms
    per decode step at the least, so at most block / 0.0416 s tokens per second; nor slower than
    a quarter of that (the step also pays launches, KV reads and the prefill)."""
    from sim.experiments import reproduce
    from sim.offload import best_policy

    frame = reproduce(["flexgen"])
    assert list(frame.columns)[-3:] == ["tolerance", "verdict", "cause"]
    assert list(frame["metric"]) == ["decode_tokens_per_s"] * 3 + ["decode_tokens_per_s_searched"] * 3
    # FlexGen's own OPT-6.7B policy: batch 2 all on the GPU; the T4 bound is 2 x 320 GB/s / 13.3 GB
    pinned = frame.iloc[0]
    assert "FlexGen's policy: block 2 " in pinned["condition"]
    assert pinned["hwsim_value"] <= 2 * 320e9 / (load_model("opt-6.7b").n_params() * 2)
    policy, rate = best_policy("t4-flexgen", "opt-6.7b", input_len=512, output_len=32)
    assert dict(policy.weights) == {"gpu": 1.0}
    weights_bytes = load_model("opt-6.7b").n_params() * 2
    bound = policy.block * 320e9 / weights_bytes
    assert 0.25 * bound < rate <= bound
    searched = frame[frame["metric"] == "decode_tokens_per_s_searched"]
    assert searched.loc[
        searched["condition"].str.startswith("opt-6.7b"), "hwsim_value"
    ].item() == pytest.approx(rate)


def test_storage_drive_is_refused_by_estimate_with_a_pointer():
    from roofline.estimate import estimate
    from workloads.errors import ConfigError

    with pytest.raises(ConfigError, match="reproduce instinfer"):
        estimate("llama-2-7b", "smartssd", batch=1, input_len=8, output_len=8)


def test_wafer_pipeline_across_wafers_is_refused(tmp_path):
    import yaml

    from sim.simulate import simulate
    from workloads.errors import ConfigError

    raw = {
        "schema_version": 1,
        "name": "4xwse2",
        "devices": {"gpu": {"device": "wse-2", "count": 4}},
        "links": {"fabric": {"between": ["gpu", "gpu"], "bw_GBps": 150, "source": "test"}},
        "parallelism": {"tp": 1, "pp": 4},
        "placement": {"weights": "gpu", "kv": "gpu"},
    }
    path = tmp_path / "4xwse2.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="across wafers"):
        simulate(str(path), "llama-3-8b", batch=1, input_len=8, output_len=4)


def test_offload_shortfall_names_the_tier_in_gb():
    from sim.simulate import simulate
    from workloads.errors import DoesNotFitError

    with pytest.raises(DoesNotFitError, match=r"GPU memory short by \d+\.\d\d GB .*placement"):
        simulate("a6000-offload", "opt-30b", batch=64, input_len=2040, output_len=8)


def test_half_the_kv_on_the_host_moves_traffic_and_cpu_work():
    """The shipped a6000-offload system keeps half the KV cache on the host: its prefill sends
    that half over PCIe and its decode attends over it on the CPU; with all KV on the GPU
    neither happens. The run fits and says so."""
    from dataclasses import replace as dc_replace

    from sim.simulate import simulate

    half = simulate("a6000-offload", "opt-13b", batch=8, input_len=512, output_len=8)
    system = load_system("a6000-offload")
    on_gpu = simulate(dc_replace(system, kv={"gpu": 1.0}), "opt-13b", batch=8, input_len=512, output_len=8)
    assert bool(half.estimate.fits)
    assert half.utilization["host"] > 0 and half.utilization["pcie"] > on_gpu.utilization.get("pcie", 0.0)
    assert on_gpu.utilization.get("host", 0.0) == 0.0


def test_links_carry_each_direction_at_its_own_rate():
    """t4-flexgen's PCIe: weights go to the GPU at 13.84 GB/s and the KV cache leaves at 1.04 GB/s
    (FlexGen's measured rates), so a prefill KV store of one OPT-30B layer for a batch of 48 at 512
    tokens (2 x 7168 x 2 B x 48 x 512 = 704.6 MB) takes 704.6 MB / 1.04 GB/s = 0.6775 s; a weight
    load of 80% of a layer, 0.8 x 1.2333 GB / 13.84 GB/s + 1.5 us."""
    system = load_system("t4-flexgen")
    pcie = system.link_between("gpu", "host")
    assert pcie.bw_from("gpu", "host") == 1.04e9 and pcie.bw_from("host", "gpu") == 13.84e9
    spec = load_model("opt-30b")
    policy = Policy(48, 1, (("gpu", 0.2), ("host", 0.8)), "host")
    lc = layer_costs(spec, Quant.from_name("fp16"), system, 48, 512, 2, "flexgen")
    assert lc.kv_prefill_bytes == 2 * 7168 * 2 * 48 * 512
    t = run(build_offload_graph(system, spec, policy, lc, 2)).intervals.set_index("task")
    store = t.loc["s0/L0/attention/b0/kv_store"]
    assert store["end_s"] - store["start_s"] == pytest.approx(704_643_072 / 1.04e9)
    # while the attention computes, the MLP's weights load: 16 h^2 of the layer's 24 h^2 (+ biases)
    assert lc.attention_weight_frac == pytest.approx(1 / 3, rel=1e-3)
    load = t.loc["s0/L0/attention/next_weights"]
    mlp_share = 1 - lc.attention_weight_frac
    assert load["end_s"] - load["start_s"] == pytest.approx(
        mlp_share * 0.8 * lc.weight_bytes / 13.84e9 + 1.5e-6
    )


def test_flexgen_loop_synchronizes_each_gpu_batch():
    """FlexGen's loop ends every (unit, GPU batch) iteration with a synchronize: with the KV cache on
    the host, decode is the sum over units and batches of the slowest chain; by hand for OPT-30B
    under FlexGen's policy (48 x 3, weights 20/80 GPU/host): the attention unit's first batch waits
    for the longer of its GPU + CPU attention and the MLP weights' load, the MLP's for the attention
    weights of the next layer; the closed form equals the engine."""
    system = load_system("t4-flexgen")
    spec, quant = load_model("opt-30b"), Quant.from_name("fp16")
    policy = Policy(48, 3, (("gpu", 0.2), ("host", 0.8)), "host")
    lc = layer_costs(spec, quant, system, 48, 512, 3, "flexgen")
    pcie = system.link_between("gpu", "host")
    load = lc.weight_bytes * 0.8 / pcie.bw_from("host", "gpu")
    att = lc.gpu_decode_projection_s + lc.cpu_attention_s
    mlp = lc.gpu_decode_s - lc.gpu_decode_projection_s
    a = lc.attention_weight_frac
    per_layer = max(att, (1 - a) * load + 1.5e-6) + 2 * att + max(mlp, a * load + 1.5e-6) + 2 * mlp
    decode = policy_time_s(system, policy, lc, spec.n_layers, 3) - policy_time_s(
        system, policy, lc, spec.n_layers, 1
    )
    assert decode == pytest.approx(2 * spec.n_layers * per_layer)
    engine = run(build_offload_graph(system, spec, policy, lc, 3), record=False).makespan_s
    assert engine == pytest.approx(policy_time_s(system, policy, lc, spec.n_layers, 3))


def test_direction_names_are_checked(tmp_path):
    raw = {
        "schema_version": 1,
        "name": "x",
        "devices": {"gpu": {"device": "t4"}, "host": {"device": "host-ddr4"}},
        "links": {
            "pcie": {
                "between": ["gpu", "host"],
                "bw_GBps": 16,
                "bw_GBps_by_direction": {"gpu->disk": 1},
                "source": "test",
            }
        },
        "parallelism": {"tp": 1},
        "placement": {"weights": "gpu", "kv": "gpu"},
    }
    with pytest.raises(ConfigError, match="gpu->disk.*expected gpu->host or host->gpu"):
        parse_system(raw, "x.yaml")


def test_flexgen_peak_memory_by_hand():
    """FlexGen's accounting (paper App. A.3) for OPT-6.7B all on the GPU at batch 8, prompt 512 + 32:
    fp16 weights (2 x 6.658e9 params) + KV of 8 sequences at 544 tokens (8 x 544 x 32 layers x 2 x
    4096 x 2 B) + the block's hidden states (8 x 512 x 4096 x 2 B) + the largest prefill working set,
    the MLP's (8 x 512 x (2 x 4096 + 16384) x 2 B)."""
    from sim.offload import gpu_bytes
    from workloads.graph import weight_bytes

    spec, quant = load_model("opt-6.7b"), Quant.from_name("fp16")
    system = load_system("t4-flexgen")
    policy = Policy(8, 1, (("gpu", 1.0),), "gpu")
    lc = layer_costs(spec, quant, system, 8, 512, 32, "flexgen")
    kv = 8 * 544 * 32 * 2 * 4096 * 2
    hidden = 8 * 512 * 4096 * 2
    mlp = 8 * 512 * (2 * 4096 + 16384) * 2
    expected = weight_bytes(spec, quant) + kv + hidden + mlp
    assert gpu_bytes(spec, quant, policy, 512, 32, lc) == pytest.approx(expected)
