"""The device catalog: every entry loads, carries sources, and bad files are refused clearly."""

import copy
import re

import pytest
import yaml

from hwmodels.device_spec import catalog, device_names, load_device, memory_energy_j_per_byte, parse_device
from workloads.errors import ConfigError, UnknownNameError

REQUIRED_GPUS = {
    "v100-sxm2-32gb",
    "a100-sxm-40gb",
    "a100-sxm-80gb",
    "a6000",
    "a10",
    "t4",
    "l4",
    "l40s",
    "h100-sxm",
    "h100-pcie",
    "h20",
    "h800",
    "h200",
    "b200",
    "rtx-3090",
    "rtx-4090",
}


def test_required_devices_are_in_the_catalog():
    assert REQUIRED_GPUS <= set(device_names("gpu"))
    assert {"host-ddr4", "host-ddr5", "pcie-gen3-x16", "pcie-gen4-x16", "pcie-gen5-x16", "nvme-ssd"} <= set(
        catalog()
    )


@pytest.mark.parametrize("name", sorted(catalog()))
def test_entry_is_sourced_and_sane(name):
    d = catalog()[name]
    assert re.fullmatch(r"[a-z0-9][a-z0-9.\-]*", name)
    if d.arch in ("gpu", "cpu"):
        assert d.compute_source and d.memory.source and d.power_source
        assert max(d.peak_flop_per_s.values()) > 1e10 and d.memory.bw_bytes_per_s > 1e10 and d.tdp_w > 3
        assert d.price_usd or d.cloud_usd_per_hour, (
            "every compute device needs a price basis for tokens per $"
        )
        assert (d.price_usd is None) == (not d.price_source)


def test_dense_peaks_match_datasheets():
    """Spot checks against NVIDIA's dense figures (docs/hardware-sources.md 1a)."""
    assert load_device("h100-sxm").peak("bf16") == pytest.approx(989.4e12)
    assert load_device("a100-sxm-80gb").memory.bw_bytes_per_s == pytest.approx(2039e9)
    assert load_device("v100-sxm2-32gb").peak("bf16") == load_device("v100-sxm2-32gb").peak(
        "fp16"
    )  # falls back


def test_cut_down_parts_price_as_their_cuts():
    """The RTX 4090 D is the 4090 with 114 of its 128 SMs and the same memory: a prefill is
    compute-bound and slower by about the SM ratio, a batch-1 decode streams the same weights at
    the same bandwidth. The V100 PCIe card's boost clock and tensor peak are below the SXM2
    part's on the same HBM2."""
    from roofline.estimate import estimate

    full, cut = (
        estimate(model="llama-3.1-8b", device=d, batch=1, input_len=2048, output_len=64)
        for d in ("rtx-4090", "rtx-4090d")
    )
    assert 1.05 < cut.ttft_s / full.ttft_s <= 128 / 114 + 1e-9
    assert cut.tpot_s == pytest.approx(full.tpot_s, rel=0.02)
    assert load_device("v100-pcie-32gb").peak("fp16") < load_device("v100-sxm2-32gb").peak("fp16")
    assert (
        load_device("v100-pcie-32gb").memory.bw_bytes_per_s
        == load_device("v100-sxm2-16gb").memory.bw_bytes_per_s
    )


def test_memory_energy_types_have_sources():
    for name, (j, src) in memory_energy_j_per_byte().items():
        assert 0 < j < 1e-9 and src, name


def _raw(name):
    from importlib.resources import files

    return yaml.safe_load(files("hwmodels.catalog").joinpath(f"{name}.yaml").read_text())


def test_unknown_field_is_refused_with_its_name():
    raw = copy.deepcopy(_raw("a10"))
    raw["memory"]["bandwidth"] = 1
    with pytest.raises(ConfigError, match="bandwidth"):
        parse_device(raw, "a10.yaml")


def test_missing_source_is_refused():
    raw = copy.deepcopy(_raw("a10"))
    del raw["power"]["source"]
    with pytest.raises(ConfigError, match="source"):
        parse_device(raw, "a10.yaml")


def test_gpu_block_needs_sm_count_and_clock():
    raw = copy.deepcopy(_raw("a10"))
    del raw["gpu"]["boost_clock_GHz"]
    with pytest.raises(ConfigError, match="boost_clock_GHz"):
        parse_device(raw, "a10.yaml")


def test_non_positive_number_names_field_and_value():
    raw = copy.deepcopy(_raw("a10"))
    raw["memory"]["bw_GBps"] = -5
    with pytest.raises(ConfigError, match=r"bw_GBps is -5"):
        parse_device(raw, "a10.yaml")


def test_device_lookup_ignores_case_and_lists_closest():
    assert load_device("H100-SXM").name == "h100-sxm"
    with pytest.raises(UnknownNameError, match="h100-sxm"):
        load_device("h100-sxm6")


def test_device_from_yaml_path(tmp_path):
    raw = copy.deepcopy(_raw("a10"))
    raw["name"] = "my-a10"
    path = tmp_path / "my-a10.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert load_device(str(path)).name == "my-a10"


