"""Recovery: healing outages.

The ledger of outages the alarms recorded (outages) and the replay that asks X again for what
they missed (replay).

May import: the top-level shared modules, storage and subscriptions. Never tools.
"""
