#!/usr/bin/env python3
"""Per-thread CPU of a running `reactor run`, and how long its threads
waited for a CPU, sampled from /proc (BENCHMARKS.md, "End-to-end
throughput", sixth round).

Usage: scripts/thread-usage.py [--pid PID] [--every SECONDS] [--for SECONDS]

Without --pid it waits for a `reactor ... run` process to start (start it,
or `scripts/bench`, in another shell), then every interval prints the
machine's busy cores (/proc/stat), and for each of Reactor's threads that
ran or waited: the cores it ran on (`run`) and the cores' worth of time it
spent runnable but waiting for a CPU (`wait`, from schedstat). A thread
that waits about as long as it runs is short of CPU, not of work. Threads
of one name are shown apart, by the last digits of their thread id.
"""
import argparse
import os
import sys
import time
from pathlib import Path

NS = 1e9
# /proc/stat counts in USER_HZ ticks.
TICK = 1.0 / os.sysconf("SC_CLK_TCK")


def find_reactor():
    """The pid of a `reactor ... run` process, waiting until one exists."""
    while True:
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                argv = cmdline.read_bytes().split(b"\0")
            except OSError:
                continue
            if argv and argv[0].endswith(b"reactor") and b"run" in argv[1:]:
                return int(cmdline.parent.name)
        time.sleep(0.01)


def machine_busy():
    """Seconds the machine's CPUs have been busy, summed over CPUs."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    # user nice system (idle iowait) irq softirq steal
    return (sum(fields[0:3]) + sum(fields[5:8])) * TICK


def threads(pid):
    """{thread label: (seconds run, seconds waited for a CPU)}."""
    out = {}
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return out  # the process is gone
    for task in tasks:
        try:
            name = (task / "comm").read_text().strip()
            run, wait, _ = (task / "schedstat").read_text().split()
        except (OSError, ValueError):
            continue
        out[f"{name}/{task.name[-3:]}"] = (int(run) / NS, int(wait) / NS)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pid", type=int)
    parser.add_argument("--every", type=float, default=0.1)
    parser.add_argument("--for", dest="duration", type=float, default=30.0)
    args = parser.parse_args()
    pid = args.pid or find_reactor()
    print(f"reactor pid {pid}", flush=True)
    start = time.monotonic()
    before = (time.monotonic(), machine_busy(), threads(pid))
    while time.monotonic() - start < args.duration and Path(f"/proc/{pid}").exists():
        time.sleep(args.every)
        now = (time.monotonic(), machine_busy(), threads(pid))
        if not now[2]:
            break
        span = now[0] - before[0]
        rows = []
        for label, (run, wait) in now[2].items():
            run0, wait0 = before[2].get(label, (0.0, 0.0))
            ran, waited = (run - run0) / span, (wait - wait0) / span
            if ran + waited >= 0.02:
                rows.append((ran, waited, label))
        if rows:
            rows.sort(reverse=True)
            total_run = sum(r for r, _, _ in rows)
            total_wait = sum(w for _, w, _ in rows)
            detail = "  ".join(f"{label} run {r:.2f} wait {w:.2f}" for r, w, label in rows[:6])
            print(
                f"{now[0] - start:6.2f}s machine {(now[1] - before[1]) / span:.2f} cores busy;"
                f" reactor run {total_run:.2f} wait {total_wait:.2f} | {detail}",
                flush=True,
            )
        before = now
    return 0


if __name__ == "__main__":
    sys.exit(main())
