"""Waits until a URL answers 200 (at most 30 s); exits 1 otherwise."""

from __future__ import annotations

import sys
import time
import urllib.request

deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    try:
        with urllib.request.urlopen(sys.argv[1], timeout=1) as r:
            if r.status == 200:
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.2)
print(f"{sys.argv[1]} did not answer", file=sys.stderr)
sys.exit(1)
