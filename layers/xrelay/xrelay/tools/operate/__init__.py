"""Operating a deployed stack: status, doctor, the queue commands (ops: DLQ redrive and friends),
repair of stored records, set-aside events, and teardown.

May import: the runtime folders and tools.cli (the stack, the template, the CLI's AWS settings);
not tools.local.
"""
