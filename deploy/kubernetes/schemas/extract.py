"""Write the JSON schema of one version of a CustomResourceDefinition: its openAPIV3Schema without descriptions.

Usage: python extract.py CRD.yaml VERSION OUT.json

The tests (tests/deploy) validate the rendered custom resources against these files strictly: an object with listed
properties accepts no other unless the schema says x-kubernetes-preserve-unknown-fields, as the API server's strict
field validation does. See README.md here for where each CRD came from.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml


def _strip(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: _strip(value) for key, value in node.items() if key != "description"}
    if isinstance(node, list):
        return [_strip(item) for item in node]
    return node


def main(argv: list[str]) -> int:
    """Extract ``VERSION``'s schema from the CRD file."""
    if len(argv) != 3:
        print(__doc__.splitlines()[2], file=sys.stderr)
        return 2
    source, version, out = Path(argv[0]), argv[1], Path(argv[2])
    crd = yaml.safe_load(source.read_text())
    if crd.get("kind") != "CustomResourceDefinition":
        print(f"{source}: not a CustomResourceDefinition", file=sys.stderr)
        return 1
    served = {v["name"]: v for v in crd["spec"]["versions"]}
    if version not in served:
        print(f"{source}: no version {version!r} (it has {', '.join(served)})", file=sys.stderr)
        return 1
    schema = _strip(served[version]["schema"]["openAPIV3Schema"])
    out.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
