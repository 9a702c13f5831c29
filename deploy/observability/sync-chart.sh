#!/usr/bin/env bash
# Copies the alert rules into the chart, whose PrometheusRule template reads them (Helm reads files
# only from inside the chart). deploy/test/observability.unit.test.ts fails when the copy differs.
set -euo pipefail
cd "$(dirname "$0")/../.."
cp deploy/observability/alerts.yaml deploy/chart/secret-store-sync/files/alerts.yaml
echo deploy/chart/secret-store-sync/files/alerts.yaml
