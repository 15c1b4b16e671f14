"""Whether a device has the math units a precision asks for.

The analytic path prices a format a device lacks in the one it falls back to
(``PEAK_FALLBACK``: an A100 asked for FP8 math computes in 16 bits) so that a sweep over devices
stays one vectorized call. A user who asks for one such point on the command line gets a clear
answer instead: FP8 (or FP4) on a GPU without FP8 (FP4) tensor cores is refused, naming what
engines run there. vLLM runs FP8 checkpoints on GPUs of compute capability 7.5 to 8.6 (Turing,
Ampere) as weight-only W8A16 with its FP8 Marlin kernel (vLLM docs, "FP8 W8A8": "FP8 models will
run on compute capability >= 7.5 (Turing) as weight-only W8A16, utilizing FP8 Marlin"); hwsim
prices that when asked for it by name (``w8a16``, or ``w8a16kv8`` with an 8-bit KV cache).
"""

from __future__ import annotations

from hwmodels.device_spec import DeviceSpec
from workloads.errors import ConfigError
from workloads.quant import Quant

ENGINES_WEIGHT_ONLY = {"fp8": " (vLLM's FP8 Marlin on Turing and Ampere)", "fp4": ""}
"""Float formats a GPU may lack, and an engine that runs their checkpoints weight-only there."""


def check_math_units(quant: Quant, device: DeviceSpec) -> None:
    """Raise ``ConfigError`` when ``quant`` computes in FP8 or FP4 on a GPU without those units."""
    fmt = quant.compute_format
    if device.arch != "gpu" or fmt not in ENGINES_WEIGHT_ONLY or fmt in device.peak_flop_per_s:
        return
    instead = f"w{quant.weight_bits}a16" + (f"kv{quant.kv_bits}" if quant.kv_bits != 16 else "")
    raise ConfigError(
        f"precision {quant.name} on {device.name}: it has no {fmt.upper()} tensor cores (no {fmt} peak in "
        f"the catalog), so no engine runs {fmt.upper()} math there; engines that load {fmt.upper()} "
        f"checkpoints on such GPUs run them weight-only{ENGINES_WEIGHT_ONLY[fmt]}: price that with "
        f"--precision {instead}"
    )
