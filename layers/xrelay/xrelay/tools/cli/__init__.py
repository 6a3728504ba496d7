"""The ``xrelay`` command: argument parsing and dispatch (cli), the one place that turns expected
mistakes into one line (cli_errors), the X-side commands (operator_cli, oauth_login), and what
they read about where they run (target, stack, template, consumer_env).

May import: anything in xrelay, including tools.operate and tools.local.
"""
