"""How OpenMP's idle threads wait: chosen from how busy the machine is, because that choice never
changes a number (the thread count, which does, is fixed: engine/threads.py).

On a quiet machine threads that spin a moment at the end of each operation are fastest (one epoch of
cnn_mnist on 2 cores: 0.6 s, against 0.9-1.3 s when they sleep). Beside another busy process the
spinning thread takes the core that process needs, and both slow down (2.2-2.6 s; 1.7 s when they
sleep). The wait policy is read once, when torch loads OpenMP: the command line chooses it before it
imports torch, from the other processes' load over a fifth of a second (this process's own excluded),
unless ``$OMP_WAIT_POLICY`` says already. Measured by benchmarks/busy_neighbour.py.
"""
from __future__ import annotations

import os
import sys
import time

WINDOW_S = 0.2
BUSY_CORES = 0.5  # other processes keeping at least half a core busy: threads sleep rather than spin


def other_busy_cores(window_s: float = WINDOW_S) -> float:
    """How many cores other processes keep busy now: the machine's busy CPU time over ``window_s`` less
    this process's own (psutil)."""
    import psutil

    me = psutil.Process()

    def busy() -> tuple[float, float]:
        total = psutil.cpu_times()
        idle = total.idle + getattr(total, "iowait", 0.0)
        own = me.cpu_times()
        return sum(total) - idle, own.user + own.system

    machine, own = busy()
    time.sleep(window_s)
    machine_after, own_after = busy()
    return max(0.0, (machine_after - machine - (own_after - own)) / window_s)


def choose_before_torch() -> str | None:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` when other work keeps the machine busy and torch is not loaded
    yet; leave the user's own setting, and OpenMP's default on a quiet machine. Returns the policy set."""
    if "OMP_WAIT_POLICY" in os.environ or "torch" in sys.modules:
        return None
    try:
        busy = other_busy_cores()
    except Exception:  # no psutil reading on this system: OpenMP's default
        return None
    if busy < BUSY_CORES:
        return None
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return "PASSIVE"
