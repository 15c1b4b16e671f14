"""Design-space exploration: sweep specs, grids, backends, resumable Parquet output.

Layer: between the front door (``hwsim``, ``report``) and the engine (``sim``); it prices
analytic points with ``roofline.estimate`` in vectorized chunks and runs event-path points
(serving) as tasks.
"""
