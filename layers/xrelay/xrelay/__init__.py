"""xrelay: a serverless receiver for X's account-activity webhooks (AAA and XAA).

The package is shipped to Lambda as a layer and imported by the handlers in ``functions/``,
by the tests and by the ``xrelay`` CLI. Keep this module import-free: the CRC handler's cold
start depends on it.
"""

__version__ = "0.1.0"
