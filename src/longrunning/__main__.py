"""`python -m longrunning` runs the command line."""

from __future__ import annotations

from longrunning.cli import main

main()
