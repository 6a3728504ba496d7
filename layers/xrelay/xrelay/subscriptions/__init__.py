"""Subscriptions: keeping X's side true.

The X API client (xapi), the subscriptions the configuration asks for (desired), the run that
makes X match them (reconcile), and the subscribed users (users).

May import: the top-level shared modules, events and storage. Never tools.
"""
