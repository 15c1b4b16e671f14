"""hwsim: simulator and cost modeler for LLM inference hardware.

The public API, re-exported from the packages that implement it::

    import hwsim
    est = hwsim.estimate("llama-2-7b", "h100-sxm", batch=[1, 8, 64], input_len=1024, output_len=128)
    est.to_frame()
"""

from hwmodels.device_spec import DeviceSpec, load_device
from roofline.economics import Economics
from roofline.estimate import Estimate, estimate
from workloads.errors import (
    AmbiguousNameError,
    ConfigError,
    DoesNotFitError,
    HwsimError,
    HwsimNote,
    UnknownNameError,
)
from workloads.model_spec import ModelSpec, load_model
from workloads.quant import Quant

__version__ = "0.1.0"


def __getattr__(name: str):
    """The event path, imported on first use (it brings SimPy and pandas)."""
    if name == "simulate":
        from sim.simulate import simulate

        return simulate
    if name == "load_system":
        from sim.system import load_system

        return load_system
    if name == "reproduce":
        from sim.experiments import reproduce

        return reproduce
    raise AttributeError(f"module 'hwsim' has no attribute {name!r}")


__all__ = [
    "AmbiguousNameError",
    "ConfigError",
    "DeviceSpec",
    "DoesNotFitError",
    "Economics",
    "Estimate",
    "HwsimError",
    "HwsimNote",
    "ModelSpec",
    "Quant",
    "UnknownNameError",
    "estimate",
    "load_device",
    "load_model",
    "load_system",
    "reproduce",
    "simulate",
    "__version__",
]
