"""Near-duplicate signatures of passage texts: b-bit MinHash over word trigrams.

A passage's signature is computed once, when it is written, and stored with it; a search then
compares signatures (a vectorised equality count) instead of building and intersecting shingle
sets for every candidate. The fraction of equal slots of two signatures estimates the Jaccard
overlap of their word-trigram sets (standard error <= 0.045 with 128 slots); callers that need
the exact decision near a threshold compare the texts themselves (`rag.retrieval.fusion`).

Stable across processes and machines: words are hashed with CRC-32 (not Python's salted
`hash`), the permutations come from fixed constants.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

import numpy as np

SHINGLE_WORDS = 3
SLOTS = 128
SIGNATURE_BYTES = SLOTS * 2
"""Stored size: 128 slots of 16 bits (the low bits of each minimum: "b-bit MinHash")."""

_WORD = re.compile(r"\w+")
_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)
_rng = np.random.default_rng(0x5EED_D0C5)
# Odd multipliers and offsets of the 128 hash functions (a * x + b mod 2**64).
_A = (_rng.integers(1, 2**63, SLOTS, dtype=np.uint64) << np.uint64(1)) | np.uint64(1)
_B = _rng.integers(0, 2**63, SLOTS, dtype=np.uint64)
# Position weights that turn three word hashes into one trigram hash.
_POS = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9], dtype=np.uint64)
del _rng


def words(text: str) -> list[str]:
    """The lowercased words of `text` (letters, digits and underscore runs)."""
    return _WORD.findall(text.lower())


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads every input bit over the whole word."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def shingle_hashes(text: str) -> np.ndarray:
    """One 64-bit hash per word trigram of `text` (a text of fewer than three words is one
    shingle of all its words, so two empty texts are identical)."""
    ws = words(text)
    ids = np.fromiter(map(zlib.crc32, map(str.encode, ws)), dtype=np.uint64, count=len(ws)) + 1
    if len(ids) < SHINGLE_WORDS:
        whole = np.zeros(SHINGLE_WORDS, dtype=np.uint64)
        whole[: len(ids)] = ids
        return _mix(np.array([(whole * _POS).sum()], dtype=np.uint64))
    n = len(ids) - SHINGLE_WORDS + 1
    with np.errstate(over="ignore"):
        combined = ids[:n] * _POS[0] + ids[1 : n + 1] * _POS[1] + ids[2 : n + 2] * _POS[2]
        return _mix(combined)


def signature(text: str) -> bytes:
    """The MinHash signature of `text`: `SIGNATURE_BYTES` bytes (128 little-endian uint16)."""
    return signatures([text])[0]


def signatures(texts: Sequence[str]) -> list[bytes]:
    """`signature` of each text."""
    out = []
    with np.errstate(over="ignore"):
        for text in texts:
            hashes = shingle_hashes(text)
            minima = (hashes[:, None] * _A[None, :] + _B[None, :]).min(axis=0)
            out.append(((minima >> np.uint64(32)) & np.uint64(0xFFFF)).astype("<u2").tobytes())
    return out


def as_array(sig: bytes) -> np.ndarray:
    """A stored signature as a (SLOTS,) uint16 array; ValueError if it has the wrong size."""
    if len(sig) != SIGNATURE_BYTES:
        raise ValueError(f"a signature has {SIGNATURE_BYTES} bytes, got {len(sig)}")
    return np.frombuffer(sig, dtype="<u2")


def similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Estimated Jaccard overlap of signature `a` (SLOTS,) with each row of `b` (n, SLOTS)."""
    return np.count_nonzero(b == a, axis=-1) / SLOTS
