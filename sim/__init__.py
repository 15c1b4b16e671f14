"""How it plays out over time: the SimPy event engine, systems, serving and paper experiments.

The event path arrives with the event-engine issue; the analytic path lives in ``roofline``.
"""
