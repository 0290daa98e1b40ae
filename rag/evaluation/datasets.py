"""Convert SQuAD-format reading-comprehension files into article corpora and question sets."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Iterator

from ..types import Article

# (data file, source/set name, language) for the shipped data in shared/data.
SOURCES = (
    ("cmrc2018_dev.json", "cmrc2018", "zh"),
    ("DRCD_dev.json", "drcd", "zh"),
    ("xquad.zh.json", "xquad-zh", "zh"),
)
XQUAD_EN = "xquad.en.json"


def _load(path: str | os.PathLike) -> list[dict]:
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: cannot read SQuAD JSON: {e}") from e
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise ValueError(f"{path}: not SQuAD format (expected an object with a 'data' list)")
    return doc["data"]


def _paragraphs(path: str | os.PathLike, source_name: str) -> Iterator[tuple[Article, dict]]:
    """Yield (Article, paragraph) for every paragraph, in file order."""
    for ai, art in enumerate(_load(path)):
        title = str(art.get("title") or f"{source_name} {ai}").strip()
        paras = art.get("paragraphs") or []
        for pi, para in enumerate(paras):
            # XQuAD paragraphs have no id: article and paragraph index are stable as long as the file is.
            key = para.get("id") or f"{ai}-{pi}"
            if not isinstance(para.get("context"), str):
                raise ValueError(f"{path}: paragraph {key} has no 'context' string")
            yield Article(
                title=f"{title} ({pi + 1})" if len(paras) > 1 else title,
                text=para["context"],
                url=f"squad://{source_name}/{key}",
                published="",
                source=source_name,
            ), para


def _gold_answers(qa: dict, context: str) -> list[str]:
    """Answer texts, deduplicated in order; answers that are not substrings of the context are dropped
    (CMRC 2018 has a few annotator paraphrases with answer_start -1) unless none is left."""
    texts = [a["text"].strip() for a in qa.get("answers") or [] if str(a.get("text", "")).strip()]
    texts = list(dict.fromkeys(texts))
    inside = [t for t in texts if t in context]
    return inside or texts


def squad_to_articles(path: str | os.PathLike, source_name: str) -> list[Article]:
    """One Article per paragraph, with a stable pseudo-URL `squad://{source_name}/{paragraph id or a-p index}`."""
    return [article for article, _ in _paragraphs(path, source_name)]


def squad_to_questions(path: str | os.PathLike, source_name: str, lang: str) -> list[dict]:
    """Question-set records whose article_id is the gold paragraph's Article.id."""
    out = []
    for article, para in _paragraphs(path, source_name):
        for qa in para.get("qas") or []:
            answers = _gold_answers(qa, para["context"])
            if not answers:
                continue
            out.append({
                "id": str(qa["id"]),
                "question": qa["question"].strip(),
                "answers": answers,
                "lang": lang,
                "article_id": article.id,
                "set": source_name,
            })
    return out


def xquad_crosslingual(en_path: str | os.PathLike, zh_path: str | os.PathLike,
                       zh_source: str = "xquad-zh", set_name: str = "xquad-en") -> list[dict]:
    """English XQuAD questions aimed at the Chinese paragraphs: same question id, Chinese gold answers and article."""
    zh = {q["id"]: q for q in squad_to_questions(zh_path, zh_source, "zh")}
    out = []
    for article, para in _paragraphs(en_path, "xquad-en-paragraphs"):
        for qa in para.get("qas") or []:
            twin = zh.get(str(qa["id"]))
            if twin is None:
                continue
            out.append({
                "id": twin["id"],
                "question": qa["question"].strip(),
                "answers": twin["answers"],
                "lang": "en",
                "article_id": twin["article_id"],
                "set": set_name,
            })
    return out


