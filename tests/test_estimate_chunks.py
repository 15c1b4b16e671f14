"""The analytic path's fast evaluation gives the plain one's numbers: a sweep priced in chunks
equals it priced at once, and ops priced in groups (with both ends of a decode run in one table)
equal the whole op table priced at once."""

import os
from dataclasses import fields

import numpy as np
import pytest

import roofline.estimate as estimate_module
from hwmodels.gpu import GpuCostModel
from roofline.estimate import _chunks, estimate
from workloads.errors import ConfigError
from workloads.graph import build_op_groups, build_ops
from workloads.model_spec import load_model
from workloads.quant import Quant

BATCH = np.array([1, 3, 16, 100, 512])[:, None]
PROMPT = np.array([1, 17, 128, 2048, 4097])[None, :]
CASES = {
    "dense, measured curves": dict(model="llama-2-7b", device="h100-sxm", output_len=128),
    "output axis": dict(
        model="llama-3.1-8b", device="a100-sxm-80gb", output_len=np.array([1, 2, 300])[:, None, None]
    ),
    "tp, fp8": dict(model="llama-3.1-70b", device="h200", output_len=64, tp=4, precision="fp8"),
    "int8, framework": dict(
        model="mistral-7b", device="a100-sxm-80gb", output_len=77, precision="int8", framework="vllm"
    ),
    "moe, ep": dict(
        model="mixtral-8x7b", device="h100-sxm", output_len=128, tp=2, ep=4, expert_imbalance=1.3
    ),
    "mla, mtp": dict(
        model="deepseek-v3",
        device="h200",
        output_len=300,
        ep=8,
        attention_dp=True,
        precision="fp8",
        mtp_tokens=1,
        mtp_acceptance=0.85,
    ),
}


def _numbers(est) -> dict[str, np.ndarray]:
    return {f.name: np.asarray(getattr(est, f.name)) for f in fields(est)}


def _assert_same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    for name, x in a.items():
        if x.dtype.kind == "f":
            np.testing.assert_allclose(b[name], x, rtol=1e-12, atol=0, equal_nan=True, err_msg=name)
        else:
            np.testing.assert_array_equal(b[name], x, err_msg=name)


@pytest.mark.parametrize("shape,target", [((7,), 3), ((5, 6), 7), ((3, 4, 5), 4), ((2, 3), 100), ((), 1)])
def test_chunks_cover_every_point_once(shape, target):
    """Every point of the grid falls in exactly one chunk of at most ``target`` points."""
    hits = np.zeros(shape, dtype=int)
    for index in _chunks(shape, target):
        assert hits[index].size <= target
        hits[index] += 1
    assert np.all(hits == 1)


@pytest.mark.parametrize("case", list(CASES))
def test_a_sweep_priced_in_chunks_equals_it_priced_at_once(case, monkeypatch):
    kw = dict(CASES[case])
    model, device = kw.pop("model"), kw.pop("device")
    whole = _numbers(estimate(model, device, batch=BATCH, input_len=PROMPT, **kw))
    monkeypatch.setattr(estimate_module, "CHUNK_POINTS", 4)
    _assert_same(whole, _numbers(estimate(model, device, batch=BATCH, input_len=PROMPT, **kw)))


@pytest.mark.parametrize("case", ["dense, measured curves", "output axis", "mla, mtp"])
def test_chunks_priced_on_threads_equal_them_priced_in_turn(case, monkeypatch):
    """Three threads pricing 4-point chunks at once write every point's numbers as one thread does."""
    kw = dict(CASES[case])
    model, device = kw.pop("model"), kw.pop("device")
    monkeypatch.setattr(estimate_module, "CHUNK_POINTS", 4)
    monkeypatch.setattr(estimate_module, "THREAD_MIN_POINTS", 1)
    monkeypatch.setenv(estimate_module.THREADS_ENV, "1")
    alone = _numbers(estimate(model, device, batch=BATCH, input_len=PROMPT, **kw))
    monkeypatch.setenv(estimate_module.THREADS_ENV, "3")
    assert estimate_module.threads() == 3
    _assert_same(alone, _numbers(estimate(model, device, batch=BATCH, input_len=PROMPT, **kw)))


@pytest.mark.parametrize("raw", ["0", "-2", "two", ""])
def test_a_bad_thread_count_is_named(raw, monkeypatch):
    monkeypatch.setenv(estimate_module.THREADS_ENV, raw)
    with pytest.raises(ConfigError, match=f"HWSIM_THREADS={raw!r}; expected an integer >= 1"):
        estimate_module.threads()


@pytest.mark.parametrize("case", list(CASES))
def test_op_groups_price_as_the_whole_table(case, monkeypatch):
    """The GPU model priced op group by op group (``elementwise``) gives the numbers of the whole
    op table priced at once, within rounding."""
    kw = dict(CASES[case])
    model, device = kw.pop("model"), kw.pop("device")
    grouped = _numbers(estimate(model, device, batch=BATCH, input_len=PROMPT, **kw))
    monkeypatch.setattr(GpuCostModel, "elementwise", False)
    _assert_same(_numbers(estimate(model, device, batch=BATCH, input_len=PROMPT, **kw)), grouped)


