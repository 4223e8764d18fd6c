"""One history per job: database records, event-log lifecycle and process evidence joined.

    join(jobs, logs) -> Picture     db jobs with their `history`, log-only jobs, unlinked
                                    process evidence and log events (docs/EVENTLOGS.md)
"""

from __future__ import annotations

from .join import Picture, join

__all__ = ["Picture", "join"]
