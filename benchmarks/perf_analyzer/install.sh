#!/usr/bin/env bash
# Install Triton's perf_analyzer into a private folder that changes nothing system-wide.
#
# Usage: benchmarks/perf_analyzer/install.sh [DEST]      (default DEST: <repo>/.cache/perf_analyzer)
#
# Why this is not `pip install perf-analyzer`: the only real wheel on PyPI (2.60.0) is tagged manylinux_2_38, while
# Debian 12 ships glibc 2.36, so pip falls back to a 0.1.0 placeholder. The binary needs glibc >= 2.38 and
# libstdc++ >= GLIBCXX_3.4.32, so we take the wheel as-is and run it through the dynamic loader of Debian 13 (trixie)
# with trixie's libc, libstdc++, libgcc, zlib and OpenSSL unpacked next to it. Nothing is installed with dpkg: apt runs
# with a private configuration, state and cache, and only downloads .deb files that `dpkg-deb -x` unpacks.
#
# Result: DEST/bin/perf_analyzer, a wrapper that execs
#   DEST/lib/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 --library-path <private libs> DEST/libexec/perf_analyzer
# Re-running is a fast no-op once DEST holds a complete install of the same recipe.
#
# Environment: PYTHON (default python3) runs pip; CONDUIT_DEBIAN_MIRROR overrides the mirror read from apt's sources.
set -euo pipefail

readonly PA_VERSION="2.60.0"
readonly PA_WHEEL="perf_analyzer-${PA_VERSION}-py3-none-manylinux_2_38_x86_64.whl"
# Pinned so a re-published or tampered wheel fails loudly instead of running as root.
readonly PA_WHEEL_SHA256="23ef56b107ae9233e5cf09fbdf508dd9b936a52f1bae2f63f53c8117087b3f25"
readonly SUITE="trixie"
# From `readelf -d`: libz, libssl/libcrypto, libstdc++, libm, libgcc_s, libc, ld-linux; trixie's libcrypto adds libzstd.
# libcudart/libmpi are dlopen'ed only for GPU / MPI modes, which we never use.
readonly DEBS=(libc6 libstdc++6 libgcc-s1 zlib1g libssl3t64 libzstd1)
readonly RECIPE="perf_analyzer=${PA_VERSION} sha256=${PA_WHEEL_SHA256} suite=${SUITE} debs=${DEBS[*]}"
readonly STAMP_NAME=".conduit-perf-analyzer"

die() {
    echo "perf_analyzer install: error: $*" >&2
    exit 1
}
log() { echo "perf_analyzer install: $*" >&2; }

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
dest="${1:-${repo_root}/.cache/perf_analyzer}"
mkdir -p "$(dirname "${dest}")"
dest="$(cd "$(dirname "${dest}")" && pwd -P)/$(basename "${dest}")"

stamp="${dest}/${STAMP_NAME}"
if [[ -x "${dest}/bin/perf_analyzer" && -f "${stamp}" ]] && [[ "$(cat "${stamp}")" == "${RECIPE}" ]]; then
    log "already installed in ${dest}"
    exit 0
fi
# Never delete a folder we did not create: DEST is replaced only when empty or stamped by this script.
if [[ -e "${dest}" && ! -f "${stamp}" ]] && [[ -n "$(ls -A "${dest}" 2>/dev/null)" ]]; then
    die "${dest} exists, is not empty and was not created by this script; remove it or choose another DEST"
fi

[[ "$(uname -m)" == "x86_64" ]] || die "only x86_64 Linux is supported (the wheel is x86_64), got $(uname -m)"
python="${PYTHON:-python3}"
for tool in "${python}" apt-get apt-config dpkg-deb; do
    command -v "${tool}" >/dev/null || die "'${tool}' not found on PATH (this script targets Debian-based machines)"
done
"${python}" -m pip --version >/dev/null 2>&1 || die "'${python} -m pip' does not work; install pip or set PYTHON"

