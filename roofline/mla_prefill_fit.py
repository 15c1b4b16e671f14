"""Derive the rate of SGLang v0.4's Triton extend kernel on an absorbed MLA prefill
(``AbsorbedMlaPrefill.attention_efficiency`` of ``sglang-0.4`` in ``frameworks.yaml``).

sgl-project/sglang PR #3550 served DeepSeek-V3 at TP 8 twice with the radix cache off, 60 random
prompts of 1-32,000 tokens at one request a second, up to 100 output tokens: on FlashInfer's MLA
kernels and on SGLang's default Triton backend (``hwmodels/calibration/kernels/mla_prefill_runs.csv``).
The prefills dominate both runs and the server is busy throughout (at least 89 s of work for 60 s
of arrivals), so each run's duration is about its prefill work. The runs differ only in attention:
in the FlashInfer run every chunk attends expanded (with the radix cache off); in the Triton run
a prompt's first chunk (``chunked_prefill_size`` 8,192) attends expanded and each later chunk
absorbed over the prompt's own cached chunks. hwsim prices the prompts' linear layers and the
FlashInfer run's expanded attention (a check of the rest: it should come out near that run's
duration), and takes the Triton run's attention as its duration less those linear layers; the
kernel's efficiency is that attention's FLOPs over its time and the BF16 tensor peak. The prompts
are the 60 quantiles of the uniform lengths bench_serving draws, scaled to the run's stated total.
``python -m roofline.mla_prefill_fit`` prints the derivation; the value is then written by hand
into ``frameworks.yaml`` and ``tests/test_absorbed_mla_prefill.py`` holds the two equal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from hwmodels import registry
from hwmodels.calibration.params import framework_terms
from hwmodels.device_spec import catalog
from hwmodels.placement import Placement
from roofline.kernel_data import load_kernels
from workloads.graph import build_ops
from workloads.model_spec import load_model
from workloads.quant import Quant

FRAMEWORK = "sglang-0.4"
"""The framework whose absorbed-prefill kernel rate is derived (its block-FP8 kernels price the
linear layers of both runs)."""


def load_runs() -> pd.DataFrame:
    """The two runs of ``kernels/mla_prefill_runs.csv``, with their durations (s): all tokens over
    the stated total throughput."""
    runs = load_kernels("mla_prefill_runs")
    return runs.assign(duration_s=(runs["input_tokens"] + runs["output_tokens"]) / runs["total_tokens_per_s"])


@dataclass(frozen=True)
class Derivation:
    """What the fit read off hwsim and the runs: times in s, FLOPs per device."""

    linear_s: float
    expanded_attention_s: float
    flashinfer_s: float
    triton_s: float
    triton_attention_flops: float
    peak_flops: float

    @property
    def efficiency(self) -> float:
        """The Triton kernel's attention FLOPs over its time and the BF16 tensor peak."""
        return self.triton_attention_flops / ((self.triton_s - self.linear_s) * self.peak_flops)


def derive() -> Derivation:
    """Price the runs' prompts chunk by chunk, as one sweep (``FRAMEWORK`` on the runs' device,
    expanded attention), and read the Triton run's attention time off its duration."""
    runs = load_runs().set_index("run")
    run = runs.loc["triton"]
    spec, quant = load_model(str(run["model"])), Quant.from_name("fp8-kv16")
    device = catalog()[str(run["device"])]
    placement = Placement(tp=int(run["tp"]), framework=FRAMEWORK)
    n = int(run["prompts"])
    lengths = (np.arange(n) + 0.5) / n * int(run["input_max"])
    lengths = np.maximum(1, np.round(lengths * int(run["input_tokens"]) / lengths.sum()))
    chunk = int(run["chunked_prefill"])
    # every chunk of every prompt as one sweep point: (new tokens, tokens cached before it)
    starts = [
        (float(s), float(min(chunk, length - s))) for length in lengths for s in range(0, int(length), chunk)
    ]
    context, tokens = (np.array(v) for v in zip(*starts, strict=True))
    kw = dict(phase="prefill", batch=1.0, tokens=tokens, context=context, tp=placement.tp)
    ops = build_ops(spec, quant, mla_prefill="expanded", **kw)
    time = np.asarray(registry.get(device.arch).estimate(ops, device, placement).time_s)  # layers included
    attention = ops.name == "attention"
    absorbed = build_ops(spec, quant, mla_prefill="absorbed", **kw)
    latent = absorbed.name == "latent_attention"

    # a first chunk attends expanded, a later one absorbed over the prompt's cached chunks
    def total(t, rows):  # FLOPs a device per sweep point, over the op's layers
        return (t.flops[rows] * t.count[rows][:, None]).sum(axis=0)

    flops = np.where(context > 0, total(absorbed, latent), total(ops, attention))
    return Derivation(
        linear_s=float(time[~attention].sum()),
        expanded_attention_s=float(time[attention].sum()),
        flashinfer_s=float(runs.loc["flashinfer", "duration_s"]),
        triton_s=float(run["duration_s"]),
        triton_attention_flops=float(flops.sum()),
        peak_flops=device.peak("bf16"),
    )


def frames() -> dict[tuple[str, str], pd.DataFrame]:
    """The two runs beside hwsim's price of their prefills at the shipped rate (the FlashInfer run
    expanded, the Triton run's attention at ``FRAMEWORK``'s kernel), for the report's kernel
    charts: seconds against the measured seconds."""
    d = derive()
    rate = framework_terms(FRAMEWORK).absorbed_mla_prefill.attention_efficiency * d.peak_flops
    frame = pd.DataFrame(
        {
            "panel": "DeepSeek-V3 at TP 8, sglang PR #3550",
            "x": [d.flashinfer_s, d.triton_s],
            "series": ["FlashInfer MLA (expanded)", "Triton (absorbed)"],
            "measured": [d.flashinfer_s, d.triton_s],
            "predicted": [d.linear_s + d.expanded_attention_s, d.linear_s + d.triton_attention_flops / rate],
        }
    )
    return {("mla_prefill", "h200"): frame}


def main() -> None:
    d = derive()
    print(
        f"FlashInfer run: {d.flashinfer_s:.1f} s measured; hwsim's linear layers {d.linear_s:.1f} s "
        f"+ expanded attention {d.expanded_attention_s:.1f} s = {d.linear_s + d.expanded_attention_s:.1f} s"
    )
    print(
        f"Triton run: {d.triton_s:.1f} s measured, so its attention {d.triton_s - d.linear_s:.1f} s for "
        f"{d.triton_attention_flops:.3g} FLOPs a device: {d.efficiency:.3f} of the BF16 peak"
    )


if __name__ == "__main__":
    main()
