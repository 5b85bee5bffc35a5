#!/usr/bin/env bash
# docker-check.sh checks the Dockerfile's build without a Docker engine:
#   1. copies the repository into a temporary build context, minus the .dockerignore patterns;
#   2. takes the Dockerfile's one RUN instruction that runs `go build` (so this check and the image
#      cannot drift), and runs it there with VERSION/COMMIT set, writing to a temp dir instead of /out;
#   3. checks the binary is statically linked (`file`, `ldd`), built with CGO_ENABLED=0 and -trimpath;
#   4. runs `<binary> version` and checks it prints VERSION.
# Usage: scripts/docker-check.sh            (VERSION/COMMIT may be overridden from the environment)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dockerfile="${root}/Dockerfile"
export VERSION="${VERSION:-0.0.0-dockercheck}"
export COMMIT="${COMMIT:-0123456789ab}"

die() { echo "docker-check: $*" >&2; exit 1; }

# `file` is not in every base image; install it once (idempotent: skipped when present).
if ! command -v file >/dev/null; then
  echo "docker-check: installing 'file' with apt-get"
  sudo=""
  [[ "$(id -u)" == 0 ]] || sudo="sudo"
  if ! { ${sudo} apt-get update -qq && DEBIAN_FRONTEND=noninteractive ${sudo} apt-get install -y -qq file >/dev/null; }; then
    die "could not install 'file' (apt-get install file)"
  fi
fi

# 1. The build instruction: join continuation lines, keep RUN instructions that call `go build`.
mapfile -t runs < <(
  sed -e ':a' -e '/\\$/N; s/\\\n/ /; ta' "${dockerfile}" \
    | sed -n -E 's/^[[:space:]]*RUN[[:space:]]+(.*go build.*)$/\1/p'
)
[[ ${#runs[@]} -eq 1 ]] || die "want exactly one RUN instruction with 'go build' in ${dockerfile}, found ${#runs[@]}"
cmd="${runs[0]}"
# Drop BuildKit flags (--mount=..., --network=..., --security=...) that precede the shell command.
while [[ "${cmd}" =~ ^[[:space:]]*--[a-z]+=[^[:space:]]+[[:space:]]+(.*)$ ]]; do cmd="${BASH_REMATCH[1]}"; done
[[ "${cmd}" == *" -o /out/zdgate "* ]] || die "the go build instruction must write '-o /out/zdgate': ${cmd}"

tmp="$(mktemp -d)"
trap 'chmod -R u+w "${tmp}" 2>/dev/null; rm -rf "${tmp}"' EXIT
ctx="${tmp}/context"
out="${tmp}/out"
mkdir -p "${out}"
cmd="${cmd/ -o \/out\/zdgate / -o ${out}/zdgate }"

# 2. The build context, as Docker would send it (plain patterns and **/ only; `!` is not emulated).
patterns=()
while IFS= read -r pat || [[ -n "${pat}" ]]; do
  pat="${pat%%#*}"; pat="${pat#"${pat%%[![:space:]]*}"}"; pat="${pat%"${pat##*[![:space:]]}"}"
  [[ -z "${pat}" ]] && continue
  [[ "${pat}" == '!'* ]] && die ".dockerignore: '!' exceptions are not supported by this check: ${pat}"
  patterns+=("${pat#/}")
done < "${root}/.dockerignore"
# Plain names (.git, .tools, ...) are skipped while copying; glob patterns are removed afterwards.
excludes=()
for pat in "${patterns[@]}"; do
  [[ "${pat}" == *[\*?[]* ]] || excludes+=("--exclude=./${pat}")
done
mkdir -p "${ctx}"
tar -C "${root}" "${excludes[@]}" -cf - . | tar -C "${ctx}" -xf -
(
  cd "${ctx}"
  shopt -s globstar dotglob nullglob
  for pat in "${patterns[@]}"; do
    # shellcheck disable=SC2206 # the pattern is meant to glob
    matches=( ${pat} )
    if ((${#matches[@]})); then rm -rf -- "${matches[@]}"; fi
  done
)

echo "docker-check: (in build context) ${cmd}"
# Empty TARGETOS/TARGETARCH mean "this host", as GOOS=/GOARCH= do for go. No .git in the context,
# so VCS stamping is moot; -buildvcs=false keeps a stray .git from mattering.
(cd "${ctx}" && TARGETOS="" TARGETARCH="" GOFLAGS="-buildvcs=false" sh -c "${cmd}") \
  || die "the Dockerfile's go build failed (see above)"
bin="${out}/zdgate"
[[ -x "${bin}" ]] || die "no binary at ${bin}"

# 3. Static, cgo-free, trimmed.
finfo="$(file -b "${bin}")"
echo "docker-check: file: ${finfo}"
[[ "${finfo}" == *"statically linked"* ]] || die "binary is not statically linked: ${finfo}"
if command -v ldd >/dev/null; then
  lddout="$(ldd "${bin}" 2>&1 || true)"
  [[ "${lddout}" == *"not a dynamic executable"* || "${lddout}" == *"statically linked"* ]] \
    || die "ldd sees dynamic dependencies: ${lddout}"
fi
buildinfo="$(go version -m "${bin}")"
grep -q $'\tbuild\tCGO_ENABLED=0' <<<"${buildinfo}" || die "binary was not built with CGO_ENABLED=0"
grep -q $'\tbuild\t-trimpath=true' <<<"${buildinfo}" || die "binary was not built with -trimpath"

# 4. The version stamped through -ldflags.
verout="$("${bin}" version 2>&1)" || die "'zdgate version' failed: ${verout}"
echo "docker-check: zdgate version: ${verout}"
[[ "${verout}" == *"${VERSION}"* ]] || die "'zdgate version' does not print VERSION=${VERSION}"
[[ "${verout}" == *"${COMMIT}"* ]] || echo "docker-check: note: 'zdgate version' does not print COMMIT=${COMMIT}"
echo "docker-check: OK (static binary, version ${VERSION})"
