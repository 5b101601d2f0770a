"""Headless matplotlib: every figure is written to a file, never shown.

Import `plt` from here (not from matplotlib) so the Agg backend is chosen once, before pyplot loads.
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["plt"]