COLUMNS = (
    "m",
    "n",
    "k",
    "keys",
    "flops",
    "weight_bytes",
    "act_in_bytes",
    "act_out_bytes",
    "kv_read_bytes",
    "link_bytes",
)


def _rows(table, sweep_shape) -> list[tuple]:
    """Each row of ``table`` as (name, kind, count, format, its columns' values over the sweep)."""
    rows = []
    for i in range(table.n_ops):
        values = []
        for c in COLUMNS:
            column = getattr(table, c)
            values.append(np.broadcast_to(column[i if len(column) > 1 else 0], sweep_shape).tobytes())
        rows.append((table.name[i], table.kind[i], table.count[i], table.fmt[i], *values))
    return rows


@pytest.mark.parametrize("phase", ["prefill", "decode"])
def test_op_groups_hold_the_table_rows(phase):
    """The groups together hold every row of ``build_ops`` with its values (a column one array
    fills for every op of a group has size 1 along the op axis): as it is, or summed into one
    row with the other rows of its kind that only move memory in proportion to the token rows
    (names joined by '+', one occurrence, bytes and launches times each part's occurrences)."""
    spec, quant = load_model("qwen3.5-397b-a17b"), Quant.from_name("fp8")
    kw = dict(
        phase=phase,
        batch=BATCH.astype(float),
        tokens=PROMPT.astype(float),
        context=PROMPT.astype(float),
        tp=8,
    )
    whole = build_ops(spec, quant, **kw)
    groups = list(build_op_groups(spec, quant, **kw))
    assert all(len(getattr(g, c)) in (1, g.n_ops) for g in groups for c in COLUMNS)
    kept, merged = [], []
    for g in groups:
        rows = _rows(g, whole.sweep_shape)
        for i, row in enumerate(rows):
            (merged if "+" in g.name[i] else kept).append((g, i, row))
    by_name = {whole.name[i]: i for i in range(whole.n_ops)}
    parts_seen = []
    for g, i, _ in merged:
        parts = [by_name[p] for p in g.name[i].split("+")]
        parts_seen += [_rows(whole, whole.sweep_shape)[j] for j in parts]
        assert g.count[i] == 1.0 and {whole.kind[j] for j in parts} == {g.kind[i]}
        assert g.n_kernels[i] == sum(whole.count[j] * whole.n_kernels[j] for j in parts)
        for c in COLUMNS:
            column, full = getattr(g, c), getattr(whole, c)
            value = np.broadcast_to(column[i if len(column) > 1 else 0], whole.sweep_shape)
            summed = sum(whole.count[j] * np.broadcast_to(full[j], whole.sweep_shape) for j in parts)
            np.testing.assert_allclose(value, summed, rtol=1e-12, err_msg=c)
            if c not in ("weight_bytes", "act_in_bytes", "act_out_bytes", "kv_read_bytes"):
                assert not np.any(value), f"{g.name[i]} merges rows with {c}"
    # the norms are one row; RoPE, the gates and the activations another
    names = {str(g.name[i]) for g, i, _ in merged}
    assert any(n.startswith("attn_norm+ffn_norm") for n in names)
    assert "rope+attn_gate+linear_conv+linear_gate_norm+shared_expert_act" in names
    assert sorted([r for _, _, r in kept] + parts_seen) == sorted(_rows(whole, whole.sweep_shape))


@pytest.mark.parametrize(
    ("files", "quota", "cpus"),
    [
        ({"cpu.max": "150000 100000\n"}, 1.5, 2),  # cgroup v2, --cpus 1.5
        ({"cpu.max": "max 100000\n"}, None, None),  # v2, no quota
        ({"cpu/cpu.cfs_quota_us": "100000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1.0, 1),  # v1
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None, None),  # v1, none
        ({"cpu.max": "garbled"}, None, None),
        ({}, None, None),  # no cgroup files
        ({"cpu.max": "100000000 100000\n"}, 1000.0, None),  # a quota above the affinity
    ],
)
def test_usable_cpus_is_the_affinity_within_the_cgroup_quota(tmp_path, files, quota, cpus):
    """A container's CPU quota (cgroup v2 ``cpu.max``, v1 ``cfs_quota_us / cfs_period_us``) caps
    the CPUs hwsim's pools (and the test workers) use, rounded up; with none, or one above it, the
    process's affinity stands."""
    from roofline.cpus import cpu_quota, usable_cpus

    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    affinity = len(os.sched_getaffinity(0))
    assert cpu_quota(tmp_path) == quota
    assert usable_cpus(tmp_path) == (min(cpus, affinity) if cpus else affinity)
