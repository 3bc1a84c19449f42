#!/usr/bin/env bash
# Compile the Java stubs (clients/java/generated, from `python3 proto/generate.py --lang java`) and the example
# with javac against Debian's jars, into clients/java/build/classes. Maven or Gradle users take the same sources
# and the io.grpc / com.google.protobuf artifacts instead (see README.md).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
source "${here}/classpath.sh"
[[ -d "${here}/generated" ]] || python3 "${here}/../../proto/generate.py" --lang java
for jar in ${CONDUIT_JAVA_CLASSPATH//:/ }; do
    [[ -f "${jar}" ]] || { echo "missing ${jar}: install the packages listed in classpath.sh" >&2; exit 1; }
done
rm -rf "${here}/build/classes"
mkdir -p "${here}/build/classes"
find "${here}/generated" "${here}/example" -name '*.java' > "${here}/build/sources.txt"
javac -d "${here}/build/classes" -cp "${CONDUIT_JAVA_CLASSPATH}" -encoding UTF-8 @"${here}/build/sources.txt"
