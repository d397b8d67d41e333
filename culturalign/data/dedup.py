"""Near-duplicate detection: MinHash over character n-grams, LSH banding, and a confirming Jaccard check.

Why not datasketch or rensa (measured on bench/data/clean.py's 100K rows, 20M 5-grams, CPU seconds):
datasketch 2.0 hashes every shingle in Python and builds one MinHash per document; `MinHash.bulk`
alone takes ~39 s, twice the whole cleaning budget. rensa 0.5 (Rust) computes the signatures from
pre-hashed n-grams in ~1 s, but handing them back to numpy for the confirmation step costs another
~1.6 s through Python lists, and it would add a compiled dependency whose algorithm versions change
incompatibly. This module, plain numpy, takes ~1.2 s for hashing and signatures together:

* every character n-gram is hashed at once from the UTF-32 code points of all texts (a 64-bit
  multiply-xor rolling hash with a MurmurHash3 finaliser);
* the signature is one-permutation MinHash (Li, Owen & Zhang 2012): each n-gram hash goes to one of
  `num_perm` bins and a bin keeps its minimum, so the cost is one pass over the n-grams instead of
  one per permutation (2.6 billion operations for 128 permutations here). Bins a short text leaves
  empty are filled by rotation densification (Shrivastava & Li 2014: an empty bin takes the value of
  the next non-empty bin to its right, offset by the distance), which keeps P[bin i of A == bin i
  of B] = Jaccard(A, B) for every bin, so banding and the equal-bin estimate work as for MinHash;
* LSH bands of the signature propose candidate pairs; a pair is a near duplicate only when its
  estimated Jaccard similarity (the share of equal bins) reaches the threshold;
* confirmed pairs are joined into clusters (connected components) and every row of a cluster except
  the first one is a duplicate, so "keep the first" holds across chains of edits.

The steps are separate functions so that a source too large for memory (culturalign/data/shards.py)
keeps only compact state per row, as datatrove splits it: signatures and band keys per batch (on
disk), then candidate pairs one band at a time, confirmed as they come, clusters, and the filter.

Everything is seeded and order-independent except "first", which follows the input order.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import lru_cache

import numpy as np

_MASK64 = (1 << 64) - 1
_ROLL = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit constant (golden ratio): the rolling hash multiplier
# Neighbours compared inside one LSH bucket (texts sorted by bucket then index). Buckets are small once
# exact duplicates are gone; a huge templated bucket is still clustered through the chain of neighbours.
_BUCKET_WINDOW = 64
_PAIR_CHUNK = 1 << 16  # candidate pairs compared per step (bounds memory: chunk x num_perm x 8 bytes)
_TEXT_CHUNK = 1 << 12  # texts hashed, signature rows densified per step (bounds temporary arrays)


def _fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser: a bijection that spreads every input bit over every output bit."""
    h = h ^ (h >> np.uint64(33))
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xC4CEB9FE1A85EC53)
    h ^= h >> np.uint64(33)
    return h


