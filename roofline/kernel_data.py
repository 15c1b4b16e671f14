"""The shipped kernel extracts of ``hwmodels/calibration/kernels/`` (their sources in its README)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pandas as pd


def load_kernels(name: str) -> pd.DataFrame:
    """One shipped extract by its file name without ``.csv`` (``gemm``, ``gemm_vidur``,
    ``attention_prefill``, ``attention_decode``, ``allreduce``, ``block_fp8``, ``block_fp8_runs``,
    ``mla_prefill_runs``, ``moe_trtllm``)."""
    return pd.read_csv(Path(str(files("hwmodels.calibration").joinpath(f"kernels/{name}.csv"))))
