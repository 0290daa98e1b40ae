"""The near-duplicate stories of a generation, formed from its segments' signatures (rag.index.dedup)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import numpy as np

from .dedup import NUM_PERM, Stories, regroup
from .segment import acquire, release


def stories_of(segments: Path, refs, dim: int, second_dim: int, old: Stories | None, touched: Iterable[str]) -> Stories:
    """`regroup` over the live articles of the segments `refs` (rag.index.generation.SegmentRef) name under the
    folder `segments`, each opened lazily for its signatures and the representatives' metadata."""
    segs = []
    try:
        for ref in refs:
            segs.append((acquire(segments / ref.name, dim, second_dim, eager=False), ref))
        ids: list[str] = []
        parts = []
        for seg, ref in segs:
            aids, sigs = seg.minhash()
            dead = set(ref.dead)
            keep = [i for i, a in enumerate(aids) if a not in dead] if dead else list(range(len(aids)))
            ids.extend(aids[i] for i in keep)
            parts.append(sigs[keep])
        sigs = np.concatenate(parts) if parts else np.zeros((0, NUM_PERM), dtype=np.uint32)

        def meta(wanted: list[str]) -> dict[str, tuple[str, str, str]]:
            arg = json.dumps(wanted, ensure_ascii=False)
            out = {}
            for seg, ref in segs:
                for aid, published, url, source in seg.sql(
                        "SELECT id, published, url, source FROM articles WHERE id IN (SELECT value FROM json_each(?))",
                        (arg,)):
                    if aid not in ref.dead:
                        out[aid] = (published, url, source)
            return out

        return regroup(old, touched, ids, sigs, meta)
    finally:
        for seg, _ in segs:
            release(seg)