def ngram_hashes(texts: Sequence[str], n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """64-bit hashes of every character n-gram of every text, and the index of the text each comes from.

    The seed salts the hash (same seed, same hashes). Texts shorter than `n` characters have no
    n-gram. Repeated n-grams of one text are kept (callers needing sets take a minimum or unique).
    """
    lens = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    if int(lens.sum()) < n:
        return np.empty(0, np.uint64), np.empty(0, np.int64)
    cps = np.frombuffer("".join(texts).encode("utf-32-le"), dtype=np.uint32)
    count = len(cps) - n + 1
    h = np.full(count, np.random.default_rng(seed).integers(0, 1 << 63), dtype=np.uint64)
    for j in range(n):
        h ^= cps[j:count + j]
        h *= _ROLL
    # Positions whose n-gram runs into the next text, [max(start, end - n + 1), end) of every text,
    # marked by +1/-1 events and a running sum (cheaper than a per-position text index).
    ends = np.cumsum(lens)
    events = np.zeros(count + 1, dtype=np.int32)
    np.add.at(events, np.minimum(np.maximum(ends - lens, ends - n + 1), count), 1)
    np.add.at(events, np.minimum(ends, count), -1)
    valid = np.cumsum(events[:count], dtype=np.int32) == 0
    docs = np.repeat(np.arange(len(texts), dtype=np.int64), np.maximum(lens - n + 1, 0))
    return _fmix64(h[valid]), docs


def signatures(texts: Sequence[str], *, ngram: int, num_perm: int, seed: int) -> np.ndarray:
    """One-permutation MinHash signatures with rotation densification, shape (len(texts), num_perm).

    A text without any n-gram (shorter than `ngram`) gets a row of the maximum value: it has no
    signature and `near_duplicates` leaves it alone (exact dedup still sees it). Texts are hashed in
    chunks so the n-gram arrays stay small whatever the number of texts.
    """
    k = np.uint64(num_perm)
    sig = np.full((len(texts), num_perm), _MASK64, dtype=np.uint64)
    for start in range(0, len(texts), _TEXT_CHUNK):
        hashes, docs = ngram_hashes(texts[start:start + _TEXT_CHUNK], ngram, seed)
        # bin = h mod k, value = h div k < 2^64 / k, so value + distance * (2^64 div k) never overflows.
        block = sig[start:start + _TEXT_CHUNK].reshape(-1)  # a view: written in place
        np.minimum.at(block, docs * num_perm + (hashes % k).astype(np.int64), hashes // k)
    return _densify(sig)


def _densify(sig: np.ndarray) -> np.ndarray:
    """Fill every empty bin with the next non-empty bin to its right (circularly) plus distance * C,
    in place. Rows without any non-empty bin stay empty; rows are done in chunks to bound memory."""
    k = sig.shape[1]
    cols = np.arange(k)
    step = np.uint64(_MASK64 // k)
    empty = sig == _MASK64
    todo = np.flatnonzero(empty.any(axis=1) & ~empty.all(axis=1))
    for start in range(0, len(todo), _TEXT_CHUNK):
        rows = todo[start:start + _TEXT_CHUNK]
        block = sig[rows]
        filled = ~empty[rows]
        # Nearest non-empty bin at or right of each bin: over the row written twice (for the circular
        # wrap) and reversed, a running minimum of "own column if non-empty else 2k".
        doubled = np.concatenate([filled, filled], axis=1)[:, ::-1]
        nearest = np.where(doubled, np.arange(2 * k - 1, -1, -1, dtype=np.int32), np.int32(2 * k))
        np.minimum.accumulate(nearest, axis=1, out=nearest)
        nearest = nearest[:, ::-1][:, :k]
        sig[rows] = np.take_along_axis(block, nearest % k, axis=1) + (nearest - cols).astype(np.uint64) * step
    return sig


@lru_cache(maxsize=None)
def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows), bands * rows <= num_perm: among the choices that propose at least 95% of the
    pairs exactly at the threshold (1 - (1 - t^rows)^bands >= 0.95; pairs above it even more often),
    the one with the fewest candidates below it. A missed pair cannot be recovered later, a false
    candidate only costs one signature comparison. Without such a choice: the highest recall.
    0.85 and 128 give 12 bands of 9 rows (recall 0.958 at 0.85, 0.997 at 0.9, 0.023 at 0.5)."""
    s = np.linspace(0.0, 1.0, 501)
    below = s < threshold
    options = []
    for bands in range(1, num_perm + 1):
        for rows in range(1, num_perm // bands + 1):
            recall = 1.0 - (1.0 - threshold**rows) ** bands
            false_area = np.trapezoid(np.where(below, 1.0 - (1.0 - s**rows) ** bands, 0.0), s)
            options.append((recall < 0.95, false_area if recall >= 0.95 else -recall, bands, rows))
    _, _, bands, rows = min(options)
    return bands, rows


def band_keys(sig: np.ndarray, bands: int, rows: int, seed: int) -> np.ndarray:
    """One 64-bit key per LSH band and text, shape (bands, len(sig)): the compact per-row state the
    candidate search needs (17 x 8 bytes a row at the defaults, against 1 KiB for the signature)."""
    mult = np.random.default_rng(seed + 1).integers(0, 1 << 63, size=rows, dtype=np.uint64) | np.uint64(1)
    keys = np.empty((bands, len(sig)), dtype=np.uint64)
    for band in range(bands):
        keys[band] = _fmix64((sig[:, band * rows:(band + 1) * rows] * mult).sum(axis=1, dtype=np.uint64))
    return keys


def candidate_batches(keys_of_band: Callable[[int], np.ndarray], bands: int,
                      usable: np.ndarray) -> Iterator[np.ndarray]:
    """Pairs (i, j), i < j, of usable texts that share an LSH band, as (m, 2) int64 arrays: one per band
    and neighbour distance inside a bucket, so a caller can confirm them as they come instead of
    holding them all. A pair sharing several bands comes once per band. `keys_of_band(b)` gives band
    b's keys of all texts (read one band at a time: bounded memory)."""
    ids = np.flatnonzero(usable)
    for band in range(bands):
        key = keys_of_band(band)[ids]
        order = np.argsort(key, kind="stable")
        key, members = key[order], ids[order]
        for d in range(1, min(_BUCKET_WINDOW, len(key) - 1) + 1):
            same = key[d:] == key[:-d]
            if not same.any():
                break
            a, b = members[:-d][same], members[d:][same]
            yield np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1)


def unique_pairs(batches: Iterable[np.ndarray], n: int) -> np.ndarray:
    """The distinct pairs of several (m, 2) arrays, sorted. One int64 code per pair: a 1-D sort is
    several times faster than np.unique(axis=0)."""
    codes = np.concatenate([np.empty(0, np.int64), *(pairs[:, 0] * np.int64(n) + pairs[:, 1] for pairs in batches)])
    if not len(codes):
        return np.empty((0, 2), np.int64)
    codes.sort()
    codes = codes[np.concatenate([[True], codes[1:] != codes[:-1]])]
    return np.stack([codes // n, codes % n], axis=1)


def confirmed(rows_of: Callable[[np.ndarray], np.ndarray], pairs: np.ndarray, threshold: float) -> np.ndarray:
    """The candidate pairs whose estimated Jaccard (share of equal signature bins) reaches the threshold.
    `rows_of(indices)` gives those texts' signatures (from memory or from disk), a chunk of pairs at a time."""
    keep = np.zeros(len(pairs), dtype=bool)
    for start in range(0, len(pairs), _PAIR_CHUNK):
        chunk = pairs[start:start + _PAIR_CHUNK]
        keep[start:start + _PAIR_CHUNK] = (rows_of(chunk[:, 0]) == rows_of(chunk[:, 1])).mean(axis=1) >= threshold
    return pairs[keep]


def cluster_roots(n: int, pairs: np.ndarray) -> np.ndarray:
    """Smallest index of each text's connected component (label propagation with pointer jumping)."""
    labels = np.arange(n)
    left, right = pairs[:, 0], pairs[:, 1]
    while True:
        low = np.minimum(labels[left], labels[right])
        new = labels.copy()
        np.minimum.at(new, left, low)
        np.minimum.at(new, right, low)
        new = new[new]
        if np.array_equal(new, labels):
            return labels
        labels = new


def near_duplicates(texts: Sequence[str], *, threshold: float = 0.7, ngram: int = 5, num_perm: int = 128,
                    seed: int = 1) -> np.ndarray:
    """Boolean mask: True for each text that is a near duplicate of an earlier text.

    Near duplicate = estimated Jaccard similarity of character `ngram` sets >= `threshold`, joined
    transitively into clusters; the first text (input order) of every cluster is kept.
    """
    if len(texts) < 2:
        return np.zeros(len(texts), dtype=bool)
    sig = signatures(texts, ngram=ngram, num_perm=num_perm, seed=seed)
    bands, rows = lsh_params(float(threshold), int(num_perm))
    keys = band_keys(sig, bands, rows, seed)
    candidates = unique_pairs(candidate_batches(keys.__getitem__, bands, has_signature(sig)), len(texts))
    pairs = confirmed(sig.__getitem__, candidates, threshold)
    return cluster_roots(len(texts), pairs) != np.arange(len(texts))


def has_signature(sig: np.ndarray) -> np.ndarray:
    """Texts with at least one n-gram (after densification every bin of such a text is filled)."""
    return sig[:, 0] != _MASK64


def estimated_jaccard(a: str, b: str, *, ngram: int = 5, num_perm: int = 128, seed: int = 1) -> float:
    """Share of equal signature bins of two texts: the estimate `near_duplicates` confirms pairs with."""
    sig = signatures([a, b], ngram=ngram, num_perm=num_perm, seed=seed)
    return float((sig[0] == sig[1]).mean())
