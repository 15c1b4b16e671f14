"""Measure HuggingFace Transformers generation on one NVIDIA GPU: time and GPU energy.

This is how hwsim's own measured rows ``hm*`` (``hwmodels/validation/measured.csv``) were taken.
It needs a CUDA GPU, PyTorch, Transformers and ``nvidia-ml-py``; it does not import hwsim, so it
runs on a machine where only those are installed::

    python3 benchmarks/measure_hf_decode.py --out results/hf_h200

Models are built from the presets' ``config.json`` (``workloads/presets``) with random weights in
BF16 (nothing is downloaded: the time and energy of a dense model do not depend on its weights'
values), attention ``sdpa``, and run through ``model.generate`` with greedy decoding, the default
``DynamicCache`` and no end-of-sequence stop, which is how a user of Transformers runs them.

Per case (model, batch, prompt length, output length) it records:

- ``ttft_s``: wall time of ``generate(max_new_tokens=1)``, the median of three after a warm-up;
- ``e2e_s``: wall time of ``generate(max_new_tokens=output_len, min_new_tokens=output_len)``;
- ``tpot_s``: ``(e2e_s - ttft_s) / (output_len - 1)``;
- ``energy_j``: the GPU's own energy counter (NVML ``nvmlDeviceGetTotalEnergyConsumption``, the
  board's power meter, GPU only: no host, fans or power supply) over the ``e2e_s`` run.

Two launch-bound probes (a 256-wide Llama with 2 and 16 layers, batch 1) time a decode step and
count its kernels with the PyTorch profiler: the slope over layers is the host's time per layer,
which over the kernels per layer gives the eager launch cost per kernel, and the intercept the
per-step work of ``generate`` outside the layers. ``env.json`` records the GPU, driver, CPU and
package versions; ``idle_power_w`` the board's power with nothing running.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import time
from pathlib import Path

import torch
import transformers
from row_log import RowLog

PRESETS = Path(__file__).resolve().parent.parent / "workloads" / "presets"

CASES: dict[str, list[tuple[int, int]]] = {
    # model preset: (batch, prompt length) pairs, each decoded for OUTPUT_LEN tokens
    "llama-3.1-8b": [(1, 512), (16, 512), (64, 512), (128, 512), (1, 2048), (16, 2048), (64, 2048)],
    "llama-2-7b": [(1, 512), (16, 512), (64, 512), (16, 2048)],
    "qwen2.5-32b": [(1, 512), (16, 512), (64, 512), (1, 2048), (16, 2048)],
}
OUTPUT_LEN = 128
PROBE_LAYERS = (2, 16)


class EnergyMeter:
    """The GPU board's cumulative energy counter through NVML (mJ), or None where unsupported."""

    def __init__(self) -> None:
        try:
            import pynvml

            pynvml.nvmlInit()
            self._nvml = pynvml
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(0)
            pynvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)
        except Exception as exc:  # no NVML, no GPU or no counter: energy is not recorded
            print(f"energy counter unavailable: {exc}")
            self._nvml = None

    def joules(self) -> float | None:
        if self._nvml is None:
            return None
        return self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle) / 1000.0

    def power_w(self) -> float | None:
        if self._nvml is None:
            return None
        return self._nvml.nvmlDeviceGetPowerUsage(self._handle) / 1000.0


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def build(config: dict, device: str) -> torch.nn.Module:
    """A causal LM with random BF16 weights on ``device`` from a HuggingFace config dict."""
    config = dict(config)
    cfg = transformers.AutoConfig.for_model(config.pop("model_type"), **config)
    cfg._attn_implementation = "sdpa"
    with torch.device(device):
        model = transformers.AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    return model.eval()


def generate(model: torch.nn.Module, ids: torch.Tensor, new_tokens: int) -> float:
    """Wall seconds of one greedy ``generate`` call that emits exactly ``new_tokens`` tokens."""
    sync()
    start = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
        )
    sync()
    elapsed = time.perf_counter() - start
    assert out.shape[1] == ids.shape[1] + new_tokens, out.shape
    return elapsed


def kernels_per_decode_step(model: torch.nn.Module, ids: torch.Tensor) -> int:
    """Device kernels (and copies) one decode forward launches, by the PyTorch profiler."""
    from torch.profiler import ProfilerActivity, profile

    with torch.inference_mode():
        out = model(ids, use_cache=True)
        nxt = out.logits[:, -1:].argmax(-1)
        sync()
        activities = [ProfilerActivity.CUDA] if torch.cuda.is_available() else [ProfilerActivity.CPU]
        with profile(activities=activities) as prof:
            model(nxt, past_key_values=out.past_key_values, use_cache=True)
            sync()
    if torch.cuda.is_available():
        return sum(1 for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA)
    return len(prof.events())  # a CPU run (--quick) counts host ops instead


