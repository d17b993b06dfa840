"""The bundled demo aggregator: a juredian-like fixture site on 127.0.0.1 (`sieve demo`, tests, benchmarks).

A fixture, not orchestration: it imports nothing of sieve. Run it alone with `python -m demo`.
"""

from __future__ import annotations

from demo.server import DemoServer
from demo.site import DemoSite

__all__ = ["DemoServer", "DemoSite"]
