#!/usr/bin/env bash
# install-helm.sh builds the pinned Helm 3 into .tools/bin/helm (gitignored) from the Go module proxy,
# so `make helm-install` works where only the Go proxy is reachable (no get.helm.sh, no Docker).
# Idempotent: does nothing when .tools/bin/helm already reports HELM_VERSION.
#
# The -X flags are the ones Helm's own Makefile sets: without them `go install` yields a helm that
# reports version "v3.22" and assumes Kubernetes v1.20 for `helm template`/`helm lint`, which would
# fail the chart's kubeVersion (>=1.29) constraint.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.22.0}"
# Kubernetes version the pinned Helm was built against (its k8s.io/client-go v0.37 => 1.37).
HELM_K8S_MAJOR="${HELM_K8S_MAJOR:-1}"
HELM_K8S_MINOR="${HELM_K8S_MINOR:-37}"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bindir="${root}/.tools/bin"
helm="${bindir}/helm"

if [[ -x "${helm}" ]]; then
  have="$("${helm}" version --template '{{.Version}}' 2>/dev/null || true)"
  if [[ "${have}" == "${HELM_VERSION}" ]]; then
    echo "helm ${HELM_VERSION} already installed at ${helm}"
    exit 0
  fi
  echo "replacing helm ${have:-unknown} at ${helm} with ${HELM_VERSION}"
fi

command -v go >/dev/null || { echo "install-helm.sh: go is not on PATH" >&2; exit 1; }
mkdir -p "${bindir}"

ldflags="-s -w"
ldflags+=" -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}"
ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  ldflags+=" -X ${pkg}.k8sVersionMajor=${HELM_K8S_MAJOR} -X ${pkg}.k8sVersionMinor=${HELM_K8S_MINOR}"
done

echo "building helm ${HELM_VERSION} into ${bindir} (takes a few minutes)"
# Run outside the repo so zdgate's go.mod/go.work cannot influence the build.
(cd / && GOBIN="${bindir}" CGO_ENABLED=0 GOFLAGS=-buildvcs=false \
  go install -trimpath -ldflags "${ldflags}" "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}")

got="$("${helm}" version --template '{{.Version}}')"
if [[ "${got}" != "${HELM_VERSION}" ]]; then
  echo "install-helm.sh: built helm reports ${got}, want ${HELM_VERSION}" >&2
  exit 1
fi
echo "installed helm ${got} at ${helm}"
