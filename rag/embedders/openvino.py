"""OpenVINO runtime for the same sentence-transformers model: same vectors, faster on CPU.

On first use the model is loaded through sentence-transformers and its forward pass
(transformer, pooling, normalization) is traced into an OpenVINO IR in the cache directory, with
its tokenizer and a small JSON (prompts, token limit, dimension). Later loads read those three,
without torch: faster start, less memory. Measured on 2 cores (AVX512-BF16,
`benchmarks/embed.py`): 1.3-1.4x torch's speed at the same precision; bf16 matrix products
accumulate in fp32, and the vectors stay at cosine >= 0.9999 to torch fp32.

At precision int8 the IR is quantized once more, statically, by NNCF on the packaged
calibration texts (`rag.embedders.calibration`), checked against the float IR, and cached inside
the float IR's directory under a key of the recipe and the texts; later loads need no NNCF.
On 2 cores with AVX-512 VNNI it embeds 2.3-2.6x as fast as fp32, with no XQuAD R@1 or R@5
more than 0.005 lower (README, "int8 embeddings").
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from index.atomic import fsync_dir, fsync_tree
from rag.embedders import calibration, heap, precision
from rag.embedders.sentence_transformers import (
    _PROGRESS_MIN,
    SentenceTransformerEmbedder,
    _load_sentence_transformer,
)
from rag.embedders.turns import Lanes
from rag.errors import ModelError

if TYPE_CHECKING:
    from rag.settings import EmbeddingSettings

log = logging.getLogger(__name__)

_TOKENIZE_SLICE = 512
"""Texts tokenized at a time (their ids kept as int32, not as Python ints)."""
_QUESTION_TEXTS = 8
"""A call with this many texts or fewer is latency-bound (a question, an answer's sentences)."""
_INT8_PAD_TO = 16
"""int8 pads each batch to a multiple of this many tokens. Every new input shape costs OpenVINO
new int8 kernels (time and memory that stays): Wikinews ingest, 250 articles, took 31 s and
peaked at 1.45 GB padded to 16, 187 s and 1.9 GB unpadded. Padding is masked: same vectors."""
_INT8_BAD_WIDTHS = frozenset({32})
"""Batch widths (tokens) that int8 does not run at: with its unquantized operations in bf16,
OpenVINO 2026.4's CPU plugin computes a 32-token input wrong (cosine 0.93-0.96 to fp32, every
other width from 8 to 512 >= 0.999; the fused attention, fine with SNIPPETS_MODE=DISABLE or f32,
both slower). Such a batch is padded one token wider. `tests/rag/test_embedders.py` checks every
width the embedder uses against fp32, so a runtime with another bad width is found there."""
_BATCH_WIDTH = 128
"""`embedding.batch_size` texts of this many tokens make a batch; shorter texts go more to a
batch, longer fewer (`_batches`)."""
_IR_NAME = "model.xml"
_META_NAME = "embedder.json"  # written last: its presence marks a complete conversion
_TOKENIZER_DIR = "tokenizer"
_INT8_PREFIX = "int8-"  # an int8 model's directory, inside its float IR's directory
_INT8_META_NAME = "quantization.json"  # written last: marks a complete int8 model


class _ConvertedModel:
    """What encoding needs besides the IR: tokenizer, prompts, token limit, dimension (the
    parts of a SentenceTransformer the embedder reads)."""

    def __init__(
        self, tokenizer: Any, prompts: dict[str, str], max_seq_length: int, dim: int
    ) -> None:
        self.tokenizer, self.prompts = tokenizer, prompts
        self.max_seq_length, self._dim = max_seq_length, dim

    def get_embedding_dimension(self) -> int:
        return self._dim

    @classmethod
    def load(cls, directory: Path) -> _ConvertedModel:
        from transformers import AutoTokenizer

        try:
            meta = json.loads((directory / _META_NAME).read_text(encoding="utf-8"))
            tokenizer = AutoTokenizer.from_pretrained(directory / _TOKENIZER_DIR)
            return cls(tokenizer, meta["prompts"], int(meta["max_seq_length"]), int(meta["dim"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(
                f"the converted embedding model in {directory} is damaged ({exc}); delete that "
                "directory and it is rebuilt on next use"
            ) from exc


def available() -> bool:
    """Whether the `openvino` package imports (it is a dependency; a broken install may lack it)."""
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


class OpenVINOEmbedder(SentenceTransformerEmbedder):
    """An `Embedder` running a sentence-transformers model's forward pass in OpenVINO."""

    def __init__(self, settings: EmbeddingSettings) -> None:
        super().__init__(settings)
        self.precision = precision.for_runtime(settings, "openvino")  # int8 possible here
        self._compiled: Any = None
        self._input_names: tuple[str, ...] = ()
        self._tokenizing = threading.Lock()  # the tokenizer is not thread-safe
        self._lanes = Lanes(1)  # one per stream the model is compiled with (see _load)
        self._requests: list[Any] = []
        self._pad_id = 0  # the tokenizer's padding id (see _load)
        self._whole_ir: Path | None = None
        self._whole_config: dict[str, Any] = {}
        self._whole_request: Any = None
        self._whole_started = False
        self._whole_lock = threading.Lock()

    def _load(self) -> Any:
        import openvino as ov

        # A converted model needs nothing from the model directory: no build, no checksums.
        ir = self._ir_path(self._model_location())
        if not (ir.parent / _META_NAME).is_file():
            location = self._resolve_location()  # builds (or repairs) the model first
            ir = self._ir_path(location)  # a build changes the files the key is stamped from
            if not (ir.parent / _META_NAME).is_file():
                self._convert_once(location, ir)
        model = _ConvertedModel.load(ir.parent)
        if self.precision == "int8":
            ir = self._int8_ir(ir, model)  # back to the float IR if int8 cannot be made
        # Two streams of a core each where there are two cores: questions get a lane of their
        # own while an upload embeds on the other (`Lanes`); on one core, one stream.
        threads = self.settings.threads or os.cpu_count() or 1
        streams = 2 if threads >= 2 else 1
        # int8 runs what it does not quantize (softmax, norms, ...) at the float precision.
        floating = precision.float_precision() if self.precision == "int8" else self.precision
        config: dict[str, Any] = {
            "INFERENCE_PRECISION_HINT": "bf16" if floating == "bf16" else "f32",
            "NUM_STREAMS": streams,
            "INFERENCE_NUM_THREADS": threads,
        }
        heap.cap_arenas()  # before the runtime's threads and the lanes' first allocations
        try:
            core = ov.Core()
            self._compiled = core.compile_model(core.read_model(ir), "CPU", config)
        except RuntimeError as exc:
            raise ModelError(
                f"OpenVINO cannot compile the embedding model ({str(exc).splitlines()[0][:200]}); "
                f"delete {ir.parent} to rebuild it, or set embedding.runtime = 'torch'"
            ) from exc
        self._input_names = tuple(p.get_any_name() for p in self._compiled.inputs)
        self._requests = [self._compiled.create_infer_request() for _ in range(streams)]
        self._lanes = Lanes(streams)
        self._pad_id = model.tokenizer.pad_token_id or 0
        # One inference now, on this thread alone: pyopenvino initializes a function-local
        # static on a request's first input copy while holding it and waiting for the GIL; two
        # lanes making their first copy at once (a thread holding the GIL waits on that
        # static) hung an ingest for good.
        self._requests[0].infer(self._inputs([[self._pad_id]], 1))
        # A question on an idle machine runs on every core: the same model compiled once more
        # as one stream of all threads (on the first question: an index run never pays it).
        self._whole_ir = ir
        self._whole_config = {**config, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY"}
        self._whole_request, self._whole_started = None, False
        log.info("loaded embedder %s (OpenVINO, %s)", self.id, self.precision)
        return model

    def _whole(self) -> Any:
        """The infer request of the model compiled as one stream over all threads, or None
        until it is ready: the first question starts its compile (0.7 s, on another thread,
        so no question waits for it, and an index run, which asks nothing, never pays it)."""
        with self._whole_lock:
            if self._whole_request is None and not self._whole_started:
                self._whole_started = True
                threading.Thread(target=self._compile_whole, daemon=True).start()
            return self._whole_request

    def _compile_whole(self) -> None:
        import openvino as ov

        try:
            core = ov.Core()
            model = core.read_model(self._whole_ir)
            compiled = core.compile_model(model, "CPU", self._whole_config)
            request = compiled.create_infer_request()
        except RuntimeError as exc:
            log.warning("questions embed on one core (%s)", str(exc).splitlines()[0])
            return
        with self._whole_lock:
            self._whole_request = request

    def _convert_once(self, location: str, ir: Path) -> None:
        """First use: trace the model through torch; later loads need no torch at all."""
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        st = _load_sentence_transformer(location, self.settings.model)
        st.max_seq_length = min(self.settings.max_seq_length, st.max_seq_length or 512)
        _convert(st.eval(), ir, location)
        _prune_stale(ir.parent, location)

    def _int8_ir(self, ir: Path, model: _ConvertedModel) -> Path:
        """The int8 IR made from the float IR `ir` (quantized now if not cached). Where it
        cannot be made and int8 came from `auto`, the float IR, with a warning."""
        target = _int8_path(ir)
        if (target.parent / _INT8_META_NAME).is_file():
            return target
        try:
            if not calibration.nncf_available():
                raise ModelError(
                    "embedding.precision 'int8' needs NNCF once, to quantize the model; "
                    f"{calibration.INSTALL_HINT}, or {calibration.float_hint()}"
                )
            _quantize_once(ir, model, target)
        except ModelError as exc:
            if self.settings.precision != "auto":
                raise
            self.precision = precision.float_precision()
            log.warning("no int8 embedding model (%s); embedding in %s", exc, self.precision)
            return ir
        return target

    def _ir_path(self, location: str) -> Path:
        """Where this model's IR lives: keyed by model files, max length and OpenVINO version."""
        import openvino as ov

        key = {
            "location": str(Path(location).resolve()) if Path(location).exists() else location,
            "stamp": _model_stamp(Path(location)),
            "max_seq_length": self.settings.max_seq_length,
            "openvino": ov.get_version(),
            "format": 2,  # 2: weights stored as fp16
        }
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        return self.settings.cache_dir / "openvino" / digest / _IR_NAME

    def _inputs(self, rows: Sequence[Sequence[int]], longest: int) -> dict[str, Any]:
        """One batch's model inputs: token ids right-padded to the batch width, attention mask
        (and token types where the model takes them)."""
        width = longest
        if self.precision == "int8":
            width = -(-longest // _INT8_PAD_TO) * _INT8_PAD_TO
            while width in _INT8_BAD_WIDTHS:
                width += 1
        input_ids = np.full((len(rows), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for r, row in enumerate(rows):
            input_ids[r, : len(row)] = row
            mask[r, : len(row)] = 1
        inputs = {"input_ids": input_ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            inputs["token_type_ids"] = np.zeros_like(input_ids)
        return {name: inputs[name] for name in self._input_names}

    def _tokenize(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Every text's token ids, end to end in one int32 array, and where each starts (one
        more entry than texts). Tokenized a slice at a time: lists of Python ints for all of
        an ingest's texts at once raised the peak RSS of a Wikinews ingest by 60-120 MB."""
        model = self.model
        parts, lengths = [], []
        for start in range(0, len(texts), _TOKENIZE_SLICE):
            with self._tokenizing:
                rows = model.tokenizer(
                    list(texts[start : start + _TOKENIZE_SLICE]),
                    truncation=True,
                    max_length=model.max_seq_length,
                    return_attention_mask=False,
                    return_token_type_ids=False,
                )["input_ids"]
            lengths.extend(len(row) for row in rows)
            parts.append(np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int32))
        starts = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=starts[1:])
        return np.concatenate(parts), starts

    def _encode(self, texts: Sequence[str], prompt: str, *, query: bool = False) -> np.ndarray:
        texts = [prompt + t for t in texts] if prompt else list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        ids, starts = self._tokenize(texts)  # loads the model first
        lengths = np.diff(starts)
        # Longest first (memory peaks early), by tokens: a batch pads to its longest text, and
        # sorting by characters left 30% of the tokens computed as padding on Wikinews
        # passages and sentences, by tokens 15% (int8, padded to 16): 300 articles embed in
        # 12.6 s instead of 13.9.
        order = np.argsort(-lengths, kind="stable")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        batches = _batches(order, lengths, self.settings.batch_size)
        # A question, or the few sentences an answer checks, is served as a question.
        question = query or len(texts) <= _QUESTION_TEXTS

        def run(rows: np.ndarray) -> None:
            rows_ids = [ids[starts[i] : starts[i + 1]] for i in rows]
            inputs = self._inputs(rows_ids, int(lengths[rows].max()))
            whole = self._whole() if question and self._lanes.count > 1 and _cores_spare() else None
            if whole is not None:
                with self._lanes.query_whole() as lane:
                    request = whole if lane is None else self._requests[lane]
                    out[rows] = request.infer(inputs)[0]
                return
            with self._lanes.query() if question else self._lanes.batch() as lane:
                out[rows] = self._requests[lane].infer(inputs)[0]  # copied before release

        progress = None
        if self.settings.show_progress and len(texts) >= _PROGRESS_MIN:
            from tqdm.auto import tqdm

            progress = tqdm(total=len(batches), desc="Batches")
        try:
            if question or self._lanes.count == 1 or len(batches) == 1:
                for rows in batches:
                    run(rows)
                    if progress is not None:
                        progress.update()
            else:  # one worker per lane; each batch takes the lane `Lanes.batch` gives it
                with ThreadPoolExecutor(self._lanes.count, thread_name_prefix="embed") as pool:
                    for _ in pool.map(run, batches):
                        if progress is not None:
                            progress.update()
        finally:
            if progress is not None:
                progress.close()
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)


def _batches(order: np.ndarray, lengths: np.ndarray, size: int) -> list[np.ndarray]:
    """`order` (longest first) cut into batches of about `size` x `_BATCH_WIDTH` tokens each:
    short texts go in larger batches (at most 4 x `size`), long ones in smaller (each a
    multiple of 16 rows where it has 16 or more). One row count per width, so no more input
    shapes than fixed batches. Measured one stream at a time (int8, AMX Xeon), per token:
    16-token rows 94 us at 32 a batch, 69 at 128; 48-token 76 / 71 at 64; 208-token 92 / 88
    at 16. Wikinews ingest embeds 2.5-4% faster than with 32 texts a batch throughout."""
    batches, start = [], 0
    while start < len(order):
        width = -(-int(lengths[order[start]]) // _INT8_PAD_TO) * _INT8_PAD_TO
        rows = max(1, min(4 * size, size * _BATCH_WIDTH // width))
        if rows >= 16:
            rows -= rows % 16
        batches.append(order[start : start + rows])
        start += rows
    return batches


def _cores_spare() -> bool:
    """Whether the machine has a core to spare for a question's second thread: its load
    (1-minute average, this process's own work included) under the number of cores. Measured
    on 2 cores, one query: all threads p50 5.1 ms against one lane's 7.8 on a quiet machine,
    7.8-9.1 against 11.3-11.8 with one core busy elsewhere, but 24-28 against 19.5 with both
    busy (the second thread waits for a core)."""
    try:
        load = os.getloadavg()[0]
    except OSError:  # not available here: assume it is not busy
        return True
    return load < (os.cpu_count() or 1)


def _model_stamp(location: Path) -> str:
    """Sizes and mtimes of a model directory's files (a rebuilt model gets a new IR)."""
    if not location.is_dir():
        return ""
    parts = []
    for path in sorted(location.rglob("*")):
        if path.is_file():
            stat = path.stat()
            parts.append(f"{path.relative_to(location)}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _forward_module(st: Any) -> Any:
    """The sentence-transformers forward pass (transformer, pooling, ...) as a traceable module."""
    import torch

    class Forward(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.st = st

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor,
            token_type_ids: torch.Tensor | None = None,
        ) -> torch.Tensor:
            features = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                features["token_type_ids"] = token_type_ids
            return self.st(features)["sentence_embedding"]

    return Forward().eval()


def _convert(st: Any, ir: Path, location: str) -> None:
    """Trace the model into an OpenVINO IR at `ir`, written atomically (temp dir, rename)."""
    import openvino as ov
    import torch

    example = st.tokenizer(
        ["passage: Ein Beispiel.", "query: ein zweites"], padding=True, return_tensors="pt"
    )
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in example]
    module = _forward_module(st)
    log.info("converting the embedding model to OpenVINO (once; cached in %s)", ir.parent)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # Tracing warns about Python branches on shapes; the traced graph is checked
            # against torch by the tests (padding, one text, truncation at the limit).
            warnings.simplefilter("ignore")
            converted = ov.convert_model(
                module,
                example_input={n: example[n] for n in names},
                input=[(n, ov.PartialShape([-1, -1]), ov.Type.i64) for n in names],
            )
    except Exception as exc:  # any tracing failure becomes one clear message
        raise ModelError(
            f"cannot convert the embedding model to OpenVINO ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:200]}); set embedding.runtime = 'torch' to run it in "
            "torch instead"
        ) from exc
    for port, name in zip(converted.inputs, names):
        port.get_tensor().set_names({name})
    try:
        _write(converted, st, names, location, ir)
    except OSError as exc:
        raise ModelError(
            f"cannot write the OpenVINO conversion into {ir.parent.parent} ({exc}); make it "
            "writable, point RAG_CACHE_DIR (embedding.cache_dir) at a writable directory, or set "
            "embedding.runtime = 'torch'"
        ) from exc


def _write(converted: Any, st: Any, names: list[str], location: str, ir: Path) -> None:
    """IR, tokenizer and embedder.json, published into `ir.parent` (`_publish`)."""
    import openvino as ov

    def fill(tmp: Path) -> None:
        ov.save_model(converted, tmp / _IR_NAME, compress_to_fp16=True)  # exact: cos 1.0
        st.tokenizer.save_pretrained(tmp / _TOKENIZER_DIR)
        meta = {
            "prompts": dict(st.prompts or {}),
            "max_seq_length": int(st.max_seq_length),
            "dim": int(st.get_embedding_dimension()),
            "inputs": names,
            "location": location,
        }
        (tmp / _META_NAME).write_text(json.dumps(meta, indent=2), encoding="utf-8")

    _publish(ir.parent, _META_NAME, ".building-", fill)


def _publish(target: Path, marker: str, prefix: str, fill: Callable[[Path], None]) -> None:
    """`fill` a temp directory beside `target`, fsync it and rename it to `target`. `marker`,
    the file `fill` writes last, marks a complete one: an incomplete `target` (a killed build)
    is replaced; a complete one that a concurrent builder put there first is kept."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=target.parent))
    try:
        fill(tmp)
        fsync_tree(tmp)
        if target.exists() and not (target / marker).is_file():
            shutil.rmtree(target)
        try:
            tmp.rename(target)
        except OSError:
            if not (target / marker).is_file():  # not a concurrent builder's win
                raise
        fsync_dir(target.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _prune_stale(keep: Path, location: str) -> None:
    """Remove the conversions this one replaces: the same model converted under an older key
    (another OpenVINO version, a rebuilt model) and models whose directory is gone. Each is
    about 235 MB; a conversion of another model that still exists is kept."""
    for sibling in keep.parent.iterdir():
        if sibling == keep or not sibling.is_dir() or sibling.name.startswith(".building-"):
            continue
        try:
            meta = json.loads((sibling / _META_NAME).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # not ours to judge
        other = meta.get("location") if isinstance(meta, dict) else None
        gone = isinstance(other, str) and Path(other).is_absolute() and not Path(other).exists()
        if other == location or gone:
            log.info("removing the outdated OpenVINO conversion %s", sibling)
            shutil.rmtree(sibling, ignore_errors=True)


def _int8_path(ir: Path) -> Path:
    """Where the int8 model made from the float IR `ir` lives: beside it, keyed by the
    quantization recipe and the calibration texts (the float IR's key covers the model)."""
    key = json.dumps(calibration.recipe_key(), sort_keys=True).encode()
    return ir.parent / f"{_INT8_PREFIX}{hashlib.sha256(key).hexdigest()[:16]}" / _IR_NAME


def _quantize_once(ir: Path, model: _ConvertedModel, target: Path) -> None:
    """Quantize the float IR `ir` with NNCF into `target` (atomically; older recipes' int8
    models beside it are removed)."""
    import openvino as ov

    float_model = ov.Core().read_model(ir)
    names = [port.get_any_name() for port in float_model.inputs]
    samples = calibration.calibration_inputs(
        calibration.load_texts(), model.tokenizer, model.prompts, model.max_seq_length, names
    )
    log.info("quantizing the embedding model to int8 (once; cached in %s)", target.parent)
    try:
        quantized = calibration.quantize(float_model, samples)
        # A quantization that went wrong (a new NNCF, damaged texts) is refused here, not
        # found later as lost recall.
        agreement = calibration.agreement(ov.Core().read_model(ir), quantized, samples)
    except ModelError:
        raise
    except Exception as exc:  # any NNCF or OpenVINO failure becomes one clear message
        raise ModelError(
            f"cannot quantize the embedding model to int8 ({type(exc).__name__}: "
            f"{(str(exc).splitlines() or [''])[0][:200]}); {calibration.float_hint()}"
        ) from exc
    if agreement["min"] < calibration.MIN_COSINE:
        raise ModelError(
            f"the int8 embedding model is too far from the float one (cosine {agreement['min']} "
            f"< {calibration.MIN_COSINE} on the calibration texts; NNCF "
            f"{calibration.nncf_version()}); {calibration.float_hint()}, and report it"
        )
    try:
        _write_int8(quantized, target, len(samples), agreement)
    except OSError as exc:
        raise ModelError(
            f"cannot write the int8 embedding model into {target.parent.parent} ({exc}); make "
            f"it writable, or {calibration.float_hint()}"
        ) from exc
    _prune_int8(target.parent.parent, keep=target.parent)


def _write_int8(quantized: Any, target: Path, texts: int, agreement: dict[str, float]) -> None:
    """The int8 IR and its quantization.json, published into `target.parent` (`_publish`)."""
    import openvino as ov

    def fill(tmp: Path) -> None:
        ov.save_model(quantized, tmp / _IR_NAME, compress_to_fp16=True)
        meta = {
            "recipe": calibration.recipe_key(),
            "calibration_texts": texts,
            "nncf": calibration.nncf_version(),
            "cosine_to_float": agreement,
        }
        (tmp / _INT8_META_NAME).write_text(json.dumps(meta, indent=2), encoding="utf-8")

    _publish(target.parent, _INT8_META_NAME, ".building-int8-", fill)


def _prune_int8(directory: Path, keep: Path) -> None:
    """Remove the int8 models of other recipes or texts beside `keep` (about 215 MB each)."""
    for sibling in directory.glob(f"{_INT8_PREFIX}*"):
        if sibling != keep and sibling.is_dir():
            log.info("removing the outdated int8 embedding model %s", sibling)
            shutil.rmtree(sibling, ignore_errors=True)
