"""Calibration: the few global efficiency parameters per device class, with their basis."""
