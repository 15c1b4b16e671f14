"""Price a 16k x 16k GEMV on a 750 x 994 WSE-2 mesh with the wafer cost model (no per-core loop)."""

from __future__ import annotations

import time

from hwmodels.device_spec import load_device
from hwmodels.wafer import Mesh, gemv_time_s


def main() -> None:
    mesh = Mesh.of(load_device("wse-2"), 994, 750)
    repeats = 1000
    start = time.perf_counter()
    for _ in range(repeats):
        t = gemv_time_s(16384, 16384, 1, mesh)
    per_call = (time.perf_counter() - start) / repeats
    print(
        f"16384 x 16384 GEMV on a 750 x 994 mesh: {float(t) * 1e6:.2f} us predicted, priced in "
        f"{per_call * 1e3:.4f} ms per call"
    )


if __name__ == "__main__":
    main()
