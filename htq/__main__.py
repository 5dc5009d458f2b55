"""`python -m htq` runs the command-line interface."""

from htq.cli import main

raise SystemExit(main())
