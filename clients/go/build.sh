#!/usr/bin/env bash
# Build the example offline against Debian's Go packages, in GOPATH mode: Debian installs Go libraries as a GOPATH
# tree (/usr/share/gocode), not as a module cache, so module mode cannot find them without a network.
#
# Usage: clients/go/build.sh [OUTPUT]      (default OUTPUT: clients/go/build/example)
# Needs: apt-get install golang-go golang-google-grpc-dev golang-google-protobuf-dev
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
output="$(realpath -m "${1:-${here}/build/example}")"
gopath="$(mktemp -d)"
trap 'rm -rf "${gopath}"' EXIT
mkdir -p "${gopath}/src/github.com/conduit-ml/conduit/clients"
ln -s "${here}" "${gopath}/src/github.com/conduit-ml/conduit/clients/go"
cd "${gopath}/src/github.com/conduit-ml/conduit/clients/go"
export GO111MODULE=off GOPATH="${gopath}:/usr/share/gocode" GOFLAGS=
go vet ./...
go build -o "${output}" ./example
