"""Storage: DynamoDB, the one table of events, state and leases.

Writing and reading event records (store), the compression dictionary records are packed with
(record_dictionary), and the lease that keeps one run at a time (lease).

May import: the top-level shared modules and events. Never tools.
"""
