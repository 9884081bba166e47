"""The pure domain of longrunning: operations, their lifecycle, errors and listing.

Standard library only: no I/O, no asyncio, no third-party imports.
"""
