"""Events: what an event is.

The stored event record and its pydantic models (models), the event types X sends and how they
are named here (event_types), the bounds X's data is held to where it is read (bounds), and
the normalisation of X's payloads into records (normalize).

May import: nothing of xrelay outside this folder (everything else builds on it).
"""
