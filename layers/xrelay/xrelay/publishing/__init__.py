"""Publishing: from the table's stream to consumers, compliance applied on the way.

Delivery to the consumer queue (publisher), deletions, revocations and redactions (compliance),
and the EventBridge bus (bus).

May import: the top-level shared modules, events and storage. Never tools.
"""
