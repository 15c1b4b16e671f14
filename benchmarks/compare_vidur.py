#!/usr/bin/env python3
"""Run Vidur (a subprocess, in its own environment) and hwsim (in process) on the same request
trace and print p50/p99 TTFT, TPOT, end-to-end latency and wall time side by side.

Offline only. Vidur (``pip install vidur``, 0.0.26) loads its profiling data with
``huggingface_hub.snapshot_download``; this script lays the CSVs of ``--vidur-data`` (the layout
of the microsoft/vidur repository: ``profiling/compute/<sku>/<model>/{mlp,attention}.csv``,
``profiling/network/<node>/{all_reduce,send_recv}.csv``) out as a local Hugging Face dataset
cache and runs Vidur with ``HF_HUB_OFFLINE=1``. Vidur's profiles cover A100 with Llama-3-8B
and H100 with Llama-2-7B/70B only. Without Vidur the script says why and exits 0.

Usage: ``python3 benchmarks/compare_vidur.py --vidur-data DIR [--python VIDUR_PYTHON]``

Measured here (2026-12-02, A100-80GB, Llama-3-8B, 1,000 requests at 4 req/s, 512/128 tokens,
Vidur 0.0.26 with its vLLM scheduler and a random-forest predictor trained on one
hyper-parameter point): Vidur TTFT p50/p99 42.9/109.9 ms, TPOT 12.9/16.0 ms, E2E 1.68/2.08 s
in ~35 s (warm cache); hwsim (vllm) TPOT 12.7/15.9 ms, E2E 1.70/2.11 s, TTFT 81.6/247 ms (its
fitted output lag and chunked prefill), in ~1 s of simulation. Vidur's attention profile there
was a 519-row subsample of the published file (the full file is stored out of band).
"""

import argparse
import glob
import json
import lzma
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

VIDUR_MODEL = {
    "llama-3-8b": ("meta-llama/Llama-3-8B", "meta-llama/Meta-Llama-3-8B"),
    "llama-2-7b": ("meta-llama/Llama-2-7b-hf", "meta-llama/Llama-2-7b-hf"),
}
VIDUR_SKU = {"a100-sxm-80gb": ("a100", "a100_dgx"), "h100-sxm": ("h100", "h100_dgx")}


def hf_snapshot(cache, name, files, config):
    """Lay `files` out as cache/datasets--local--<name>/snapshots/offline/<file>.xz."""
    root = os.path.join(cache, f"datasets--local--{name}")
    snap = os.path.join(root, "snapshots", "offline")
    os.makedirs(snap, exist_ok=True)
    os.makedirs(os.path.join(root, "refs"), exist_ok=True)
    with open(os.path.join(root, "refs", "main"), "w") as f:
        f.write("offline")
    with open(os.path.join(snap, "config.json"), "w") as f:
        json.dump(config, f)
    for src in files:
        dst = os.path.join(snap, os.path.basename(src) + ".xz")
        if not os.path.exists(dst) or os.path.getmtime(dst) < os.path.getmtime(src):
            with open(src, "rb") as fi, lzma.open(dst, "wb") as fo:
                shutil.copyfileobj(fi, fo)
    return f"local/{name}"


