"""hwsim's routed experts against TensorRT-LLM's timed fused MoE (``roofline/moe_check.py``)."""

import numpy as np
import pandas as pd
import yaml

from hwmodels.calibration.curves import fitted_curves_path
from hwmodels.device_spec import catalog
from roofline.kernel_data import load_kernels
from roofline.moe_check import errors, frames, moe_shape, predict_moe_layers


def test_each_timed_shape_is_its_presets_routed_experts():
    rows = load_kernels("moe_trtllm")
    for model, mine in rows.groupby("model"):
        shapes = set(mine[["hidden", "inter", "topk", "experts"]].itertuples(index=False, name=None))
        assert shapes == {moe_shape(str(model))}, model


def test_a_layer_never_takes_less_than_its_touched_experts_weights_at_full_bandwidth():
    """Hand count of the roofline floor: hwsim routes tokens uniformly at random, so a layer of T
    tokens touches E (1 - (1 - k/E)^T) of its E experts in expectation (k per token), each holding
    3 x hidden x inter / tp weights (gate, up, down) of 2 bytes (BF16) or 1 (FP8); streaming them
    at the H100's 3.35 TB/s is the least time."""
    rows = load_kernels("moe_trtllm")
    predicted = predict_moe_layers(rows)
    e, k = rows["experts"], rows["topk"]
    touched = e * (1 - (1 - k / e) ** rows["tokens"])
    weight_bytes = np.where(rows["dtype"] == "bf16", 2.0, 1.0)
    floor = touched * 3 * rows["hidden"] * rows["inter"] / rows["tp"] * weight_bytes
    floor = floor / catalog()["h100-sxm"].memory.bw_bytes_per_s
    assert (predicted >= floor.to_numpy() * 0.999).all()
    # Mixtral-8x7B, BF16, TP 1, one token: its two experts' 2 x 3 x 4096 x 14336 x 2 B = 705 MB
    one = rows[
        (rows["model"] == "mixtral-8x7b")
        & (rows["dtype"] == "bf16")
        & (rows["tp"] == 1)
        & (rows["tokens"] == 1)
    ]
    assert predicted[one.index[0]] >= 704.6e6 / 3.35e12


def test_more_tokens_never_take_less_time():
    rows = load_kernels("moe_trtllm")
    rows = rows.assign(predicted=predict_moe_layers(rows))
    for _, mine in rows.groupby(["model", "dtype", "tp"]):
        assert (np.diff(mine.sort_values("tokens")["predicted"].to_numpy()) >= 0).all()


def test_the_recorded_check_is_the_pricing_in_use():
    record = yaml.safe_load(fitted_curves_path().read_text())["errors"]["trtllm_moe_check"]
    ape = errors()
    assert record["rows"] == len(ape)
    assert abs(record["median_ape"] - np.median(ape)) < 0.005
    assert abs(record["p90_ape"] - np.quantile(ape, 0.9)) < 0.005


def test_the_report_charts_one_preset_per_frame():
    out = frames()
    assert len(out) == load_kernels("moe_trtllm")["model"].nunique()
    for (kind, _), frame in out.items():
        assert kind == "fused_moe"
        assert list(frame) == ["panel", "x", "series", "measured", "predicted"]
        assert isinstance(frame, pd.DataFrame) and (frame["predicted"] > 0).all()
