"""The sentence ranker: linear heads (and an optional hidden layer) learned by eval/train_ranker.py, stored as
plain JSON, with the names of the features it reads."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FEATURES = (
    "lex", "disc", "dense", "dense_rel", "rank_rr", "pscore_rel", "type_ok", "type_miss", "prev_disc", "next_disc",
    "len_log", "novel", "first_in_passage", "cross", "cross_dense", "cross_dense_rel", "cross_latin", "cross_type_ok",
    "cross_lex", "run", "run_log", "run_rel", "focus", "who_ok", "who_miss", "where_ok", "where_miss", "org_ok",
    "num_match", "num_miss",
)
# The second reading (rag.models.reader) of the `top` sentences by order: their order score, its gap to the best, the
# reader's cosine, its gap to the best and its z-score among them.
REREAD_FEATURES = ("order", "order_gap", "reader", "reader_gap", "reader_z")
RANKER_PATH = Path(__file__).with_name("ranker.json")


@dataclass(frozen=True)
class Ranker:
    """Linear heads learned by eval/train_ranker.py and stored as plain JSON (never pickle): `order` (trained
    listwise: which sentence of this question holds the answer) picks and orders the sentences; `weights`/`bias`
    (logistic regression) give the probability a sentence holds the answer, for abstaining; `reread` (listwise,
    over REREAD_FEATURES) re-orders the `reread_top` best sentences once `reader` has read them, which it does
    only when the order head's best two are closer than `reread_margin` (when they are not, the order head is
    about as right alone and the question is spared the reader's cost). The order head may add a hidden layer:
    score = x . order + tanh(x @ hidden_w.T + hidden_b) . hidden_v (raw feature units)."""

    order: np.ndarray
    weights: np.ndarray
    bias: float
    reread: np.ndarray | None = None
    reread_top: int = 0
    reader: str = ""
    reread_margin: float = math.inf
    hidden_w: np.ndarray | None = None
    hidden_b: np.ndarray | None = None
    hidden_v: np.ndarray | None = None

    def order_scores(self, feats: np.ndarray) -> np.ndarray:
        s = feats @ self.order
        if self.hidden_w is not None:
            s = s + np.tanh(feats @ self.hidden_w.T + self.hidden_b) @ self.hidden_v
        return s


def read_ranker(path: str = str(RANKER_PATH)) -> Ranker:
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if tuple(data["features"]) != FEATURES:
        raise ValueError(f"{path}: ranker features {data['features']} do not match this version's {list(FEATURES)}")
    w = np.asarray(data["weights"], dtype=np.float64)
    order = np.asarray(data["order"], dtype=np.float64)
    if w.shape != (len(FEATURES),) or order.shape != (len(FEATURES),):
        raise ValueError(f"{path}: expected {len(FEATURES)} weights per head")
    hidden = _hidden_layer(path, data.get("hidden"))
    head = data.get("reread")
    if head is None:
        return Ranker(order, w, float(data["bias"]), **hidden)
    if tuple(head.get("features", ())) != REREAD_FEATURES:
        raise ValueError(f"{path}: reread features {head.get('features')} do not match {list(REREAD_FEATURES)}")
    rw = np.asarray(head["weights"], dtype=np.float64)
    top, margin = head.get("top"), head.get("margin", math.inf)
    if rw.shape != (len(REREAD_FEATURES),) or not isinstance(top, int) or top < 2:
        raise ValueError(f"{path}: reread head needs {len(REREAD_FEATURES)} weights and an integer top >= 2")
    if not isinstance(margin, (int, float)) or not margin > 0:
        raise ValueError(f"{path}: reread margin must be a positive number, got {margin!r}")
    return Ranker(order, w, float(data["bias"]), rw, top, str(head.get("reader", "")), float(margin), **hidden)


def _hidden_layer(path: str, hidden) -> dict:
    if hidden is None:
        return {}
    try:
        W, b, v = (np.asarray(hidden[k], dtype=np.float64) for k in ("w", "b", "v"))
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: the order head's hidden layer needs numeric w, b and v ({e})") from None
    h = len(b)
    if b.shape != (h,) or v.shape != (h,) or W.shape != (h, len(FEATURES)) or not h:
        raise ValueError(f"{path}: the hidden layer needs w of shape (h, {len(FEATURES)}), b and v of length h")
    if not (np.isfinite(W).all() and np.isfinite(b).all() and np.isfinite(v).all()):
        raise ValueError(f"{path}: the hidden layer has non-finite weights")
    return {"hidden_w": W, "hidden_b": b, "hidden_v": v}