def xquad_halves(path: str | os.PathLike) -> dict[str, str]:
    """XQuAD article title -> "a" (first half of the sorted titles) or "b": the split eval/train_ranker.py trains
    and holds out by, so no article is on both sides."""
    titles = sorted({str(a.get("title") or "").strip() for a in _load(path)})
    return {t: "a" if i < len(titles) // 2 else "b" for i, t in enumerate(titles)}


def xquad_english(en_path: str | os.PathLike, zh_path: str | os.PathLike) -> tuple[list[Article], list[dict], list[dict]]:
    """For a mixed Chinese/English pool: the English XQuAD paragraphs as articles (source xquad-en-a / xquad-en-b by
    xquad_halves), the English questions about them (set xquad-en-en) and the Chinese twins of those questions
    aimed at the English paragraphs (set xquad-zh-en; same id, English gold answers and article)."""
    half = xquad_halves(en_path)
    articles = []
    for article, _ in _paragraphs(en_path, "xquad-en"):
        base = article.title.rsplit(" (", 1)[0]
        articles.append(dataclasses.replace(article, source=f"xquad-en-{half.get(base, 'a')}"))
    en = [{**q, "set": "xquad-en-en"} for q in squad_to_questions(en_path, "xquad-en", "en")]
    zh = {q["id"]: q for q in squad_to_questions(zh_path, "xquad-zh", "zh")}
    zh_en = [{**q, "question": zh[q["id"]]["question"], "lang": "zh", "set": "xquad-zh-en"} for q in en if q["id"] in zh]
    return articles, en, zh_en


def article_to_record(article: Article) -> dict:
    return {"title": article.title, "url": article.url, "published": article.published,
            "text": article.text, "source": article.source}


def write_jsonl(records: list[dict], path: str | os.PathLike) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def write_articles(articles: list[Article], path: str | os.PathLike) -> None:
    """Article JSONL in the format the indexer reads (keys title, url, published, text, source)."""
    write_jsonl([article_to_record(a) for a in articles], path)


def read_articles(path: str | os.PathLike) -> list[Article]:
    with open(path, encoding="utf-8") as f:
        return [Article(title=r["title"], text=r["text"], url=r["url"], published=r["published"], source=r["source"])
                for r in map(json.loads, filter(str.strip, f))]


def build_eval_data(data_dir: str | os.PathLike, out_dir: str | os.PathLike) -> dict[str, int]:
    """Write out_dir/corpus/{cmrc2018,drcd,xquad-zh}.jsonl, out_dir/sets/{...,xquad-en}.jsonl and, for the mixed
    pool, out_dir/mixed/xquad-en.jsonl with out_dir/sets/{xquad-en-en,xquad-zh-en}.jsonl; return counts."""
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    counts: dict[str, int] = {}
    for filename, name, lang in SOURCES:
        src = data_dir / filename
        articles = squad_to_articles(src, name)
        corpus = out_dir / "corpus" / f"{name}.jsonl"
        write_articles(articles, corpus)
        if [a.id for a in read_articles(corpus)] != [a.id for a in articles]:
            raise RuntimeError(f"{corpus}: article ids changed in the JSONL round trip")
        questions = squad_to_questions(src, name, lang)
        write_jsonl(questions, out_dir / "sets" / f"{name}.jsonl")
        counts[f"corpus/{name}"], counts[f"sets/{name}"] = len(articles), len(questions)
    cross = xquad_crosslingual(data_dir / XQUAD_EN, data_dir / "xquad.zh.json")
    write_jsonl(cross, out_dir / "sets" / "xquad-en.jsonl")
    counts["sets/xquad-en"] = len(cross)
    articles, en, zh_en = xquad_english(data_dir / XQUAD_EN, data_dir / "xquad.zh.json")
    write_articles(articles, out_dir / "mixed" / "xquad-en.jsonl")
    write_jsonl(en, out_dir / "sets" / "xquad-en-en.jsonl")
    write_jsonl(zh_en, out_dir / "sets" / "xquad-zh-en.jsonl")
    counts["mixed/xquad-en"], counts["sets/xquad-en-en"], counts["sets/xquad-zh-en"] = len(articles), len(en), len(zh_en)
    return counts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rag.evaluation.datasets", description=build_eval_data.__doc__)
    p.add_argument("--data", default="../shared/data", help="directory with the SQuAD-format JSON files")
    p.add_argument("--out", default="eval", help="writes OUT/corpus/*.jsonl and OUT/sets/*.jsonl")
    args = p.parse_args(argv)
    try:
        counts = build_eval_data(args.data, args.out)
    except (ValueError, OSError, KeyError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for name, n in counts.items():
        print(f"{args.out}/{name}.jsonl: {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
