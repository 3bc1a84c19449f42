#!/usr/bin/env bash
# Install what generating, building and testing the C++, Go, Java and Node.js clients needs, the proto tools, the
# PostgreSQL server the control-plane tests start, the browser the dashboard tests drive, and the kustomize that renders
# deploy/kubernetes. Each language uses its own registry: Go modules from the module proxy (clients/go/go.mod, and
# kustomize's), Java artifacts from Maven Central (clients/java/pom.xml, fetched by its build), npm packages from the npm
# registry (the lock files of proto/ and clients/node/); Debian's packages only for C++, protoc, PostgreSQL and
# Chromium. Only what is missing is installed: a second run is a no-op in about a second.
#
# Usage: clients/toolchains.sh            (as root, or with sudo available)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
log() { echo "toolchains: $*" >&2; }
die() { log "$*"; exit 1; }

# Every package is needed: a missing one fails a build or a test later, so it is installed here, never skipped.
packages=(
    # C++ (which stays on Debian's gRPC): protoc, the gRPC plugin, headers and libraries. protoc also generates the
    # committed Go and TypeScript code (proto/generate.py pins its version).
    protobuf-compiler protobuf-compiler-grpc libprotobuf-dev libgrpc++-dev pkg-config
    # The dashboard's browser tests: Playwright drives Debian's build (/usr/bin/chromium), never a downloaded one;
    # with a font, so pages and screenshots show text (recommended packages are not installed).
    chromium fonts-liberation
)
# Tools a machine may have from elsewhere: checked by command, installed from Debian when absent. Go is not among
# them: Debian 12's Go is older than go.mod's, so a machine without a recent Go is told so below.
declare -A commands=(
    [cmake]=cmake [g++]=g++ [make]=make [javac]=default-jdk-headless [mvn]=maven [node]=nodejs [npm]=npm
)

missing=()
for package in "${packages[@]}"; do
    status="$(dpkg-query -W -f='${Status}' "${package}" 2>/dev/null || true)"
    [[ "${status}" == "install ok installed" ]] || missing+=("${package}")
done
for command in "${!commands[@]}"; do
    command -v "${command}" >/dev/null || missing+=("${commands[${command}]}")
done
# The PostgreSQL server: the client (psql) may be there without initdb and pg_ctl, which the tests run.
if ! command -v initdb >/dev/null && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    missing+=(postgresql)
fi

if ((${#missing[@]})); then
    sudo=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null || { log "need root (or sudo) to install: ${missing[*]}"; exit 1; }
        sudo=(sudo)
    fi
    log "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    log "Debian packages present"
fi

# npm packages, at the versions of each folder's lock file, installed again only when that file changed. Install
# scripts are not run: nothing here needs them (buf's binary ships inside its npm package). proto/ uses `npm install
# --no-save` rather than `npm ci`: the registry these machines reach serves buf's Linux builds only, so its lock file
# lists no macOS or Windows build and `npm ci` would refuse it as out of sync; the versions installed are the same.
# Go: the module's dependencies and the protoc plugins it pins as tools, into the module cache.
go_version="$(go env GOVERSION 2>/dev/null || true)"
[[ -n "${go_version}" ]] || die "Go is not installed: clients/go/go.mod needs Go 1.26 or newer (see clients/go/README.md)"
(cd "${root}/clients/go" && go mod download) || die "go mod download in clients/go failed (${go_version})"
log "Go modules of clients/go present (${go_version})"

# kustomize, which renders deploy/kubernetes for its tests (kubectl's built-in copy may be absent or of another
# version): built from its Go module into .cache/bin, again only when the version there is not the pinned one.
kustomize_version="v5.7.1"
kustomize="${root}/.cache/bin/kustomize"
if [[ "$("${kustomize}" version 2>/dev/null || true)" != "${kustomize_version}" ]]; then
    log "go install sigs.k8s.io/kustomize/kustomize/v5@${kustomize_version}"
    GOBIN="${root}/.cache/bin" go install "sigs.k8s.io/kustomize/kustomize/v5@${kustomize_version}" \
        || die "go install of kustomize ${kustomize_version} failed (${go_version})"
else
    log "kustomize ${kustomize_version} present"
fi

declare -A npm_install=([proto]="install --no-save" [clients/node]="ci")
for dir in proto clients/node; do
    stamp="${root}/${dir}/node_modules/.conduit-lock"
    lock="$(cd "${root}/${dir}" && sha256sum package.json package-lock.json)"
    if [[ -f "${stamp}" && "$(cat "${stamp}")" == "${lock}" ]]; then
        log "${dir}/node_modules up to date"
        continue
    fi
    log "npm ${npm_install[${dir}]} in ${dir}"
    # shellcheck disable=SC2086  # the command's words
    (cd "${root}/${dir}" && npm ${npm_install[${dir}]} --ignore-scripts --no-audit --no-fund --loglevel=error)
    echo "${lock}" > "${stamp}"
done
