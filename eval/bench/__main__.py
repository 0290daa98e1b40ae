"""`python -m eval.bench`: run the benchmark (see eval.bench)."""
import sys

from eval.bench.cli import main

sys.exit(main())
