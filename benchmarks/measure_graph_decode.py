"""Measure a dense decoder's decode step and prefill on one NVIDIA GPU, replayed as a CUDA graph.

The host is taken out of the measurement: each case is captured once as a CUDA graph and replayed
back to back, so the time is the device's (kernels and the gaps between graph nodes), whatever
the host or its sandbox costs per launch. It needs PyTorch with CUDA and ``nvidia-ml-py``; it
does not import hwsim::

    python3 benchmarks/measure_graph_decode.py --out results/graph_h200

The layer is a Llama decoder written in plain PyTorch, the way serving engines lay it out:
fused QKV and gate/up projections (cuBLAS through ``F.linear``), RMSNorm, rotary embedding and
SiLU-and-multiply as separate PyTorch kernels, K and V written into a preallocated cache,
attention by ``F.scaled_dot_product_attention`` (GQA), BF16 throughout, random weights (a dense
model's time does not depend on the weights' values), every layer its own weights. Shapes are
the presets' (``workloads/presets``).

Per case it records ``step_s`` (device seconds per decode step, or per prefill forward of
``batch x context`` tokens), ``energy_j`` per step from the board's energy counter (NVML
``nvmlDeviceGetTotalEnergyConsumption``: GPU only) over at least two seconds of replays, and the
average board power. ``env.json`` has the GPU, driver, idle power and package versions.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from row_log import RowLog

PRESETS = Path(__file__).resolve().parent.parent / "workloads" / "presets"

# (model, phase, batch, context): decode steps read `context` cached tokens; a prefill runs
# batch x context new tokens with causal attention.
CASES = [
    ("llama-3.1-8b", "decode", 1, 1024),
    ("llama-3.1-8b", "decode", 8, 1024),
    ("llama-3.1-8b", "decode", 32, 1024),
    ("llama-3.1-8b", "decode", 64, 1024),
    ("llama-3.1-8b", "decode", 128, 1024),
    ("llama-3.1-8b", "decode", 256, 1024),
    ("llama-3.1-8b", "decode", 32, 4096),
    ("llama-3.1-8b", "decode", 1, 16384),
    ("llama-3.1-8b", "prefill", 1, 2048),
    ("llama-3.1-8b", "prefill", 4, 2048),
    ("qwen2.5-32b", "decode", 1, 1024),
    ("qwen2.5-32b", "decode", 16, 1024),
    ("qwen2.5-32b", "decode", 64, 1024),
    ("qwen2.5-32b", "prefill", 1, 2048),
]
MIN_SECONDS = 2.0


class Decoder:
    """Random-weight Llama-style decoder layers with a static KV cache for ``batch x context``."""

    def __init__(self, cfg: dict, batch: int, context: int, phase: str, device: str) -> None:
        self.h = cfg["hidden_size"]
        self.nh = cfg["num_attention_heads"]
        self.kv = cfg.get("num_key_value_heads", self.nh)
        self.d = cfg.get("head_dim") or self.h // self.nh
        self.f = cfg["intermediate_size"]
        self.eps = cfg.get("rms_norm_eps", 1e-6)
        self.bias = bool(cfg.get("attention_bias", cfg.get("model_type") == "qwen2"))
        kw = {"device": device, "dtype": torch.bfloat16}
        qkv = (self.nh + 2 * self.kv) * self.d

        def w(*shape: int) -> torch.Tensor:
            return torch.randn(*shape, **kw) * 0.02

        self.layers = [
            {
                "qkv": w(qkv, self.h),
                "qkv_b": w(qkv) if self.bias else None,
                "o": w(self.h, self.nh * self.d),
                "gu": w(2 * self.f, self.h),
                "down": w(self.h, self.f),
                "n1": torch.ones(self.h, **kw),
                "n2": torch.ones(self.h, **kw),
            }
            for _ in range(cfg["num_hidden_layers"])
        ]
        self.norm = torch.ones(self.h, **kw)
        self.head = w(cfg["vocab_size"], self.h)
        new = 1 if phase == "decode" else context
        cached = context if phase == "decode" else context
        self.k = [torch.zeros(batch, self.kv, cached, self.d, **kw) for _ in self.layers]
        self.v = [torch.zeros(batch, self.kv, cached, self.d, **kw) for _ in self.layers]
        self.x = w(batch, new, self.h)
        self.pos = (
            torch.full((new,), context - 1, device=device)
            if phase == "decode"
            else torch.arange(new, device=device)
        )
        inv = 1.0 / (
            cfg.get("rope_theta", 10000.0) ** (torch.arange(0, self.d, 2, device=device).float() / self.d)
        )
        ang = self.pos.float()[:, None] * inv[None, :]
        self.cos, self.sin = (t[:, None, :].to(torch.bfloat16) for t in (ang.cos(), ang.sin()))
        self.causal = phase == "prefill"

    def rms(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype) * g

    def rope(self, t: torch.Tensor) -> torch.Tensor:
        a, b = t[..., : self.d // 2], t[..., self.d // 2 :]
        return torch.cat((a * self.cos - b * self.sin, b * self.cos + a * self.sin), dim=-1)

    def step(self) -> torch.Tensor:
        x = self.x
        bsz, new, _ = x.shape
        for lw, kc, vc in zip(self.layers, self.k, self.v, strict=True):
            h = self.rms(x, lw["n1"])
            qkv = F.linear(h, lw["qkv"], lw["qkv_b"])
            q, k, v = qkv.split([self.nh * self.d, self.kv * self.d, self.kv * self.d], dim=-1)
            q = self.rope(q.view(bsz, new, self.nh, self.d)).transpose(1, 2)
            k = self.rope(k.view(bsz, new, self.kv, self.d)).transpose(1, 2)
            kc.index_copy_(2, self.pos, k)
            vc.index_copy_(2, self.pos, v.view(bsz, new, self.kv, self.d).transpose(1, 2))
            att = F.scaled_dot_product_attention(q, kc, vc, is_causal=self.causal, enable_gqa=True)
            x = x + F.linear(att.transpose(1, 2).reshape(bsz, new, self.nh * self.d), lw["o"])
            g, u = F.linear(self.rms(x, lw["n2"]), lw["gu"]).chunk(2, dim=-1)
            x = x + F.linear(F.silu(g) * u, lw["down"])
        return F.linear(self.rms(x[:, -1:], self.norm), self.head).argmax(-1)


def energy_counter():
    try:
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    except Exception as exc:  # no NVML, no GPU or no counter
        print(f"energy counter unavailable: {exc}")
        return None, None
    return (
        lambda: pynvml.nvmlDeviceGetTotalEnergyConsumption(handle) / 1000.0,
        lambda: pynvml.nvmlDeviceGetPowerUsage(handle) / 1000.0,
    )


def measure(model: Decoder, joules) -> dict:
    cuda = torch.cuda.is_available()
    if not cuda:  # a CPU check of the shapes (--quick)
        start = time.perf_counter()
        model.step()
        return {"step_s": time.perf_counter() - start, "replays": 1, "energy_j": None, "avg_power_w": None}
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            model.step()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        model.step()
    graph.replay()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    graph.replay()
    torch.cuda.synchronize()
    once = time.perf_counter() - t0
    n = max(5, int(MIN_SECONDS / max(once, 1e-5)))
    begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    e0 = joules() if joules else None
    begin.record()
    for _ in range(n):
        graph.replay()
    end.record()
    torch.cuda.synchronize()
    e1 = joules() if joules else None
    seconds = begin.elapsed_time(end) / 1000.0
    del graph
    energy = None if e0 is None else (e1 - e0) / n
    return {
        "step_s": round(seconds / n, 7),
        "replays": n,
        "energy_j": None if energy is None else round(energy, 5),
        "avg_power_w": None if energy is None else round(energy * n / seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for cases.csv and env.json")
    parser.add_argument("--quick", action="store_true", help="tiny shapes on the CPU (a check of the code)")
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    args.out.mkdir(parents=True, exist_ok=True)
    joules, power = energy_counter()
    time.sleep(0 if args.quick else 3)
    env = {
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "idle_power_w": power() if power else None,
    }
    (args.out / "env.json").write_text(json.dumps(env, indent=2))
    print(env, flush=True)
    with RowLog(args.out / "cases.csv") as log:
        for name, phase, batch, context in CASES:
            cfg = json.loads((PRESETS / f"{name}.json").read_text())
            if args.quick:
                cfg.update(
                    num_hidden_layers=2, hidden_size=256, intermediate_size=512, vocab_size=1024, head_dim=64
                )
                cfg.update(num_attention_heads=4, num_key_value_heads=2)
                batch, context = min(batch, 2), min(context, 64)
            try:
                model = Decoder(cfg, batch, context, phase, device)
                log.write(
                    {
                        "model": name,
                        "phase": phase,
                        "batch": batch,
                        "context": context,
                        **measure(model, joules),
                    }
                )
            except torch.OutOfMemoryError as exc:
                print(f"{name} {phase} {batch}x{context}: out of memory ({exc})", flush=True)
            finally:
                model = None
                if device == "cuda":
                    torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
