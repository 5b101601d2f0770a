"""Where a result came from: library versions and the code's git commit, recorded in every report
and beside every saved model."""
from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path

PACKAGES = ("torch", "ray", "optuna", "numpy", "pandas", "scikit-learn", "digit-tune")


def versions() -> dict[str, str]:
    """Python's and the installed packages' versions ("not installed" for one that is missing)."""
    out = {"python": platform.python_version()}
    for pkg in PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def git_commit(folder: Path = Path(__file__).parent) -> str:
    """The commit checked out at `folder` (this code's), or "unknown" outside a git checkout."""
    try:
        r = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=5)
        return r.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"
