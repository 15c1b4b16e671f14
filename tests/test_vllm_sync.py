"""vLLM V1 before async scheduling was its default (framework ``vllm-sync``): which rows run it,
which terms it takes from whom, and what its host time costs a step."""

from __future__ import annotations

import pytest

from hwmodels.calibration import params
from hwmodels.calibration.params import framework_terms
from hwmodels.engine_config import engine_for
from roofline.estimate import estimate
from roofline.validation import framework_of, stated_version
from workloads.errors import ConfigError, UnknownNameError


@pytest.mark.parametrize(
    ("version", "notes", "framework"),
    [
        ("0.11.0", "vllm serve Qwen/Qwen3-14B", "vllm-sync"),
        ("vLLM v0.10.0 (ROCm fork, rocm/vllm-dev)", "benchmark_throughput.py", "vllm-sync"),
        ("0.8.5", "", "vllm-sync"),
        ("0.13.0", "", "vllm-sync"),
        ("0.11.1", "chunked prefill with max-num-batched-tokens 8192, async scheduling; configs", "vllm"),
        ("0.10.2", "vllm serve m --async-scheduling", "vllm"),
        ("0.10.2", "vllm serve m --no-async-scheduling", "vllm-sync"),
        ("0.14.0", "", "vllm"),
        ("0.19.1", "", "vllm"),
        ("0.7.3", "", "vllm-v0"),
        ("", "", "vllm"),
    ],
)
def test_a_rows_version_and_notes_name_vllms_host_loop(version, notes, framework):
    """v0.8 to v0.13 ran V1's host work between the GPU's steps unless the run asked for
    --async-scheduling; v0.14.0 made async scheduling the default (vllm-project/vllm PR #27614)."""
    assert framework_of("vllm", f"{notes} version={stated_version(version)}") == framework


def test_vllm_sync_takes_v1s_step_terms_and_v0s_time_per_sequence():
    sync, v1, v0 = (framework_terms(f) for f in ("vllm-sync", "vllm", "vllm-v0"))
    assert sync.step_overhead_s == pytest.approx(v1.step_overhead_s)
    assert sync.output_lag_steps == v1.output_lag_steps
    assert sync.seq_overhead_s == pytest.approx(v0.seq_overhead_s) and sync.seq_overhead_s > 0
    assert (sync.kernels, sync.kernel_overhead_us, sync.memory_fraction) == (
        v1.kernels,
        v1.kernel_overhead_us,
        v1.memory_fraction,
    )
    assert engine_for("vllm-sync").scheduler == engine_for("vllm").scheduler == "vllm"
    assert engine_for("vllm-sync").device_defaults == engine_for("vllm").device_defaults


def test_a_synchronous_step_pays_its_host_time_per_running_sequence():
    """A decode step of 256 sequences of Llama-3.1-8B on an H100 takes 256 x the V0 time per
    sequence longer under vllm-sync than under vllm (everything else is the same engine)."""
    per_seq = framework_terms("vllm-sync").seq_overhead_s
    kw = dict(batch=256, input_len=512, output_len=128, precision="bf16")
    sync = estimate("llama-3.1-8b", "h100-sxm", framework="vllm-sync", **kw)
    v1 = estimate("llama-3.1-8b", "h100-sxm", framework="vllm", **kw)
    assert float(sync.tpot_s - v1.tpot_s) == pytest.approx(256 * per_seq, rel=1e-6)


@pytest.mark.parametrize(
    "rule",
    [
        "vllm",
        {},
        {"kernel_overhead_us": "vllm"},
        {"seq_overhead_us": "no-such-engine"},
        {"seq_overhead_us": "vllm-sync"},
    ],
)
def test_a_malformed_serving_terms_from_entry_is_refused(rule):
    raw = params._frameworks_file()
    table = params._frameworks()
    with pytest.raises((ConfigError, UnknownNameError), match="serving_terms_from"):
        params._inherited_terms({"serving_terms_from": rule}, table, "frameworks.x", raw)


def test_serving_terms_read_back_in_the_units_a_fit_writes():
    """A framework overridden with 250 us a step, 45 us a sequence, 70 us a tensor-parallel step,
    a request latency of 30 us a launch and a lag of 1.5 steps reads them back as written, not as
    the seconds they are held in (59.999... us)."""
    fitted = {
        "step_overhead_us": 250.0,
        "seq_overhead_us": 45.0,
        "tp_step_overhead_us": 70.0,
        "request_latency_per_launch_us": 30.0,
    }
    with params.framework_overridden("vllm", fitted):
        with params.framework_overridden("vllm", {"output_lag_steps": 1.5}):
            terms = framework_terms("vllm").serving_terms()
    assert terms == fitted | {"output_lag_steps": 1.5}
