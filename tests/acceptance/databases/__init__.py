"""Acceptance tests of the database operations: real `longrunning serve` processes, real
database files, driven over the native HTTP API."""
