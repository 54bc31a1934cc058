"""A LangChain retriever over an `Engine`, for users who compose LangChain chains.

    from rag import Engine
    from rag.retrieval.langchain import EngineRetriever

    retriever = EngineRetriever(engine=Engine.open("my-index"), k=5)
    docs = retriever.invoke("Was sagte Stoltenberg?")   # list[langchain_core.documents.Document]

Each Document's `page_content` is the passage text; `metadata` carries what a citation needs:
chunk_id, doc_id, source, title, date, start, end, page, score, rank and duplicates.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field


class EngineRetriever(BaseRetriever):
    """Hybrid retrieval (with the engine's stages and filters) as a LangChain retriever."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    engine: Any = Field(description="An open rag.Engine.")
    k: int = Field(5, ge=1, le=1000)
    filters: Any = Field(None, description="rag.Filters applied to every query, or None.")

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[LCDocument]:
        hits = self.engine.search(query, k=self.k, filters=self.filters)
        return [
            LCDocument(
                page_content=h.text,
                metadata={
                    "chunk_id": h.chunk_id,
                    "doc_id": h.doc_id,
                    "source": h.source,
                    "title": h.title,
                    "date": h.date,
                    "start": h.start,
                    "end": h.end,
                    "page": h.page,
                    "score": float(h.score),
                    "rank": h.rank,
                    "duplicates": [d.to_json() for d in h.duplicates],
                },
                id=h.chunk_id,
            )
            for h in hits
        ]