NEW_DATACENTER_PARTS = {
    "b300",
    "gb300",
    "gh200",
    "gh200-96gb",
    "mi325x",
    "mi355x",
    "gaudi3",
    "tpu-v5e",
    "tpu-v6e",
    "trainium2",
    "ascend-910b",
    "a800",
    "jetson-agx-orin-64gb",
    "jetson-agx-thor",
}


def test_accelerators_beyond_hopper_are_in_the_catalog():
    assert NEW_DATACENTER_PARTS <= set(device_names("gpu"))
    assert {"alveo-u280", "versal-vhk158"} <= set(device_names("fpga"))


def test_sparse_peaks_are_kept_apart_and_estimates_read_the_dense_ones():
    b300 = load_device("b300")
    assert b300.peak("fp8") == pytest.approx(4500e12)
    assert b300.peak_flop_per_s_sparse["fp8"] == pytest.approx(9000e12)
    assert load_device("trainium2").peak("bf16") == pytest.approx(667e12)
    assert load_device("gaudi3").peak_flop_per_s_sparse == {}  # no sparsity mode: nothing stored
    scaled = b300.scaled(compute=0.5)
    assert scaled.peak_flop_per_s_sparse["fp8"] == pytest.approx(4500e12)


def test_every_sparse_peak_is_at_least_its_dense_peak():
    for d in catalog().values():
        for fmt, sparse in d.peak_flop_per_s_sparse.items():
            assert sparse >= d.peak_flop_per_s[fmt], (d.name, fmt)


def test_sparse_peak_below_dense_is_refused_naming_file_and_field():
    raw = copy.deepcopy(_raw("b300"))
    raw["compute"]["peak_TFLOPs_sparse"]["fp8"] = 2250  # half the dense 4500: the two swapped
    with pytest.raises(ConfigError, match=r"b300\.yaml: compute\.peak_TFLOPs_sparse\.fp8 is 2250, below"):
        parse_device(raw, "hwmodels/catalog/b300.yaml")


def test_sparse_peak_without_a_dense_one_is_refused():
    raw = copy.deepcopy(_raw("a10"))
    raw["compute"]["peak_TFLOPs_sparse"] = {"fp8": 500}
    with pytest.raises(ConfigError, match=r"a10\.yaml: compute\.peak_TFLOPs_sparse\.fp8 has no dense"):
        parse_device(raw, "a10.yaml")


def test_sparse_peak_must_be_positive():
    raw = copy.deepcopy(_raw("a10"))
    raw["compute"]["peak_TFLOPs_sparse"] = {"fp16": 0}
    with pytest.raises(ConfigError, match=r"peak_TFLOPs_sparse\.fp16 is 0"):
        parse_device(raw, "a10.yaml")


def test_fpga_block_is_parsed_and_checked():
    u280 = load_device("alveo-u280")
    assert u280.arch == "fpga" and u280.extra["fpga"]["dsp_count"] == 9024
    assert u280.memory.bw_bytes_per_s == pytest.approx(460e9)
    raw = copy.deepcopy(_raw("alveo-u280"))
    raw["fpga"]["lut_count"] = {"value": 1, "source": "x"}
    with pytest.raises(ConfigError, match="lut_count"):
        parse_device(raw, "alveo-u280.yaml")
    raw = copy.deepcopy(_raw("alveo-u280"))
    raw["fpga"]["clock_MHz"]["value"] = -1
    with pytest.raises(ConfigError, match=r"fpga\.clock_MHz\.value is -1"):
        parse_device(raw, "alveo-u280.yaml")


@pytest.mark.parametrize("name", ["gb200-nvl72", "gb300-nvl72", "8xb300-hgx"])
def test_rack_and_board_systems_load_with_nvlink5(name):
    from sim.system import load_system

    system = load_system(name)
    nvlink = system.gpu_link("tp")
    assert nvlink.name == "nvlink" and nvlink.bw_bytes_per_s == pytest.approx(900e9)
    assert system.tp * system.pp * system.ep * system.dp == system.devices["gpu"][1]
    assert system.links["network"].bw_bytes_per_s < nvlink.bw_bytes_per_s


def test_sustained_gemm_rate_is_parsed_and_checked():
    assert load_device("h200").sustained_gemm["fp8"] == 1200e12
    raw = copy.deepcopy(_raw("a10"))
    raw["power"]["sustained_gemm"] = {"fp16": 100, "source": "a measurement"}
    assert parse_device(raw, "a10.yaml").sustained_rate("bf16") == 100e12
    raw["power"]["sustained_gemm"] = {"fp16": 200}
    with pytest.raises(ConfigError, match=r"power\.sustained_gemm\.source is missing"):
        parse_device(raw, "a10.yaml")
    raw["power"]["sustained_gemm"] = {"fp16": 200, "source": "s"}  # the A10's dense fp16 peak is 125
    with pytest.raises(
        ConfigError, match=r"sustained_gemm\.fp16 is 200 TFLOP/s; expected at most the dense peak 125"
    ):
        parse_device(raw, "a10.yaml")
    raw["power"]["sustained_gemm"] = {"fp4": 10, "source": "s"}
    with pytest.raises(ConfigError, match=r"sustained_gemm\.fp4: no compute peak for 'fp4'"):
        parse_device(raw, "a10.yaml")
    raw["power"]["sustained_gemm"] = {"fp16": -1, "source": "s"}
    with pytest.raises(ConfigError, match=r"sustained_gemm\.fp16"):
        parse_device(raw, "a10.yaml")


