"""The loopback topology: one PostgreSQL, two control-plane replicas, three `conduit serve` replicas following one
pool, and Envoy in front; `python -m tests.topology` (`make topology`) runs its scenario and prints the figures."""
