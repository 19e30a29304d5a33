"""A harmless stand-in for an instance's main process, for the lifecycle scripts' pid and health checks."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def sleeping_process(*cmdline_words: str) -> Iterator[subprocess.Popen[bytes]]:
    """A Python process that sleeps 120 s with cmdline_words on its command line (scripts that check
    /proc/PID/cmdline take it for QEMU or the proxy); killed (only it) on exit."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", *cmdline_words])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()
