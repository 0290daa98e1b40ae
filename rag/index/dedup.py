"""Near-duplicate stories: articles whose text is nearly the same (republished wire copy, a corrected version) form
one story, cited once, by its representative (the earliest dated copy, then the one with a link).

Each article's text gets a MinHash signature (datasketch, NUM_PERM 32-bit values over the set of SHINGLE-character
shingles of its normalised text: NFKC, case-folded, letters and digits only), stored with the article in its
segment (table `minhash`). Pairs of articles whose signatures agree on at least THRESHOLD of their values (the
estimated Jaccard similarity of their shingle sets) are found through LSH bands (the bands and rows datasketch's
MinHashLSH picks for THRESHOLD) and checked; a story is a connected component of such pairs. The stories of a
generation are written beside its manifest (STORIES_FILE: only the groups of two or more); each write regroups only
the stories its added and removed articles touch (`regroup`). THRESHOLD was chosen on CRUD-RAG's corpus with
hand-checked pairs: docs/decisions.md, "Near-duplicate stories", and eval/dedup_report.py.
"""
from __future__ import annotations

import json
import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from ..errors import CorruptIndexError

NUM_PERM = 128
SHINGLE = 5  # characters
SEED = 1
SCHEME = "affine32"  # datasketch's default from 2.0 on, named so that a later default cannot change stored values
THRESHOLD = 0.6  # estimated Jaccard similarity of two copies of one story (docs/decisions.md)
# LSH bands are those MinHashLSH picks for this lower threshold: a pair at THRESHOLD becomes a candidate with
# probability 0.87 (0.40 with THRESHOLD's own 18 bands of 7 rows), one at 0.7 with 0.99; the check drops the rest
LSH_THRESHOLD = 0.5
MIN_SHINGLES = 20  # a text with fewer shingles (a caption, an empty body) gets no signature: it is its own story
STORIES_FILE = "stories.json"
STORIES_VERSION = 1
# the probe's signature is kept in each segment's meta table: a library whose hashing differs from the one that
# wrote a segment's signatures makes them unusable there (that segment's articles are then treated as singletons)
PROBE = "The quick brown fox jumps over the lazy dog. 敏捷的棕色狐狸跳过了那只懒狗。" * 2
META_KEY = "minhash"


def normalise(text: str) -> str:
    """The characters a signature is made of: NFKC, case-folded, letters and digits only (no spaces or
    punctuation: a reflowed or re-punctuated copy shingles the same)."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", text or "").casefold() if ch.isalnum())


def shingles(text: str) -> set[bytes]:
    n = normalise(text)
    return {n[i : i + SHINGLE].encode("utf-8") for i in range(len(n) - SHINGLE + 1)}


_PERMS = None


def signature(text: str) -> np.ndarray | None:
    """The MinHash signature of `text` (NUM_PERM uint32), or None when it is too short to say (MIN_SHINGLES)."""
    global _PERMS
    from datasketch import MinHash

    grams = shingles(text)
    if len(grams) < MIN_SHINGLES:
        return None
    if _PERMS is None:
        _PERMS = MinHash(num_perm=NUM_PERM, seed=SEED, scheme=SCHEME).permutations
    m = MinHash(num_perm=NUM_PERM, seed=SEED, scheme=SCHEME, permutations=_PERMS)
    m.update_batch(sorted(grams))
    return np.asarray(m.hashvalues, dtype=np.uint32)


def to_blob(sig: np.ndarray) -> bytes:
    return np.asarray(sig, dtype="<u4").tobytes()


def from_blobs(blobs: Sequence[bytes]) -> np.ndarray:
    """(n, NUM_PERM) uint32 from stored blobs (a blob of another length: CorruptIndexError by the caller)."""
    if not blobs:
        return np.zeros((0, NUM_PERM), dtype=np.uint32)
    return np.frombuffer(b"".join(blobs), dtype="<u4").reshape(len(blobs), NUM_PERM).astype(np.uint32)


def fingerprint() -> str:
    """What a segment records of how its signatures were made (compared on read)."""
    return json.dumps({"num_perm": NUM_PERM, "shingle": SHINGLE, "seed": SEED, "scheme": SCHEME,
                       "probe": to_blob(signature(PROBE)).hex()[:64]}, sort_keys=True)


_FINGERPRINT = None


def current_fingerprint() -> str:
    global _FINGERPRINT
    if _FINGERPRINT is None:
        _FINGERPRINT = fingerprint()
    return _FINGERPRINT


def lsh_params(threshold: float = THRESHOLD) -> tuple[int, int]:
    """(bands, rows per band): datasketch MinHashLSH's choice for `threshold` and NUM_PERM."""
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    return lsh.b, lsh.r


