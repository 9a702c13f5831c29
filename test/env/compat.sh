#!/usr/bin/env bash
# The clusters users run besides the newest: the guide's minimum (Kubernetes 1.27, etcd) and K3s's
# default datastore (kine over SQLite, on the newest release). Each runs the walkthrough, the
# chart's install and its admission-policy probes, the CRD's schema checks and the manager's own
# ownership checks and the Lease tests against a stack of its own. 1.27 also runs the chart's pod
# on its own kubelet. kine also runs the paged first list, the apiserver restart (the manager's
# test and the fault matrix's row) and the relist after a watch fell behind compaction, where its
# list, watch and compaction differ from etcd. The rest of the suite runs on the newest release
# with etcd only.
set -euo pipefail
cd "$(dirname "$0")/../.."
export NODE_OPTIONS='--import ./test/env/preload.mjs'
# Every file named is an integration test: Jest runs them in that project, with its stack.
jest() { node --experimental-vm-modules --no-warnings=ExperimentalWarning node_modules/jest/bin/jest.js "$@"; }
COMMON=(
  test/smoke/kubernetes.int.test.ts
  controller/test/crd.int.test.ts
  controller/test/status.int.test.ts
  deploy/test/chart.int.test.ts
  test/sandbox/sandbox.int.test.ts
  controller/test/leader.int.test.ts
)
echo "::: Kubernetes 1.27 on etcd"
# And the chart's pod on 1.27's kubelet (.ci/run builds it and the scheduler).
K8S_VERSION=1.27 jest "${COMMON[@]}" deploy/test/pod.int.test.ts
echo "::: the newest Kubernetes on kine (SQLite)"
# The fault matrix there runs only its apiserver-restart row (FAULTS_ONLY, test/faults/run.ts).
SSS_DATASTORE=kine FAULTS_ONLY='kube-apiserver restarted' jest "${COMMON[@]}" controller/test/paging.int.test.ts \
  controller/test/restart.int.test.ts controller/test/compaction.int.test.ts test/faults/faults.int.test.ts
