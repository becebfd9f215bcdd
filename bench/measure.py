#!/usr/bin/env python3
"""Runs a command with its stdout discarded and prints "wall_s cpu_s max_rss_kib".

Wall time from a monotonic clock around the child, CPU time (user + system) and peak RSS
from the child's own rusage (wait4), all to the microsecond. /usr/bin/time prints wall time
in hundredths of a second, which is 5% of a 0.2 s run and made a growth ratio taken against
such a run move by as much from rounding alone. On failure the child's stderr is printed and
the exit status is the child's.
"""
import os
import subprocess
import sys
import tempfile
import time

with tempfile.TemporaryFile() as err:
    start = time.perf_counter()
    child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=err)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        err.seek(0)
        sys.stderr.write(err.read().decode(errors="replace"))
        sys.exit(code if code > 0 else 1)
print(f"{wall:.4f} {usage.ru_utime + usage.ru_stime:.4f} {usage.ru_maxrss}")
