"""The ``seawall`` command, one module per subcommand."""
