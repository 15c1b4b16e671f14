"""Measure what a GPU's memory really holds for a serving engine, on the machine it runs on.

Two readings, each a row of ``device_memory.csv`` in ``--out``:

- ``total``: the memory the driver exposes, as ``nvidia-smi --query-gpu=memory.total`` reports it
  (MiB) and as ``torch.cuda.mem_get_info`` does (bytes): the figure vLLM multiplies by its
  ``gpu_memory_utilization`` (its start-up log's ``total_gpu_memory``), which the datasheet's
  "141 GB" does not say in which unit.
- ``sampler``: the peak memory of a sampling pass over ``seqs`` sequences and a ``vocab``-wide
  vocabulary as vLLM V1's sampler runs it on its start-up dummy batch (fp32 logits divided by
  the temperature; top-k/top-p by a sort with int64 indices, a softmax and a cumulative sum of
  the sorted values and a scatter back; the probabilities, the log-probabilities and the
  exponential draws of the Gumbel-style sampling; vllm/v1/sample/sampler.py and
  ops/topk_topp_sampler.py), in bytes per sequence and vocabulary entry above the logits.
  hwsim's ``profile_sampler_bytes_per_logit`` (hwmodels/calibration/engines.yaml) was taken from
  vLLM's own start-up logs; this is an independent check of its size.

Imports no hwsim module: run it on any CUDA machine with PyTorch.

    python benchmarks/measure_device_memory.py --out results/device_memory
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

from row_log import RowLog


def _smi_total_mib() -> float | None:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits", "-i", "0"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return float(out.strip().splitlines()[0])


def _sampler_peak_bytes(torch, seqs: int, vocab: int) -> float:
    """Peak bytes allocated above the fp32 logits while sampling them as vLLM V1 does."""
    cuda = torch.device("cuda")
    logits = torch.randn(seqs, vocab, device=cuda, dtype=torch.float32)
    temperature = torch.full((seqs, 1), 0.7, device=cuda)
    top_p = torch.full((seqs, 1), 0.9, device=cuda)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    scaled = logits.div(temperature)
    logits_sort, logits_idx = scaled.sort(dim=-1, descending=False)
    probs_sum = logits_sort.softmax(dim=-1).cumsum(dim=-1)
    logits_sort.masked_fill_(probs_sum <= 1 - top_p, float("-inf"))
    del probs_sum
    scaled = logits_sort.scatter(dim=-1, index=logits_idx, src=logits_sort)
    del logits_sort, logits_idx
    logprobs = scaled.log_softmax(dim=-1)
    probs = scaled.softmax(dim=-1)
    q = torch.empty_like(probs).exponential_()
    sampled = probs.div(q).argmax(dim=-1)
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    del scaled, logprobs, probs, q, sampled, logits
    torch.cuda.empty_cache()
    return float(peak)


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    name = torch.cuda.get_device_name(0)
    with RowLog(args.out / "device_memory.csv") as log:
        _, total = torch.cuda.mem_get_info(0)
        smi = _smi_total_mib()
        log.write(
            {
                "device": name,
                "case": "total",
                "seqs": "",
                "vocab": "",
                "bytes": total,
                "gib": round(total / 2**30, 3),
                "smi_total_mib": smi,
                "bytes_per_logit": "",
            }
        )
        for vocab in (32000, 128256, 151936):
            for seqs in (256, 1024):
                peak = _sampler_peak_bytes(torch, seqs, vocab)
                log.write(
                    {
                        "device": name,
                        "case": "sampler",
                        "seqs": seqs,
                        "vocab": vocab,
                        "bytes": peak,
                        "gib": round(peak / 2**30, 3),
                        "smi_total_mib": "",
                        "bytes_per_logit": round(peak / (seqs * vocab), 2),
                    }
                )


if __name__ == "__main__":
    main()
