"""Tools: the operator's side, never run in Lambda and not shipped in the layer.

cli (the ``xrelay`` command and what it reads: the target stack, the template, credentials on
the way in), operate (status, doctor, the ops commands, repair, set-aside, teardown) and local
(the local stack on moto server, its console and sample events).

May import: anything in xrelay. Nothing outside tools imports from here (tests/test_layout.py).
"""
