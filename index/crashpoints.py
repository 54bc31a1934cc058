"""Named points in the write path where a test can freeze the process, to kill it there.

Test hook only; inert unless `NEWSRAG_INDEX_PAUSE_AT` is set. When the write reaches the point
named by that variable, the process creates the file named by `NEWSRAG_INDEX_PAUSE_FILE` (so
the test knows it got there) and sleeps until it is killed.

Points of a write, in order: "before_commit" (rows inserted, transaction open),
"after_commit", "keywords_applied" (the tantivy keyword index has the write, FAISS not yet),
"faiss_tmp_written" (new FAISS file written to its temp name, not yet moved into place),
"faiss_replaced" (new FAISS file in place, manifest still old), "after_manifest".

Points of the background upkeep (`UPKEEP_POINTS`): "ann_tmp_written" (a new HNSW graph written
aside under a name marked with the writer's pid), "ann_replaced" (renamed into place,
`ann.json` still names the old one), "ann_recorded" (`ann.json` names the new graph, the old
file not yet deleted),
"keywords_caught_up" (a behind keyword index caught up and committed, not yet published).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

PAUSE_AT_ENV = "NEWSRAG_INDEX_PAUSE_AT"
PAUSE_FILE_ENV = "NEWSRAG_INDEX_PAUSE_FILE"
POINTS = (
    "before_commit",
    "after_commit",
    "keywords_applied",
    "faiss_tmp_written",
    "faiss_replaced",
    "after_manifest",
)
UPKEEP_POINTS = ("ann_tmp_written", "ann_replaced", "ann_recorded", "keywords_caught_up")


def reached(point: str) -> None:
    """Freeze here if the environment asks for it (tests only)."""
    if os.environ.get(PAUSE_AT_ENV) != point:
        return
    marker = os.environ.get(PAUSE_FILE_ENV)
    if marker:
        Path(marker).write_text(point, encoding="utf-8")
    while True:
        time.sleep(3600)
