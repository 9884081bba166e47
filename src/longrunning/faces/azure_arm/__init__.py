"""Azure Resource Manager's Microsoft.Sql face: database operations (list, cancel), databases
(create, read, delete) and the ARM asynchronous-operation pattern, as azure-mgmt-sql sends them.

`paths` parses resource ids, `codec` is the pure JSON translation, `rest` the Starlette routes.
"""
