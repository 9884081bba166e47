"""The classic Azure Service Management (RDFE) face: SQL "Database Operation Status" as XML, the
way the .NET `Microsoft.WindowsAzure.Management.Sql` client and `azure-servicemanagement-legacy`
read it.

`codec` is the pure XML translation (and the `sys.dm_operation_status` reading of an operation),
`rest` the Starlette routes.
"""
