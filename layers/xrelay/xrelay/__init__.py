"""xrelay: a serverless receiver for X's account-activity webhooks (AAA and XAA).

The runtime, shipped to Lambda as a layer and imported by the handlers in ``functions/``, is a
folder per concern: receiving (X -> us, the request path), events (what an event is), storage
(DynamoDB), publishing (to consumers, compliance on the way), subscriptions (keeping X's side
true), recovery (healing outages). Here at the top, what several of them share: config, aws,
observability, credentials. tools/ is the operator's side (the ``xrelay`` CLI, the local stack,
status, teardown, ...): not in the layer, and nothing outside it imports it.

Imports are absolute (``from xrelay.storage.store import ...``) and run one way: handlers and
tools above the runtime; receiving, publishing, subscriptions and recovery above storage and
events; events above nothing. Each folder's ``__init__`` says what it may import. Keep the
``__init__`` modules import-free: the CRC handler's cold start depends on it.
"""

__version__ = "0.1.0"
