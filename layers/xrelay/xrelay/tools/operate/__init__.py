"""Operating a deployed stack: status, doctor, the queue commands (ops: DLQ redrive and friends),
repair of stored records, set-aside events, and teardown.

May import: the runtime folders and tools.cli's stack/template readers; not tools.local.
"""
