"""What the test suites share: helpers (claimers, dispatching, messages) and, in ``servers``, the
servers the tests reach or start (reachability, local Redis servers and clusters, dynalite)."""
