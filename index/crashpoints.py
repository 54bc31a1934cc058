"""Named points in the write path where a test can freeze the process, to kill it there.

Test hook only; inert unless `NEWSRAG_INDEX_PAUSE_AT` is set. When the write reaches the point
named by that variable, the process creates the file named by `NEWSRAG_INDEX_PAUSE_FILE` (so
the test knows it got there) and sleeps until it is killed.

Points, in order: "before_commit" (rows inserted, transaction open), "after_commit",
"faiss_tmp_written" (new FAISS file written to its temp name, not yet moved into place),
"faiss_replaced" (new FAISS file in place, manifest still old), "after_manifest".
"""

from __future__ import annotations

import os
import time
from pathlib import Path

PAUSE_AT_ENV = "NEWSRAG_INDEX_PAUSE_AT"
PAUSE_FILE_ENV = "NEWSRAG_INDEX_PAUSE_FILE"
POINTS = ("before_commit", "after_commit", "faiss_tmp_written", "faiss_replaced", "after_manifest")


def reached(point: str) -> None:
    """Freeze here if the environment asks for it (tests only)."""
    if os.environ.get(PAUSE_AT_ENV) != point:
        return
    marker = os.environ.get(PAUSE_FILE_ENV)
    if marker:
        Path(marker).write_text(point, encoding="utf-8")
    while True:
        time.sleep(3600)