def run_case(model, device, batch, prompt, output_len, meter, vocab) -> dict:
    gen = torch.Generator(device="cpu").manual_seed(batch * 100003 + prompt)
    ids = torch.randint(1, vocab, (batch, prompt), generator=gen).to(device)
    generate(model, ids, 4)  # warm-up: kernels chosen and allocator grown for this shape
    ttft = statistics.median(generate(model, ids, 1) for _ in range(3))
    e0 = meter.joules()
    e2e = generate(model, ids, output_len)
    e1 = meter.joules()
    energy = None if e0 is None else e1 - e0
    return {
        "batch": batch,
        "input_len": prompt,
        "output_len": output_len,
        "ttft_s": round(ttft, 5),
        "e2e_s": round(e2e, 5),
        "tpot_s": round((e2e - ttft) / (output_len - 1), 6),
        "energy_j": None if energy is None else round(energy, 2),
        "avg_power_w": None if energy is None else round(energy / e2e, 1),
    }


def environment() -> dict:
    def cmd(args: list[str]) -> str:
        try:
            return subprocess.run(args, capture_output=True, text=True, timeout=30).stdout.strip()
        except Exception as exc:
            return f"unavailable: {exc}"

    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "nvidia_smi": cmd(
            [
                "nvidia-smi",
                "--query-gpu=name,driver_version,power.limit,clocks.max.sm,memory.total",
                "--format=csv",
            ]
        ),
        "cpu": cpu,
        "cpu_count": len(__import__("os").sched_getaffinity(0)),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "transformers": transformers.__version__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for cases.csv, probes.csv, env.json")
    parser.add_argument("--models", nargs="*", default=list(CASES), help="presets to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="tiny models and lengths (a CPU check)")
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    args.out.mkdir(parents=True, exist_ok=True)
    meter = EnergyMeter()
    env = environment()
    sync()
    time.sleep(0 if args.quick else 5)
    env["idle_power_w"] = meter.power_w()
    (args.out / "env.json").write_text(json.dumps(env, indent=2))
    print(json.dumps(env, indent=2), flush=True)

    tiny = json.loads((PRESETS / "llama-3.1-8b.json").read_text())
    tiny.update(
        hidden_size=256, intermediate_size=512, num_attention_heads=4, num_key_value_heads=4, vocab_size=1024
    )
    with RowLog(args.out / "probes.csv") as log:
        for layers in PROBE_LAYERS:
            model = build({**tiny, "num_hidden_layers": layers}, device)
            ids = torch.randint(1, 1024, (1, 32)).to(device)
            steps = 16 if args.quick else 128
            generate(model, ids, 4)
            one = statistics.median(generate(model, ids, 1) for _ in range(5))
            full = statistics.median(generate(model, ids, steps) for _ in range(3))
            log.write(
                {
                    "layers": layers,
                    "decode_step_s": round((full - one) / (steps - 1), 7),
                    "kernels_per_step": kernels_per_decode_step(model, ids),
                }
            )
            del model

    models = args.models
    with RowLog(args.out / "cases.csv") as log:
        for name in models:
            config = json.loads((PRESETS / f"{name}.json").read_text())
            cases = CASES[name]
            output_len = OUTPUT_LEN
            if args.quick:
                config.update(num_hidden_layers=2, hidden_size=256, intermediate_size=512, vocab_size=1024)
                config.update(
                    num_attention_heads=4, num_key_value_heads=min(4, config.get("num_key_value_heads", 4))
                )
                cases, output_len = [(1, 16), (4, 32)], 8
            t0 = time.perf_counter()
            model = build(config, device)
            sync()
            print(f"{name}: built in {time.perf_counter() - t0:.1f} s", flush=True)
            kernels = kernels_per_decode_step(model, torch.randint(1, 100, (1, 8)).to(device))
            for batch, prompt in cases:
                try:
                    case = run_case(model, device, batch, prompt, output_len, meter, config["vocab_size"])
                except torch.OutOfMemoryError as exc:
                    print(f"{name} batch {batch} prompt {prompt}: out of memory ({exc})", flush=True)
                    torch.cuda.empty_cache()
                    continue
                log.write({"model": name, **case, "kernels_per_step": kernels})
            del model
            if torch.cuda.is_available():
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
