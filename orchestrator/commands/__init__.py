"""The `orchestrator` command line: each command, its settings and exit codes, `doctor`, deploys for `simulate`."""
