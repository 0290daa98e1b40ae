"""Run the evaluation (`python eval/run.py SET.jsonl... --index DIR`, or `--dev` for the whole dev pool)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # runnable from a checkout without installing the package

from rag import evaluation  # noqa: E402

DEV_SETS = ("cmrc2018", "drcd", "xquad-zh", "xquad-en", "seed", "followup")
DEV_INDEX = ROOT / "eval" / "out" / "dev-index"
DEV_OUT = ROOT / "eval" / "out" / "dev"


def build_dev_index(index: Path, embedder: str) -> None:
    """Index eval/corpus/*.jsonl and seeds/ into `index` (the dev pool)."""
    from rag.indexer import index_paths

    paths = [str(p) for p in sorted((ROOT / "eval" / "corpus").glob("*.jsonl"))] + [str(ROOT / "seeds")]
    print(f"building the dev index at {index} with embedder {embedder!r} from {len(paths)} paths", file=sys.stderr)
    summary = index_paths(paths, str(index), embedder=embedder, progress=True)
    render = getattr(summary, "render", None)
    print(render() if render else summary, file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="eval/run.py", description=__doc__)
    evaluation.add_arguments(parser)
    parser.add_argument("--dev", action="store_true",
                        help=f"evaluate all dev sets ({', '.join(DEV_SETS)}); build the dev index first if missing")
    parser.add_argument("--embedder", default="use",
                        help="embedder for building the dev index (default use; e.g. st:/path/to/model)")
    args = parser.parse_args(argv)
    if args.dev and not args.compare:
        args.index = Path(args.index or DEV_INDEX)
        if args.out == evaluation.DEFAULT_OUT:
            args.out = str(DEV_OUT)
        if not args.sets:
            args.sets = [str(ROOT / "eval" / "sets" / f"{name}.jsonl") for name in DEV_SETS]
        if not args.index.is_dir() or not any(args.index.iterdir()):
            try:
                build_dev_index(args.index, args.embedder)
            except Exception as e:  # noqa: BLE001 - report and stop: there is nothing to evaluate
                print(f"error: cannot build the dev index at {args.index}: {e}", file=sys.stderr)
                return 2
        args.index = str(args.index)
    return evaluation.main(args)


if __name__ == "__main__":
    sys.exit(main())