def run_vidur(a, trace, work):
    vmodel, vdir = VIDUR_MODEL[a.model]
    sku, node = VIDUR_SKU[a.device]
    data = a.vidur_data.rstrip("/")
    data = data + "/profiling" if os.path.isdir(data + "/profiling") else data
    comp = os.path.join(data, "compute", sku, vdir)
    net = os.path.join(data, "network", node)
    need = [f"{comp}/mlp.csv", f"{comp}/attention.csv", f"{net}/all_reduce.csv", f"{net}/send_recv.csv"]
    missing = [p for p in need if not os.path.exists(p)]
    if missing:
        return None, f"missing profiling files: {missing}"
    cache = os.path.join(work, "vidur_cache")
    cds = hf_snapshot(
        f"{cache}/profiling_data/compute",
        f"vidur-{sku}-{vdir.split('/')[-1].lower()}",
        need[:2],
        {"model": vmodel, "device_sku": sku},
    )
    nds = hf_snapshot(f"{cache}/profiling_data/network", f"vidur-{node}", need[2:], {"sku": node})
    tfile = os.path.join(work, "trace.csv")  # Vidur's trace_replay format, same arrivals as hwsim
    with open(tfile, "w") as f:
        f.write("Date,Time,PromptTokenCount,CompletionTokenCount\n")
        for t, i, o in zip(trace.arrival_s, trace.input_len, trace.output_len, strict=True):
            f.write(f"2024-01-01,{float(t):.9f},{int(i)},{int(o)}\n")
    out = os.path.join(work, "vidur_out")
    P = "--random_forrest_execution_time_predictor_config_"
    cmd = [
        a.python,
        "-m",
        "vidur.main",
        "--seed",
        "0",
        "--replica_config_model_name",
        vmodel,
        "--replica_config_device",
        sku,
        "--replica_config_network_device",
        node,
        "--replica_config_tensor_parallel_size",
        "1",
        "--replica_config_num_pipeline_stages",
        "1",
        "--cluster_config_num_replicas",
        "1",
        "--replica_scheduler_config_type",
        "vllm",
        "--vllm_scheduler_config_batch_size_cap",
        "128",
        "--vllm_scheduler_config_max_tokens_in_batch",
        "4096",
        "--request_generator_config_type",
        "trace_replay",
        "--trace_request_generator_config_trace_file",
        tfile,
        "--trace_request_generator_config_date",
        "2024-01-01",
        "--trace_request_generator_config_max_tokens",
        "4096",
        "--trace_request_generator_config_prefill_scale_factor",
        "1",
        "--trace_request_generator_config_decode_scale_factor",
        "1",
        "--trace_request_generator_config_time_scale_factor",
        "1",
        "--execution_time_predictor_config_type",
        "random_forrest",
        P + "model_profiling_dataset",
        cds,
        P + "network_profiling_dataset",
        nds,
        P + "cache_dir",
        cache,
        P + "prediction_max_tokens_per_request",
        "4096",
        # one hyper-parameter point instead of the 27-point x 10-fold grid (hours on 2 CPUs)
        P + "num_estimators",
        "250",
        P + "max_depth",
        "16",
        P + "min_samples_split",
        "2",
        P + "k_fold_cv_splits",
        "2",
        "--metrics_config_output_dir",
        out,
        "--no-metrics_config_store_plots",
        "--no-metrics_config_enable_chrome_trace",
    ]
    env = dict(os.environ, WANDB_MODE="disabled", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    before = set(glob.glob(f"{out}/*"))
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    with open(os.path.join(work, "vidur.log"), "w") as f:
        f.write(p.stdout + p.stderr)
    new = sorted(set(glob.glob(f"{out}/*")) - before)
    if p.returncode or not new:
        return None, f"vidur exited {p.returncode}: {(p.stdout + p.stderr)[-1500:]}"
    import pandas as pd

    df = pd.read_csv(os.path.join(new[-1], "request_metrics.csv"))
    ttft = df["prefill_e2e_time"].to_numpy()
    e2e = df["request_e2e_time"].to_numpy()
    tpot = (e2e - ttft) / np.maximum(df["request_num_decode_tokens"].to_numpy() - 1, 1)
    m = {"n": len(df), "wall_s": wall, "out_dir": new[-1]}
    for k, v in (("ttft", ttft), ("tpot", tpot), ("e2e", e2e)):
        m[f"{k}_s_p50"], m[f"{k}_s_p99"] = np.percentile(v, 50), np.percentile(v, 99)
    return m, None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vidur-data", required=True, help="folder with Vidur's profiling CSVs")
    ap.add_argument("--python", default=sys.executable, help="the interpreter Vidur is installed in")
    ap.add_argument("--model", default="llama-3-8b", choices=sorted(VIDUR_MODEL))
    ap.add_argument("--device", default="a100-sxm-80gb", choices=sorted(VIDUR_SKU))
    ap.add_argument("--framework", default="vllm", help="hwsim framework (vllm, vllm-v0, ...)")
    ap.add_argument("--rate", type=float, default=4.0)
    ap.add_argument("--num-requests", type=int, default=1000)
    ap.add_argument("--input-len", type=int, default=512)
    ap.add_argument("--output-len", type=int, default=128)
    ap.add_argument("--workdir", default=None, help="scratch folder (default: a temporary one)")
    a = ap.parse_args()
    chk = subprocess.run(
        [a.python, "-c", "import vidur, vidur.main; print(vidur.__version__)"],
        capture_output=True,
        text=True,
        env=dict(os.environ, WANDB_MODE="disabled"),
    )
    if chk.returncode:
        print(
            f"vidur is not importable with {a.python}: {chk.stderr.strip().splitlines()[-1:] or chk.returncode}"
        )
        return 0
    from sim.serving.serve import serve
    from workloads.traces import make_trace

    a.workdir = a.workdir or tempfile.mkdtemp(prefix="hwsim-vidur-")
    os.makedirs(a.workdir, exist_ok=True)
    trace = make_trace(
        n_requests=a.num_requests, rate=a.rate, input_len=a.input_len, output_len=a.output_len, seed=0
    )
    t0 = time.perf_counter()
    r = serve(a.model, a.device, trace, precision="bf16", framework=a.framework)
    hw = dict(r.metrics, wall_s=time.perf_counter() - t0)
    vd, err = run_vidur(a, trace, a.workdir)
    print(
        f"trace: {a.num_requests} req, Poisson {a.rate:g} req/s, {a.input_len}/{a.output_len} tokens, "
        f"{a.model} on {a.device}, TP1; vidur {chk.stdout.strip()} (vllm scheduler), hwsim framework {a.framework}"
    )
    if err:
        print("vidur failed:", err)
    rows = [
        ("TTFT p50 (ms)", "ttft_s_p50", 1e3),
        ("TTFT p99 (ms)", "ttft_s_p99", 1e3),
        ("TPOT p50 (ms)", "tpot_s_p50", 1e3),
        ("TPOT p99 (ms)", "tpot_s_p99", 1e3),
        ("E2E p50 (s)", "e2e_s_p50", 1),
        ("E2E p99 (s)", "e2e_s_p99", 1),
        ("wall (s)", "wall_s", 1),
    ]
    print(f"{'metric':<16}{'vidur':>12}{'hwsim':>12}{'hwsim/vidur':>13}")
    for name, k, s in rows:
        v = vd[k] * s if vd else float("nan")
        h = hw[k] * s
        print(f"{name:<16}{v:>12.3f}{h:>12.3f}{h / v if vd else float('nan'):>13.2f}")
    print(
        f"hwsim sim_wall_s {hw['sim_wall_s']:.2f}; vidur wall includes interpreter start, predictor "
        f"training/caching; vidur output: {vd['out_dir'] if vd else '-'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
