"""What it runs on: the device catalog, one cost model per architecture, reference kernels.

Importing this package registers every cost model (``hwmodels.registry``).
"""

from hwmodels import cpu as _cpu  # noqa: F401  (registers the "cpu" cost model)
from hwmodels import csd as _csd  # noqa: F401  (registers the "csd" cost model)
from hwmodels import fpga as _fpga  # noqa: F401  (registers the "fpga" cost model)
from hwmodels import gpu as _gpu  # noqa: F401  (registers the "gpu" cost model)
from hwmodels import hardwired as _hardwired  # noqa: F401  (registers the "hardwired" cost model)
from hwmodels import npu as _npu  # noqa: F401  (registers the "npu" cost model)
from hwmodels import sail as _sail  # noqa: F401  (registers the "sail" cost model)
from hwmodels import wafer as _wafer  # noqa: F401  (registers the "wafer" cost model)