# Reuse the Debian mirror this machine already uses: the URI of the first enabled `deb` entry whose suite is exactly
# this release's codename (which skips -security, -updates and third-party repositories). Both apt formats are read.
find_mirror() {
    local codename
    codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
    [[ -n "${codename}" ]] || return 0
    local files=()
    if [[ -f /etc/apt/sources.list ]]; then files+=(/etc/apt/sources.list); fi
    shopt -s nullglob
    files+=(/etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources)
    shopt -u nullglob
    local f uri
    for f in "${files[@]}"; do
        if [[ "${f}" == *.sources ]]; then
            # deb822: blank-line separated stanzas; keep the first URI of a stanza listing the codename as a suite.
            uri="$(awk -v cn="${codename}" '
                function flush() {
                    if (types ~ /(^| )deb( |$)/ && enabled != "no" && (" " suites " ") ~ (" " cn " ") && uri != "") {
                        print uri; found = 1; exit
                    }
                    types = ""; suites = ""; uri = ""; enabled = ""
                }
                /^[ \t]*$/ { flush(); next }
                /^[ \t]*#/ { next }
                tolower($1) == "types:" { $1 = ""; types = $0 }
                tolower($1) == "suites:" { $1 = ""; suites = $0; gsub(/^ +| +$/, "", suites) }
                tolower($1) == "uris:" { uri = $2 }
                tolower($1) == "enabled:" { enabled = tolower($2) }
                END { if (!found) flush() }
            ' "${f}")"
        else
            # One-line format: deb [options] URI suite components...
            uri="$(awk -v cn="${codename}" '
                $1 == "deb" {
                    i = 2
                    if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                    if ($(i + 1) == cn) { print $i; exit }
                }
            ' "${f}")"
        fi
        if [[ -n "${uri}" ]]; then
            echo "${uri}"
            return 0
        fi
    done
}

mirror="${CONDUIT_DEBIAN_MIRROR:-$(find_mirror)}"
if [[ -z "${mirror}" ]]; then
    mirror="http://deb.debian.org/debian"
    log "no Debian mirror found in /etc/apt sources; using ${mirror}"
fi
keyring="/usr/share/keyrings/debian-archive-keyring.gpg"
[[ -f "${keyring}" ]] || die "${keyring} is missing (package debian-archive-keyring); cannot verify ${SUITE}"

work="$(mktemp -d "$(dirname "${dest}")/.perf_analyzer.build.XXXXXX")"
trap 'rm -rf "${work}"' EXIT
stage="${work}/stage"
mkdir -p "${stage}/bin" "${stage}/libexec" "${stage}/lib"

log "downloading ${PA_WHEEL} from PyPI"
printf 'perf-analyzer==%s --hash=sha256:%s\n' "${PA_VERSION}" "${PA_WHEEL_SHA256}" >"${work}/requirements.txt"
"${python}" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --platform manylinux_2_38_x86_64 --require-hashes -r "${work}/requirements.txt" -d "${work}/wheel" \
    || die "pip could not download perf-analyzer==${PA_VERSION} (network, PyPI, or hash mismatch)"
# zipfile instead of unzip: unzip is not on every minimal image.
"${python}" -m zipfile -e "${work}/wheel/${PA_WHEEL}" "${work}/wheel/x" || die "could not unpack ${PA_WHEEL}"
install -m 0755 "${work}/wheel/x/perf_analyzer/bin/perf_analyzer" "${stage}/libexec/perf_analyzer"

# Private apt: APT_CONFIG is read before everything else, so pointing Dir::Etc::Parts at an empty folder keeps the
# machine's apt.conf.d hooks (docker-clean, appstream refresh, packagekit) from running or touching system caches.
apt_root="${work}/apt"
mkdir -p "${apt_root}"/{parts,preferences.d,lists/partial,cache/archives/partial,log,debs}
: >"${apt_root}/status"
echo "deb [arch=amd64 signed-by=${keyring}] ${mirror} ${SUITE} main" >"${apt_root}/sources.list"
{
    echo "Dir::Etc::Parts \"${apt_root}/parts\";"
    echo "Dir::Etc::Main \"/dev/null\";"
    echo "Dir::Etc::SourceList \"${apt_root}/sources.list\";"
    echo "Dir::Etc::SourceParts \"${apt_root}/parts\";"
    echo "Dir::Etc::Preferences \"/dev/null\";"
    echo "Dir::Etc::PreferencesParts \"${apt_root}/preferences.d\";"
    echo "Dir::State \"${apt_root}\";"
    echo "Dir::State::Lists \"${apt_root}/lists\";"
    echo "Dir::State::status \"${apt_root}/status\";"
    echo "Dir::Cache \"${apt_root}/cache\";"
    echo "Dir::Log \"${apt_root}/log\";"
    echo "APT::Architecture \"amd64\";"
    echo "APT::Architectures { \"amd64\"; };"
    echo "Acquire::Languages \"none\";"
    # Downloads land in our private folder, which apt's unprivileged _apt user may not be able to enter.
    echo "APT::Sandbox::User \"root\";"
} >"${apt_root}/apt.conf"
# Carry over the few settings of the machine's apt that decide whether the mirror can be reached at all (proxies; a
# snapshot mirror's expired Valid-Until), read with apt-config since the private parts folder hides apt.conf.d.
for key in Acquire::http::Proxy Acquire::https::Proxy Acquire::Check-Valid-Until Acquire::Check-Date; do
    value="$(apt-config shell v "${key}" 2>/dev/null | sed -n "s/^v='\(.*\)'$/\1/p")"
    if [[ -n "${value}" ]]; then echo "${key} \"${value}\";" >>"${apt_root}/apt.conf"; fi