_MIX = np.uint64(0x9E3779B97F4A7C15)


def band_keys(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(n, bands) uint64: one key per band of each signature (equal bands give equal keys; a collision of unequal
    ones only adds a candidate, which the similarity check drops)."""
    sigs = np.asarray(sigs, dtype=np.uint64)
    keys = np.zeros((len(sigs), bands), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for b in range(bands):
            h = np.full(len(sigs), np.uint64(b + 1), dtype=np.uint64)
            for j in range(rows):
                h = (h ^ sigs[:, b * rows + j]) * _MIX
                h ^= h >> np.uint64(29)
            keys[:, b] = h
    return keys


def similarity(sigs: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """The estimated Jaccard similarity of each pair of rows (the share of equal signature values)."""
    if not len(pairs):
        return np.zeros(0)
    return (sigs[pairs[:, 0]] == sigs[pairs[:, 1]]).mean(axis=1)


def candidate_pairs(sigs: np.ndarray, new: np.ndarray | None = None, threshold: float = LSH_THRESHOLD,
                    max_run: int = 5000) -> np.ndarray:
    """(m, 2) row pairs i < j sharing an LSH band (the bands MinHashLSH picks for `threshold`), each with at least
    one row in the mask `new` (None: all pairs). A band shared by more than `max_run` signatures (no real story has that many copies) is skipped."""
    n = len(sigs)
    if n < 2:
        return np.zeros((0, 2), dtype=np.int64)
    b, r = lsh_params(threshold)
    keys = band_keys(sigs, b, r)
    found: set[tuple[int, int]] = set()
    new_rows = np.flatnonzero(new) if new is not None else None
    if new_rows is not None and len(new_rows) <= 64:  # a few new rows: compare them with every row directly
        for i in new_rows:
            for j in np.flatnonzero((keys == keys[i]).any(axis=1)):
                if j != i:
                    found.add((min(i, j), max(i, j)))
    else:
        for band in range(b):
            k = keys[:, band]
            order = np.argsort(k, kind="stable")
            ks = k[order]
            starts = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1]])
            ends = np.r_[starts[1:], n]
            for s, e in zip(starts[ends - starts > 1], ends[ends - starts > 1]):
                if e - s > max_run:
                    continue
                rows = np.sort(order[s:e])
                for x, i in enumerate(rows):
                    for j in rows[x + 1 :]:
                        if new is None or new[i] or new[j]:
                            found.add((int(i), int(j)))
    return np.array(sorted(found), dtype=np.int64).reshape(len(found), 2)


def similar_pairs(sigs: np.ndarray, new: np.ndarray | None = None, threshold: float = THRESHOLD) -> np.ndarray:
    """The candidate pairs whose estimated similarity reaches `threshold`."""
    pairs = candidate_pairs(sigs, new, min(LSH_THRESHOLD, threshold))
    return pairs[similarity(sigs, pairs) >= threshold] if len(pairs) else pairs


def components(n: int, pairs: np.ndarray) -> list[list[int]]:
    """The connected components of two or more rows (union-find), each sorted."""
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, j in pairs:
        a, b = find(int(i)), find(int(j))
        if a != b:
            parent[max(a, b)] = min(a, b)
    groups: dict[int, list[int]] = {}
    for x in range(n):
        groups.setdefault(find(x), []).append(x)
    return [g for g in groups.values() if len(g) > 1]


def rep_key(article_id: str, meta: tuple[str, str, str] | None) -> tuple:
    """The order a story's copies are named in: dated before undated, the earliest first, then the one with a
    link, then a source, then by id. `meta`: (published, url, source)."""
    published, url, source = meta or ("", "", "")
    return (not published, published or "", not url, not source, article_id)


@dataclass(frozen=True)
class Stories:
    """A generation's stories of two or more articles, each as a tuple of ids, the representative first."""

    groups: tuple[tuple[str, ...], ...] = ()
    threshold: float = THRESHOLD

    def __post_init__(self):
        object.__setattr__(self, "_of", {a: n for n, g in enumerate(self.groups) for a in g})

    def of(self, article_id: str) -> tuple[str, ...]:
        """The story holding `article_id` (representative first), or () when it is alone."""
        n = self._of.get(article_id)  # type: ignore[attr-defined]
        return self.groups[n] if n is not None else ()

    def __len__(self) -> int:
        return len(self.groups)

    @property
    def articles(self) -> int:
        return sum(len(g) for g in self.groups)

    def to_json(self) -> str:
        return json.dumps({"version": STORIES_VERSION, "threshold": self.threshold,
                           "num_perm": NUM_PERM, "shingle": SHINGLE, "groups": [list(g) for g in self.groups]},
                          ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def read(cls, path: Path) -> Stories | None:
        """The stories written beside a manifest, or None when there is no such file (an index written before
        stories: every article is its own)."""
        try:
            raw = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as e:
            raise CorruptIndexError(str(path), f"cannot be read ({e.strerror or e})") from None
        try:
            data = json.loads(raw)
            if data.get("version") != STORIES_VERSION:
                return None  # another version's: regrouped by the next write
            groups = tuple(tuple(str(a) for a in g) for g in data["groups"])
            if any(len(g) < 2 for g in groups) or len({a for g in groups for a in g}) != sum(map(len, groups)):
                raise ValueError("a group of fewer than two articles, or an article in two groups")
            return cls(groups, float(data.get("threshold", THRESHOLD)))
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise CorruptIndexError(str(path), f"stories file is unreadable ({e.__class__.__name__}: {e})") from None

    def write(self, folder: Path) -> None:
        """Into a generation folder being written (a temp folder, renamed into place whole once complete)."""
        with open(Path(folder) / STORIES_FILE, "w", encoding="utf-8") as f:
            f.write(self.to_json())
            f.flush()
            os.fsync(f.fileno())


def regroup(old: Stories | None, touched: Iterable[str], ids: Sequence[str], sigs: np.ndarray,
            meta: Callable[[list[str]], Mapping[str, tuple[str, str, str]]],
            threshold: float = THRESHOLD) -> Stories:
    """The stories after a write. `ids`/`sigs`: every live article with a signature (row for row); `touched`: the
    articles added, replaced or removed since `old` (None: group every article from scratch); `meta(ids)`:
    (published, url, source) of live articles, to name each story's representative.

    Only the stories a touched article is or was in, or an added article joins, are formed again (from their live
    members and the added articles' similar pairs); the others are kept as they are."""
    ids = list(ids)
    pos = {a: i for i, a in enumerate(ids)}
    if old is None:
        pairs = similar_pairs(sigs, None, threshold)
        return _named([[ids[i] for i in g] for g in components(len(ids), pairs)], meta, threshold)
    touched = set(touched)
    if not touched:
        return old
    new = np.zeros(len(ids), dtype=bool)
    for a in touched:
        if a in pos:
            new[pos[a]] = True
    near = similar_pairs(sigs, new, threshold) if new.any() else np.zeros((0, 2), dtype=np.int64)
    involved = set(touched) | {ids[i] for pair in near for i in pair}
    hit = {n for n, g in enumerate(old.groups) if any(a in involved for a in g)}
    nodes = sorted({a for n in hit for a in old.groups[n]} | involved)
    nodes = [a for a in nodes if a in pos]  # live, with a signature
    kept = [g for n, g in enumerate(old.groups) if n not in hit]
    if len(nodes) < 2:
        return Stories(tuple(kept), threshold)
    sub = sigs[[pos[a] for a in nodes]]
    formed = [[nodes[i] for i in g] for g in components(len(nodes), similar_pairs(sub, None, threshold))]
    return Stories(tuple(kept) + _named(formed, meta, threshold).groups, threshold)


def _named(groups: list[list[str]], meta, threshold: float) -> Stories:
    """Stories with each group ordered by `rep_key` (its representative first)."""
    info = meta(sorted({a for g in groups for a in g})) if groups else {}
    ordered = [tuple(sorted(g, key=lambda a: rep_key(a, info.get(a)))) for g in groups]
    return Stories(tuple(sorted(ordered)), threshold)

