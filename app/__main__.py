"""`python -m app` and the frozen executable: argv → gui | worker | CLI commands."""

import multiprocessing
import sys

from app.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main())