def test_the_memory_total_the_driver_reports_is_parsed_and_checked():
    """``visible_GiB``: the total CUDA reports (79.18 of an H100 SXM's 80 GiB), which engines size
    their KV pools from; a device without one uses its capacity; a total above the capacity or
    without its source is refused by name."""
    assert load_device("h100-sxm").memory.visible_bytes == 79.18 * 2**30
    assert load_device("a10").memory.visible_bytes is None
    raw = copy.deepcopy(_raw("a10"))
    raw["memory"].update(visible_GiB=22.06, visible_source="a log")
    assert parse_device(raw, "a10.yaml").memory.visible_bytes == 22.06 * 2**30
    raw["memory"]["visible_GiB"] = 30
    with pytest.raises(ConfigError, match=r"visible_GiB is 30; expected at most the capacity, 24 GiB"):
        parse_device(raw, "a10.yaml")
    raw["memory"]["visible_GiB"] = 22.06
    del raw["memory"]["visible_source"]
    with pytest.raises(ConfigError, match="needs a visible_source"):
        parse_device(raw, "a10.yaml")
    raw["memory"]["visible_GiB"] = -1
    with pytest.raises(ConfigError, match=r"visible_GiB is -1"):
        parse_device(raw, "a10.yaml")


def test_a_memorys_load_latency_is_parsed_in_ns_and_needs_its_source():
    """``load_latency_ns``: the RTX 4090's 255.7 ns (a pointer chase beyond its L2) in seconds; a
    device without one has none; a value outside 1 ns to 1 ms or without its source is refused by name."""
    assert load_device("rtx-4090").memory.load_latency_s == pytest.approx(255.7e-9)
    assert load_device("a10").memory.load_latency_s is None
    raw = copy.deepcopy(_raw("a10"))
    raw["memory"].update(load_latency_ns=300, load_latency_source="a log")
    assert parse_device(raw, "a10.yaml").memory.load_latency_s == pytest.approx(300e-9)
    raw["memory"]["load_latency_ns"] = 0.5
    with pytest.raises(
        ConfigError, match=r"memory\.load_latency_ns is 0\.5; expected a positive number from 1"
    ):
        parse_device(raw, "a10.yaml")
    raw["memory"]["load_latency_ns"] = 300
    del raw["memory"]["load_latency_source"]
    with pytest.raises(ConfigError, match="needs a load_latency_source"):
        parse_device(raw, "a10.yaml")


def test_resident_blocks_per_sm_are_an_optional_whole_count_of_the_gpu_block():
    """``gpu.max_resident_blocks_per_sm`` (CUDA's limit by compute capability: 32 on the A100, 24 on
    the RTX 4090) is read where stated and absent elsewhere; a fraction or zero is refused by name."""
    assert load_device("a100-pcie-80gb").extra["gpu"]["max_resident_blocks_per_sm"] == 32
    assert load_device("rtx-4090").extra["gpu"]["max_resident_blocks_per_sm"] == 24
    raw = copy.deepcopy(_raw("a100-pcie-80gb"))
    del raw["gpu"]["max_resident_blocks_per_sm"]
    assert "max_resident_blocks_per_sm" not in parse_device(raw, "a100.yaml").extra["gpu"]
    for bad in (0, 2.5):
        raw["gpu"]["max_resident_blocks_per_sm"] = {"value": bad, "source": "a table"}
        with pytest.raises(ConfigError, match=rf"gpu\.max_resident_blocks_per_sm\.value.*{bad}"):
            parse_device(raw, "a100.yaml")


def test_an_engine_sizes_its_pool_from_the_total_the_driver_reports():
    """vLLM's pool is 0.9 of the total CUDA reports less weights, activations and reserve: the
    0.82 GiB an H100 SXM's driver keeps of its 80 GiB take 0.9 x 0.82 GiB from the pool."""
    from dataclasses import replace

    from hwmodels.engine_config import engine_for, kv_capacity
    from workloads.model_spec import load_model
    from workloads.quant import Quant

    spec, q, h100 = load_model("llama-3.1-8b"), Quant.from_name("bf16"), load_device("h100-sxm")
    engine = engine_for("vllm").for_device(h100)
    whole = replace(h100, memory=replace(h100.memory, visible_bytes=None))
    lost = kv_capacity(spec, q, whole, engine).kv_bytes - kv_capacity(spec, q, h100, engine).kv_bytes
    assert lost == pytest.approx(0.9 * 0.82 * 2**30, abs=16 * 131072)
