#!/usr/bin/env bash
# Run the example built by build.sh; arguments go to it (see example/ai/conduit/example/Example.java).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
source "${here}/classpath.sh"
exec java -cp "${here}/build/classes:${CONDUIT_JAVA_CLASSPATH}" ai.conduit.example.Example "$@"
