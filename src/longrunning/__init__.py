"""longrunning: run, track and truthfully cancel long-running operations."""
