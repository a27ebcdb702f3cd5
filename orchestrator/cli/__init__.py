"""The ``itom-orch`` command line: one module per command group."""
