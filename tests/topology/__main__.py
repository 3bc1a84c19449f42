"""`make topology`: start the loopback topology, run its scenario through Envoy and through the client's own
balancing, print the figures as JSON; exit 1 when a request failed."""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
from pathlib import Path

from tests.control_plane.alerting.conftest import receiving
from tests.topology._models import write_versions
from tests.topology._scenario import deploy, duplicates, run_scenario, watch
from tests.topology._topology import topology


def main() -> int:
    """Run in a temporary directory, or in the directory given as the one argument (kept, with every log)."""
    with contextlib.ExitStack() as stack:
        if len(sys.argv) > 1:
            root = Path(sys.argv[1])
            root.mkdir(parents=True, exist_ok=True)
        else:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="conduit-topology-")))
        first, second, rows = write_versions(root)
        with topology(root) as running, receiving() as webhook:
            deploy(running, first, second)
            watch(running, webhook.url)
            assert running.envoy is not None
            results = [
                run_scenario(running, "envoy", running.envoy.address, rows),
                run_scenario(running, "client round_robin", running.server_addresses, rows),
            ]
            notifications, runs, twice = duplicates(running, webhook.posts)
    print(json.dumps([figures.summary() for figures in results], indent=2))
    print(json.dumps({"alert_notifications": notifications, "job_runs": runs, "duplicated": twice}))
    for figures in results:
        for failure in figures.failures[:10]:
            print(f"{figures.route}: {failure}", file=sys.stderr)
    return 1 if twice or any(figures.failures for figures in results) else 0


if __name__ == "__main__":
    sys.exit(main())
