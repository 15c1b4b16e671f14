"""Measure GEMM rate, board power and SM clock on one NVIDIA GPU, in a short burst and sustained.

Kernel timings in public sets (aiconfigurator's collectors, vendor tables) time a few calls back
to back; a prefill runs its GEMMs for seconds, long enough for the board's power limit to lower
the clocks. This times each shape both ways, captured as a CUDA graph of ``REPEAT`` calls and
replayed (host launch cost out of the timing): ``burst`` is one replay after a second idle,
``sustained`` is replays for ``SUSTAIN_S`` seconds, with the board's energy counter (NVML, GPU
only) and the SM clock read half way. It also times HF Transformers' RMSNorm (FP32 upcast) and a
plain copy, for the memory side. It needs PyTorch with CUDA and ``nvidia-ml-py``::

    python3 benchmarks/measure_gemm_power.py --out results/gemm_h200
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from row_log import RowLog

# (m, n, k): Llama-3.1-8B's prefill projections (fused QKV, fused gate/up, down) at 2048 and
# 8192 tokens, and the 8192 cube.
SHAPES = [
    (2048, 6144, 4096),
    (2048, 28672, 4096),
    (2048, 4096, 14336),
    (8192, 6144, 4096),
    (8192, 28672, 4096),
    (8192, 4096, 14336),
    (8192, 8192, 8192),
]
FP8_SHAPES = [(8192, 28672, 4096), (2048, 28672, 4096)]
REPEAT = 10
SUSTAIN_S = 2.0


def nvml():
    import pynvml

    pynvml.nvmlInit()
    h = pynvml.nvmlDeviceGetHandleByIndex(0)
    return {
        "joules": lambda: pynvml.nvmlDeviceGetTotalEnergyConsumption(h) / 1000.0,
        "power_w": lambda: pynvml.nvmlDeviceGetPowerUsage(h) / 1000.0,
        "sm_mhz": lambda: pynvml.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_SM),
    }


def graph_of(fn) -> torch.cuda.CUDAGraph:
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(2):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(REPEAT):
            fn()
    return graph


def timed(graph: torch.cuda.CUDAGraph, n: int, meter, read_midway: bool) -> tuple[float, dict]:
    """Seconds per call over ``n`` replays, and the energy (J per call), power and clock."""
    begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    e0 = meter["joules"]()
    begin.record()
    for _ in range(n):
        graph.replay()
    end.record()
    seen = {}
    if read_midway:
        time.sleep(SUSTAIN_S / 2)
        seen = {"sm_mhz": meter["sm_mhz"](), "power_w_midway": meter["power_w"]()}
    torch.cuda.synchronize()
    e1 = meter["joules"]()
    seconds = begin.elapsed_time(end) / 1000.0
    calls = n * REPEAT
    return seconds / calls, {"energy_j": (e1 - e0) / calls, "avg_power_w": (e1 - e0) / seconds, **seen}


def measure(name: str, fn, flops: float, nbytes: float, meter) -> dict:
    graph = graph_of(fn)
    graph.replay()
    torch.cuda.synchronize()
    time.sleep(1.0)  # cool down, then two warm replays: a burst as kernel collectors time one
    graph.replay()
    graph.replay()
    burst, _ = timed(graph, 1, meter, read_midway=False)
    n = max(3, int(SUSTAIN_S / max(burst * REPEAT, 1e-6)))
    sustained, info = timed(graph, n, meter, read_midway=True)
    row = {
        "case": name,
        "flops": flops,
        "bytes": nbytes,
        "burst_us": round(burst * 1e6, 2),
        "sustained_us": round(sustained * 1e6, 2),
        "burst_tflops": round(flops / burst / 1e12, 1),
        "sustained_tflops": round(flops / sustained / 1e12, 1),
        "sustained_tbps": round(nbytes / sustained / 1e12, 3),
        "energy_j": round(info["energy_j"], 6),
        "avg_power_w": round(info["avg_power_w"], 1),
        "power_w_midway": info.get("power_w_midway"),
        "sm_mhz_midway": info.get("sm_mhz"),
    }
    del graph
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for cases.csv and env.json")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    meter = nvml()
    time.sleep(2)
    env = {
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "gpu": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "idle_power_w": meter["power_w"](),
        "idle_sm_mhz": meter["sm_mhz"](),
    }
    (args.out / "env.json").write_text(json.dumps(env, indent=2))
    print(env, flush=True)
    kw = {"device": "cuda", "dtype": torch.bfloat16}
    cases = []
    for m, n, k in SHAPES:
        a, w = torch.randn(m, k, **kw), torch.randn(n, k, **kw) * 0.02
        out = torch.empty(m, n, **kw)
        cases.append(
            (
                f"bf16 {m}x{n}x{k}",
                lambda a=a, w=w, out=out: torch.matmul(a, w.t(), out=out),
                2.0 * m * n * k,
                2.0 * (m * k + n * k + m * n),
            )
        )
    for m, n, k in FP8_SHAPES:
        a = torch.randn(m, k, **kw).to(torch.float8_e4m3fn)
        w = (torch.randn(n, k, **kw) * 0.02).to(torch.float8_e4m3fn)
        one = torch.ones((), device="cuda", dtype=torch.float32)

        def fp8(a=a, w=w, one=one):
            return torch._scaled_mm(a, w.t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16)

        cases.append((f"fp8 {m}x{n}x{k}", fp8, 2.0 * m * n * k, m * k + n * k + 2.0 * m * n))
    x = torch.randn(2048, 4096, **kw)
    g = torch.ones(4096, **kw)

    def hf_rmsnorm(x=x, g=g):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + 1e-5)).to(x.dtype) * g

    cases.append(("hf-rmsnorm 2048x4096", hf_rmsnorm, 0.0, 2.0 * x.numel() * 2))
    big = torch.empty(1 << 30, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(big)
    cases.append(("copy 1 GiB", lambda: dst.copy_(big), 0.0, 2.0 * big.numel()))

    with RowLog(args.out / "cases.csv") as log:
        for name, fn, flops, nbytes in cases:
            try:
                log.write(measure(name, fn, flops, nbytes, meter))
            except Exception as exc:  # one unsupported case (an FP8 path) must not stop the rest
                print(f"{name}: failed ({type(exc).__name__}: {exc})", flush=True)


if __name__ == "__main__":
    main()
