"""bitsdb: offline forensic parser for the Windows BITS job database (qmgr.db, qmgr0/1.dat).

Public API: `parse(path)` yields Job records; `read(path)` returns everything one file
holds (jobs, orphan files, warnings). Model types live in `bitsdb.model`.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["parse", "read", "__version__"]


def __getattr__(name: str):
    # Lazy: `import bitsdb` (and so `bitsdb --help`) must not pay for pyesedb/construct.
    if name in ("parse", "read"):
        from . import api

        return getattr(api, name)
    raise AttributeError(name)
