"""Memory of a process as the kernel counts it (Linux /proc/PID/status): resident now and its peak, and
resetting that peak (/proc/PID/clear_refs, "5") so a scenario's own peak can be read. Elsewhere the peak
falls back to getrusage for this process and the rest is None."""
from __future__ import annotations

import resource
import sys

MB = 1024 * 1024


def memory(pid: int | str = "self") -> dict:
    """{"rss_mb", "peak_mb"} of `pid` (None when unknown)."""
    out = {"rss_mb": None, "peak_mb": None}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out["rss_mb" if key == "VmRSS" else "peak_mb"] = round(int(value.split()[0]) / 1024, 1)
    except (OSError, ValueError):
        if pid == "self":
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            out["peak_mb"] = round(peak / (MB if sys.platform == "darwin" else 1024), 1)
    return out


def reset_peak(pid: int | str = "self") -> bool:
    """Set the process' peak resident size back to its current size; False where the kernel does not allow it."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False
