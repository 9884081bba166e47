"""The database workload: servers of databases this node manages, and the operations on them.

A layer between the faces and the engine: faces call `DatabaseService`, which starts operations
through the engine's `OperationService`; the operation kinds here do the real work in SQLite
files. Nothing here speaks a wire format or touches the operation store.
"""
