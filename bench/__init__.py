"""Benchmarks of longrunning against its peers and against ceilings (issue 7): `python -m bench`."""
