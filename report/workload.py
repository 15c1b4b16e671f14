"""The workload every analytic section of the report prices: one request shape, fp16."""

from __future__ import annotations

INPUT_LEN, OUTPUT_LEN = 1024, 256
"""Prompt and generated tokens per request (a chat-sized request)."""
PRECISION = "fp16"
"""Format of weights, activations and KV cache unless a section searches over formats."""
