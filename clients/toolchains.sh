#!/usr/bin/env bash
# Install what generating, building and testing the C++, Go, Java and Node.js clients needs, the proto tools, and the
# browser the dashboard tests drive:
# Debian 12's packages (apt-get, only those missing) and the npm packages locked in proto/ and clients/node/
# (`npm ci`, only when the lock file changed since the last install). A second run is a no-op in about a second.
#
# Usage: clients/toolchains.sh            (as root, or with sudo available)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
log() { echo "toolchains: $*" >&2; }

# Every package is needed: a missing one fails a build or a test later, so it is installed here, never skipped.
packages=(
    # C++: protoc, the gRPC plugins, headers and libraries.
    protobuf-compiler protobuf-compiler-grpc libprotobuf-dev libgrpc++-dev pkg-config
    # Go: the compiler, protoc plugins and the gRPC and protobuf libraries as a GOPATH tree. The 1.5 APIv1 shim
    # replaces the 1.3 one apt would otherwise pick for golang-google-grpc-dev, which cannot decode APIv2 messages.
    golang-go protoc-gen-go protoc-gen-go-grpc golang-google-grpc-dev golang-google-protobuf-dev
    golang-github-golang-protobuf-1-5-dev
    # Java: the gRPC plugin and the runtime jars the example compiles and runs with.
    protobuf-compiler-grpc-java-plugin libprotobuf-java libgrpc-java libguava-java libnetty-java libperfmark-java
    libgoogle-gson-java libgeronimo-annotation-1.3-spec-java
    # The dashboard's browser tests: Playwright drives Debian's build (/usr/bin/chromium), never a downloaded one;
    # with a font, so pages and screenshots show text (recommended packages are not installed).
    chromium fonts-liberation
)
# Tools a machine may have from elsewhere: checked by command, installed from Debian when absent.
declare -A commands=([cmake]=cmake [g++]=g++ [make]=make [javac]=default-jdk-headless [node]=nodejs [npm]=npm)

missing=()
for package in "${packages[@]}"; do
    status="$(dpkg-query -W -f='${Status}' "${package}" 2>/dev/null || true)"
    [[ "${status}" == "install ok installed" ]] || missing+=("${package}")
done
for command in "${!commands[@]}"; do
    command -v "${command}" >/dev/null || missing+=("${commands[${command}]}")
done

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
