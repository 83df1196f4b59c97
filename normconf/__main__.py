"""python -m normconf: the same as the `normconf` command (normconf/cli.py)."""
import sys

from normconf.cli import main

if __name__ == "__main__":
    sys.exit(main())
