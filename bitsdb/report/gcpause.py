"""Building and packing the view allocates hundreds of thousands of small containers while every
record read is still alive; the cyclic collector would walk all of them again and again (more than
half the build time on 1,000 hosts). These phases make no reference cycles, so it rests meanwhile."""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def collector_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
