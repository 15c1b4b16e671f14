"""What runs: model specs, quantization, operator graphs, traces and the NumPy golden transformer.

This package knows no hardware. See ``docs/data-formats.md`` for the preset format.
"""
