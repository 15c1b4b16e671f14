"""``hwsim serve``: its flat JSON, its capacity search, and one-line errors for bad input."""

import json
import subprocess
import sys

import pytest

SERVE_KEYS = [
    "ttft_s_mean",
    "ttft_s_p50",
    "ttft_s_p90",
    "ttft_s_p99",
    "tpot_s_mean",
    "tpot_s_p50",
    "tpot_s_p90",
    "tpot_s_p99",
    "e2e_s_mean",
    "e2e_s_p99",
    "requests_per_s",
    "output_tokens_per_s",
    "output_tokens_per_s_per_device",
    "completed",
    "preempted",
    "kv_capacity_tokens",
    "slo_attainment",
    "usd_per_million_tokens",
    "j_per_token",
    "sim_wall_s",
]
BASE = ["serve", "-m", "llama-3.1-8b", "-d", "h100-sxm", "-p", "bf16"]


def hwsim(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "hwsim", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


def test_serve_json_is_one_flat_object_with_the_contract_keys():
    r = hwsim(
        *BASE, "--rate", "5", "--input-len", "512", "--output-len", "64", "--num-requests", "100", "--json"
    )
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert all(k in d for k in SERVE_KEYS)
    assert all(not isinstance(v, (dict, list)) for v in d.values())
    assert d["completed"] == 100 and d["kv_capacity_tokens"] > 100_000


def test_find_capacity_is_a_rate_that_meets_the_slo(tmp_path):
    r = hwsim(
        *BASE,
        "--concurrency", "4", "--input-len", "512", "--output-len", "64", "--num-requests", "150",
        "--slo-tpot", "0.012", "--find-capacity", "--timeline", str(tmp_path / "tl.png"), "--json",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["capacity_requests_per_s"] > 0
    assert (tmp_path / "tl.png").is_file() and (tmp_path / "tl.svg").is_file()


def test_disaggregated_serve_runs_with_its_pools():
    r = hwsim(
        *BASE, "--rate", "4", "--input-len", "1024", "--output-len", "32", "--num-requests", "60",
        "--mode", "disagg", "--prefill-workers", "1", "--decode-workers", "2", "--json",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["output_tokens_per_s_per_device"] > 0


@pytest.mark.parametrize(
    "args, words",
    [
        (["--rate", "0", "--input-len", "8", "--output-len", "8"], ["rate", "0"]),
        (["--rate", "-2", "--input-len", "8", "--output-len", "8"], ["rate", "-2"]),
        (["--concurrency", "0", "--input-len", "8", "--output-len", "8"], ["concurrency", "0"]),
        (["--rate", "1", "--input-len", "8", "--output-len", "8", "--slo-ttft", "-1"], ["slo-ttft", "-1"]),
        (["--rate", "1", "--input-len", "8", "--output-len", "8", "--slo-tpot", "0"], ["slo-tpot", "0"]),
        (["--rate", "1"], ["input_len"]),
        (["--input-len", "8", "--output-len", "8"], ["rate", "concurrency"]),
        (["--rate", "1", "--lengths", "sharegtp"], ["sharegpt"]),
        (
            ["--rate", "1", "--input-len", "8", "--output-len", "8", "--mode", "disagg",
             "--prefill-workers", "2", "--decode-workers", "2", "--n-devices", "3"],
            ["needs 4 devices", "3"],
        ),
        (["--rate", "1", "--input-len", "8", "--output-len", "8", "--max-batch", "0"], ["max_batch", "0"]),
        (["--rate", "1", "--input-len", "8", "--output-len", "8", "--length-spread", "1.2"], ["length spread", "1.2"]),
        (["--rate", "1", "--lengths", "sharegpt", "--length-spread", "0.2"], ["draws its own lengths"]),
    ],
)  # fmt: skip
def test_bad_input_is_one_line(args, words):
    r = hwsim(*BASE, *args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    line = r.stderr.strip()
    assert "Traceback" not in r.stderr and len(line.splitlines()) == 1
    assert all(w in line for w in words), line


def test_kv_short_says_by_how_much():
    r = hwsim(
        "serve", "-m", "llama-2-70b", "-d", "rtx-3090", "--rate", "1", "--input-len", "8", "--output-len", "8"
    )
    assert r.returncode == 2 and "short by" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize(
    "content, words",
    [
        ("arrival_s,input_len\n0,5\n", ["output_len"]),
        ("arrival_s,input_len,output_len\n0,5,-3\n", ["output_len", "-3"]),
        ("arrival_s,input_len,output_len\n-1,5,3\n", ["arrival_s"]),
        ("arrival_s,input_len,output_len\n", ["no requests"]),
    ],
)
def test_bad_trace_csv(tmp_path, content, words):
    path = tmp_path / "trace.csv"
    path.write_text(content)
    r = hwsim(*BASE, "--trace", str(path))
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and all(w in r.stderr for w in words), r.stderr


def test_replayed_trace_runs(tmp_path):
    path = tmp_path / "trace.csv"
    path.write_text("arrival_s,input_len,output_len\n0,100,10\n0.5,200,20\n1.0,50,5\n")
    r = hwsim(*BASE, "--trace", str(path), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["completed"] == 3
    # a replayed trace has its own arrivals and lengths: other stream options are refused, not dropped
    both = hwsim(*BASE, "--trace", str(path), "--rate", "2", "--input-len", "5")
    assert both.returncode == 2 and "drop --rate, --input-len or the trace" in both.stderr


def test_a_spread_of_lengths_staggers_a_closed_loop():
    """16 requests in flight of 2,000-token prompts on one H100: with equal lengths they end
    together and the next 16 prompts queue behind each other; drawn within 30% of the means they
    arrive one by one, so the mean TTFT falls."""
    run = [
        "--concurrency",
        "16",
        "--input-len",
        "2000",
        "--output-len",
        "200",
        "--num-requests",
        "160",
        "--json",
    ]
    ttft = {}
    for spread in ("0", "0.3"):
        out = hwsim(*BASE, *run, "--length-spread", spread)
        assert out.returncode == 0, out.stderr
        ttft[spread] = json.loads(out.stdout)["ttft_s_mean"]
    assert ttft["0.3"] < 0.7 * ttft["0"]


def test_estimate_and_simulate_take_a_framework():
    r = hwsim("estimate", "-m", "llama-3.1-8b", "-d", "h100-sxm", "--framework", "vllm", "--json")
    assert r.returncode == 0, r.stderr
    base = hwsim("estimate", "-m", "llama-3.1-8b", "-d", "h100-sxm", "--json")
    assert json.loads(r.stdout)["tpot_s"] != json.loads(base.stdout)["tpot_s"]
    r = hwsim("simulate", "-s", "1xa100", "-m", "llama-2-7b", "--framework", "vllm", "--json")
    assert r.returncode == 0, r.stderr


def test_disaggregated_capacity_meets_the_slo_and_a_third_more_does_not():
    """The disaggregated search doubles from 1 request/s, then bisects; the analytic bound the
    aggregated search starts from does not exist for two pools."""
    from sim.serving.capacity import ATTAINMENT_TARGET, find_capacity
    from sim.serving.serve import serve
    from workloads.traces import make_trace

    args = dict(n_requests=150, seed=0, input_len=512, output_len=64)
    cfg = dict(mode="disagg", prefill_workers=1, decode_workers=1, precision="bf16")
    cap = find_capacity(
        "llama-3.1-8b", "h100-sxm", slo_ttft_s=0.2, slo_tpot_s=None, trace_args=args, iterations=6, **cfg
    )

    def attainment(rate):
        trace = make_trace(rate=rate, **args)
        return serve("llama-3.1-8b", "h100-sxm", trace, slo_ttft_s=0.2, record=False, **cfg).metrics[
            "slo_attainment"
        ]

    assert attainment(cap) >= ATTAINMENT_TARGET > attainment(1.3 * cap)


def test_a_trace_too_short_to_find_the_capacity_says_so():
    from sim.serving.capacity import find_capacity
    from workloads.errors import HwsimNote

    with pytest.warns(HwsimNote, match="all 5 requests met the SLOs.*--num-requests"):
        cap = find_capacity(
            "llama-3.1-8b", "h100-sxm", slo_ttft_s=5.0, slo_tpot_s=None, iterations=4,
            trace_args=dict(n_requests=5, seed=0, input_len=512, output_len=64),
            mode="disagg", precision="bf16",
        )  # fmt: skip
    assert cap > 1.0


def test_serve_takes_vllm_v0s_chunked_prefill_setting():
    """Llama-3.1-8B's 131,072-token context: with chunked prefill (V0's choice there) its budget is
    2,048 tokens, and the profiling pass's peak is its sampler's, 256 x 128,256 x 38.9 B = 1.28 GB;
    with --no-chunked-prefill whole prompts take a 131,072-token budget, whose forward holds
    131,072 x 110.6 kB plus fp32 logits of 256 x 128,256 x 4 B = 14.63 GB: 13.35 GB, or 101,831
    tokens of 131,072 B, less KV."""
    run = [
        "--framework",
        "vllm-v0",
        "--rate",
        "2",
        "--input-len",
        "500",
        "--output-len",
        "20",
        "--num-requests",
        "8",
    ]
    pools = {}
    for flag in ("--chunked-prefill", "--no-chunked-prefill"):
        out = hwsim(*BASE, *run, flag, "--json")
        assert out.returncode == 0, out.stderr
        pools[flag] = json.loads(out.stdout)["kv_capacity_tokens"]
    freed = (131072 * 110592 + 256 * 128256 * 4 - 256 * 128256 * 38.9) / 131072
    assert pools["--chunked-prefill"] - pools["--no-chunked-prefill"] == pytest.approx(freed, abs=16)


def test_serve_takes_vllm_v0s_multi_step_scheduling():
    """--scheduler-steps 8: a prompt arriving while others decode waits for the run of 8 decode
    steps to end, so the mean TTFT of a Poisson stream grows; 0 is refused naming the option."""
    run = ["--framework", "vllm-v0", "--no-chunked-prefill", "--rate", "20", "--input-len", "256"]
    run += ["--output-len", "64", "--num-requests", "200", "--json"]
    ttft = {}
    for steps in ("1", "8"):
        out = hwsim(*BASE, *run, "--scheduler-steps", steps)
        assert out.returncode == 0, out.stderr
        ttft[steps] = json.loads(out.stdout)["ttft_s_mean"]
    assert ttft["8"] > 2 * ttft["1"]
    bad = hwsim(*BASE, *run, "--scheduler-steps", "0")
    assert bad.returncode == 2 and "--scheduler-steps" in bad.stderr


def test_serve_takes_the_runs_memory_share():
    """--kv-fraction 0.95 (vLLM's --gpu-memory-utilization) gives Llama-3.1-8B BF16 on one H100
    0.05 of the memory (the 79.18 GiB CUDA reports) more KV cache than the default 0.9, in tokens
    of 131,072 B; a share outside (0, 1] is a one-line error naming it."""
    run = ["--rate", "2", "--input-len", "500", "--output-len", "20", "--num-requests", "8", "--json"]
    pools = {}
    for share in ("0.9", "0.95"):
        out = hwsim(*BASE, *run, "--kv-fraction", share)
        assert out.returncode == 0, out.stderr
        pools[share] = json.loads(out.stdout)["kv_capacity_tokens"]
    gained = 0.05 * 79.18 * 2**30 / 131072
    assert pools["0.95"] - pools["0.9"] == pytest.approx(gained, abs=16)
    bad = hwsim(*BASE, *run, "--kv-fraction", "1.5")
    assert bad.returncode != 0 and "kv_fraction is 1.5" in bad.stderr and "Traceback" not in bad.stderr
