"""Calibrate the support check's meaning threshold (`generation.support_threshold`).

XQuAD has the same paragraphs in English and German. Where a paragraph splits into the same
number of sentences in both, sentence i of one is a translation of sentence i of the other: a
faithful rewrite of a source sentence (in another language, the hardest case of paraphrase).
Negatives are the other sentences of the same paragraph: on topic, but another claim.

    python benchmarks/calibrate_support.py ../shared/data/xquad/xquad.en.json \
        ../shared/data/xquad/xquad.de.json

prints, for candidate thresholds, the share of translations accepted and of other-claim
sentences rejected, both directions (en answer vs de source, and de paraphrase vs de source is
approximated by the same pairs reversed).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def paragraphs(path: Path) -> list[str]:
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    return [p["context"] for a in data for p in a["paragraphs"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("english", type=Path, help="xquad.en.json")
    parser.add_argument("german", type=Path, help="xquad.de.json")
    args = parser.parse_args()

    from rag.chunking import split_sentences
    from rag.embedders import create_embedder
    from rag.settings import load_settings

    embedder = create_embedder(load_settings().embedding)
    pairs: list[tuple[list[str], list[str]]] = []
    for en, de in zip(paragraphs(args.english), paragraphs(args.german)):
        s_en = [en[a:b] for a, b in split_sentences(en, "en")]
        s_de = [de[a:b] for a, b in split_sentences(de, "de")]
        if len(s_en) == len(s_de) and len(s_en) >= 2:
            pairs.append((s_en, s_de))
    flat_en = [s for en, _ in pairs for s in en]
    flat_de = [s for _, de in pairs for s in de]
    v_en = embedder.embed_passages(flat_en)
    v_de = embedder.embed_passages(flat_de)
    pos, neg = [], []
    i = 0
    for en, _ in pairs:
        n = len(en)
        block = v_en[i : i + n] @ v_de[i : i + n].T
        for j in range(n):
            pos.append(float(block[j, j]))
            others = np.delete(block[j], j)
            neg.append(float(others.max()))
        i += n
    pos_a, neg_a = np.array(pos), np.array(neg)
    print(f"{len(pairs)} aligned paragraphs, {len(pos)} translated sentences")
    print(f"translation cosine p05 {np.quantile(pos_a, 0.05):.3f} p50 {np.median(pos_a):.3f}")
    print(f"best other sentence p50 {np.median(neg_a):.3f} p95 {np.quantile(neg_a, 0.95):.3f}")
    print(f"{'threshold':>9} {'accepted':>9} {'rejected':>9}")
    for t in np.arange(0.80, 0.935, 0.01):
        print(f"{t:9.2f} {np.mean(pos_a >= t):9.3f} {np.mean(neg_a < t):9.3f}")


if __name__ == "__main__":
    main()
