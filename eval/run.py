"""Run the evaluation (`python -m eval.run SET.jsonl... --index DIR`, `--dev` for the whole dev pool, or `--mixed` for
the mixed Chinese/English pool)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rag import evaluation
from rag.store import parse_spec

ROOT = Path(__file__).resolve().parent.parent

DEV_SETS = ("cmrc2018", "drcd", "xquad-zh", "xquad-en", "seed", "followup", "nonsense")
DEV_INDEX = ROOT / "eval" / "out" / "dev-index"
DEV_OUT = ROOT / "eval" / "out" / "dev"
# The mixed pool: the Chinese CMRC 2018 and DRCD paragraphs, XQuAD's English paragraphs (not its Chinese ones, so an
# English question has one gold article) and the seed; asked in English and in Chinese about the English articles.
MIXED_SETS = ("xquad-en-en", "xquad-zh-en", "seed")
MIXED_INDEX = ROOT / "eval" / "out" / "mixed-index"
MIXED_OUT = ROOT / "eval" / "out" / "mixed"


def dev_paths() -> list[str]:
    return [str(p) for p in sorted((ROOT / "eval" / "corpus").glob("*.jsonl"))] + [str(ROOT / "seeds")]


def mixed_paths() -> list[str]:
    return [str(ROOT / "eval" / "corpus" / f"{name}.jsonl") for name in ("cmrc2018", "drcd")] + [
        str(ROOT / "eval" / "mixed" / "xquad-en.jsonl"), str(ROOT / "seeds")]


def build_dev_index(index: Path, embedder: str, paths: list[str] | None = None) -> None:
    """Index `paths` (default: eval/corpus/*.jsonl and seeds/, the dev pool) into `index`."""
    from rag.index import index_paths

    paths = paths or dev_paths()
    print(f"building the index at {index} with embedder {embedder!r} from {len(paths)} paths", file=sys.stderr)
    summary = index_paths(paths, str(index), embedder=embedder, progress=True)
    render = getattr(summary, "render", None)
    print(render() if render else summary, file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.run", description=__doc__)
    evaluation.add_arguments(parser)
    parser.add_argument("--dev", action="store_true",
                        help=f"evaluate all dev sets ({', '.join(DEV_SETS)}); build the dev index first if missing")
    parser.add_argument("--mixed", action="store_true",
                        help=f"evaluate the mixed Chinese/English pool ({', '.join(MIXED_SETS)}); build its index "
                             "first if missing")
    parser.add_argument("--embedder", default="use",
                        help="embedder for building the dev index (default use; e.g. st:/path/to/model)")
    args = parser.parse_args(argv)
    if args.dev and args.mixed:
        parser.error("--dev and --mixed are two pools: choose one")
    if (args.dev or args.mixed) and not args.compare:
        index, out, sets, paths = ((MIXED_INDEX, MIXED_OUT, MIXED_SETS, mixed_paths()) if args.mixed else
                                   (DEV_INDEX, DEV_OUT, DEV_SETS, dev_paths()))
        if args.out == evaluation.DEFAULT_OUT:
            args.out = str(out)
        if not args.sets:
            args.sets = [str(ROOT / "eval" / "sets" / f"{name}.jsonl") for name in sets]
        if args.index and parse_spec(args.index).milvus:  # a Milvus store is built with `rag index --store`
            return evaluation.main(args)
        args.index = Path(args.index or index)
        if not args.index.is_dir() or not any(args.index.iterdir()):
            try:
                build_dev_index(args.index, args.embedder, paths)
            except Exception as e:  # noqa: BLE001 - report and stop: there is nothing to evaluate
                print(f"error: cannot build the dev index at {args.index}: {e}", file=sys.stderr)
                return 2
        args.index = str(args.index)
    return evaluation.main(args)


if __name__ == "__main__":
    sys.exit(main())
