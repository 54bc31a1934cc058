"""Document ingest: find files, read .txt/.md/.html/.pdf/.jsonl into Documents with metadata.

`discover` turns the paths a user gives into `(path, source)` pairs; `read_file` reads one file
into a `FileBatch`. Bad content never raises: it becomes an `IngestProblem` that says what is
wrong and what to do.
"""

from rag.ingest.batch import FileBatch, IngestProblem
from rag.ingest.discover import discover
from rag.ingest.read import SUPPORTED_SUFFIXES, read_file

__all__ = ["SUPPORTED_SUFFIXES", "FileBatch", "IngestProblem", "discover", "read_file"]
