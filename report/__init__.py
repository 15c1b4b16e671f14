"""``hwsim report``: the top layer that assembles the sections each lower layer provides.

``report.build.build_report`` runs every section (``report/sections_*.py``), each of which
writes its plots (PNG and SVG) and CSV tables into the output folder and returns its markdown;
the driver joins them into ``index.md`` and the self-contained ``index.html``
(``report/html.py``).
"""
