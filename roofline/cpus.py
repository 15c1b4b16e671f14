"""The CPUs this process may use: its affinity, capped by its cgroup's CPU quota (a container run
with ``--cpus``, whose affinity still lists every CPU of the host)."""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
"""Where Linux mounts the control groups: ``cpu.max`` under cgroup v2, ``cpu/cpu.cfs_quota_us``
and ``cpu/cpu.cfs_period_us`` under v1 (Linux kernel docs, admin-guide/cgroup-v2 'cpu.max' and
scheduler/sched-bwc)."""


def cpu_quota(root: Path = CGROUP_ROOT) -> float | None:
    """CPUs the cgroup's quota allows (quota over period, fractional), or None where it sets none
    (v2 ``max``, v1 ``-1``) or no cgroup file can be read (another platform)."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return int(quota) / int(period) if quota != "max" and int(period) > 0 else None
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


def usable_cpus(root: Path = CGROUP_ROOT) -> int:
    """The CPUs this process may run on (its affinity where the platform has one, else the CPU
    count), no more than its cgroup's quota rounded up; at least 1."""
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = cpu_quota(root)
    return max(1, min(affinity, math.ceil(quota)) if quota else affinity)
