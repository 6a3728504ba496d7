"""The local stack: every function on moto server (local), its saved state (local_state), the
console's request lines (console) and the sample events (samples).

May import: the runtime folders and tools.cli (the stack, the template, the CLI's AWS settings).
"""