done
export APT_CONFIG="${apt_root}/apt.conf"

log "reading ${SUITE} package lists from ${mirror}"
apt-get -q --error-on=any update >"${apt_root}/log/update.txt" 2>&1 \
    || { cat "${apt_root}/log/update.txt" >&2; die "apt-get update for ${SUITE} failed (mirror ${mirror})"; }
log "downloading ${DEBS[*]}"
(cd "${apt_root}/debs" && apt-get -q download "${DEBS[@]}" >"${apt_root}/log/download.txt" 2>&1) \
    || { cat "${apt_root}/log/download.txt" >&2; die "apt-get download of ${DEBS[*]} from ${SUITE} failed"; }
for deb in "${apt_root}"/debs/*.deb; do
    dpkg-deb -x "${deb}" "${stage}/lib" || die "dpkg-deb could not unpack ${deb}"
    dpkg-deb --show --showformat='${Package}=${Version}\n' "${deb}" >>"${stage}/lib/VERSIONS"
done

# trixie is usr-merged: the loader and libraries live in usr/lib/x86_64-linux-gnu; fall back to the old layout.
libdir=""
for candidate in usr/lib/x86_64-linux-gnu lib/x86_64-linux-gnu; do
    if [[ -e "${stage}/lib/${candidate}/ld-linux-x86-64.so.2" ]]; then
        libdir="${candidate}"
        break
    fi
done
[[ -n "${libdir}" ]] || die "the ${SUITE} libc6 package holds no ld-linux-x86-64.so.2 where expected"
# Every library must come from the private folder: one picked up from the host would work here and break elsewhere.
listing="$("${stage}/lib/${libdir}/ld-linux-x86-64.so.2" --library-path "${stage}/lib/${libdir}" --list \
    "${stage}/libexec/perf_analyzer" 2>&1)" || die "the ${SUITE} loader cannot load perf_analyzer:"$'\n'"${listing}"
leaks="$(grep -E '=> (not found|/)' <<<"${listing}" | grep -vF "=> ${stage}/lib/" || true)"
[[ -z "${leaks}" ]] || die "libraries missing from the private folder (add their packages to DEBS):"$'\n'"${leaks}"

# Paths are resolved from the wrapper's own location so the folder can be moved (it is built elsewhere, then renamed).
cat >"${stage}/bin/perf_analyzer" <<EOF
#!/bin/sh
# Generated by benchmarks/perf_analyzer/install.sh (${RECIPE}).
# perf_analyzer needs glibc >= 2.38: run it through Debian ${SUITE}'s loader and libraries, never the system's.
here="\$(dirname -- "\$(readlink -f -- "\$0")")/.."
run() {
    exec "\${here}/lib/${libdir}/ld-linux-x86-64.so.2" --library-path "\${here}/lib/${libdir}" \\
        --argv0 perf_analyzer "\${here}/libexec/perf_analyzer" "\$@"
}
if [ "\$#" -eq 1 ] && { [ "\$1" = "--help" ] || [ "\$1" = "-h" ]; }; then
    # perf_analyzer ${PA_VERSION} rejects --help and -h; without arguments it prints its usage to stderr, then complains
    # that -m is missing and exits 99. Show the usage on stdout and succeed, as --help conventionally does.
    (run) 2>&1 | grep -v '^Error: '
    exit 0
fi
run "\$@"
EOF
chmod 0755 "${stage}/bin/perf_analyzer"

"${stage}/bin/perf_analyzer" --help >"${work}/help.txt" 2>&1 || true
grep -q -- "--concurrency-range" "${work}/help.txt" \
    || { cat "${work}/help.txt" >&2; die "the installed perf_analyzer does not run (output above)"; }

echo "${RECIPE}" >"${stage}/${STAMP_NAME}"
# Swap in the finished folder only now, so an interrupted run never leaves a half install that looks complete.
rm -rf "${dest}"
mv "${stage}" "${dest}"
log "installed ${dest}/bin/perf_analyzer ($(paste -sd',' "${dest}/lib/VERSIONS"))"
