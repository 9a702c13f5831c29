// The manager's Prometheus metrics.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export function createMetrics() {
  const registry = new Registry();
  /** Set by the controller once it leads: the SecretSyncs it serves, counted by Ready reason. */
  const statusSource: { count?: () => Map<string, number> } = {};
  /** Set by the controller: how many change keys its index holds. */
  const changeKeysSource: { size?: () => number } = {};
  collectDefaultMetrics({ register: registry });
  const buckets = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
  return {
    registry,
    reconciles: new Counter({
      name: 'secretsync_reconciles_total',
      help: 'Reconciles by outcome (the status type)',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    reconcileDuration: new Histogram({
      name: 'secretsync_reconcile_duration_seconds',
      help: 'Duration of reconciles',
      labelNames: ['reason'] as const,
      buckets,
      registers: [registry],
    }),
    queueDepth: new Gauge({
      name: 'secretsync_queue_depth',
      help: 'SecretSyncs waiting, by lane',
      labelNames: ['lane'] as const,
      registers: [registry],
    }),
    queueWait: new Histogram({
      name: 'secretsync_queue_wait_seconds',
      help: 'Time from enqueue to reconcile start, by lane',
      labelNames: ['lane'] as const,
      buckets,
      registers: [registry],
    }),
    providerCalls: new Histogram({
      name: 'secretsync_provider_call_duration_seconds',
      help: 'Provider Mount calls by provider and gRPC code',
      labelNames: ['provider', 'code'] as const,
      buckets,
      registers: [registry],
    }),
    sharedMounts: new Counter({
      name: 'secretsync_shared_mounts_total',
      help: 'Rotations answered by an identical Mount shared within the window, and change-driven runs answered by one that started after the notice, instead of a provider call',
      registers: [registry],
    }),
    tokenRequests: new Counter({
      name: 'secretsync_token_requests_total',
      help: 'TokenRequests sent (cache misses and refreshes), by result',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    secretWrites: new Counter({
      name: 'secretsync_secret_writes_total',
      help: 'Secret writes by operation and result',
      labelNames: ['operation', 'result'] as const,
      registers: [registry],
    }),
    objectExpiry: new Gauge({
      name: 'secretsync_object_expiry_timestamp_seconds',
      help: 'When a synced object expires (Unix time), as its provider reports it; one series per synced object, removed with its SecretSync; the soonest within --max-expiry-series-per-secretsync and --max-expiry-series',
      labelNames: ['namespace', 'secretsync', 'object'] as const,
      registers: [registry],
    }),
    // By reason only: object names are the tenant's, and the kept series already name the SecretSyncs at their cap.
    expirySeriesDropped: new Counter({
      name: 'secretsync_object_expiry_series_dropped_total',
      help: 'Object expiries not exported as secretsync_object_expiry_timestamp_seconds, by the cap that left them out (per_secretsync, total), counted at each sync that reports them',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    eventsDropped: new Counter({
      name: 'secretsync_events_dropped_total',
      help: 'Events not written because too many were already waiting for the apiserver (the status still holds the outcome)',
      registers: [registry],
    }),
    // By namespace and kind: namespaces are the cluster admin's, kinds three; workload names are tenants' and stay out.
    restarts: new Counter({
      name: 'secretsync_workload_restarts_total',
      help: 'Rollout restarts of opted-in workloads after a real value change of a SecretSync they name, by namespace and kind',
      labelNames: ['namespace', 'kind'] as const,
      registers: [registry],
    }),
    restartsSkipped: new Counter({
      name: 'secretsync_workload_restarts_skipped_total',
      help: 'Rollout restarts not made, by reason: debounced (joined a pending rollout), rate_limited (postponed to the minimum interval), unchanged (already rolled for these versions), not_opted_in, invalid_annotation, capacity, failed',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    leader: new Gauge({
      name: 'secretsync_leader',
      help: '1 while this manager holds the lease',
      registers: [registry],
    }),
    // Counted at scrape time from the informer cache, so it is the state kubectl shows, not a rate:
    // an alert can say how many SecretSyncs are failing now. Reported by the leader only.
    statuses: new Gauge({
      name: 'secretsync_status',
      help: "SecretSyncs this manager serves, by their Ready condition's reason (None before the first reconcile; Other for a reason the manager does not write); reported by the leader",
      labelNames: ['reason'] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const [reason, n] of statusSource.count?.() ?? []) this.set({ reason }, n);
      },
    }),
    statusSource,
    // Change notices (changes.ts): per provider socket, which the operator names, never a tenant.
    changeStreamUp: new Gauge({
      name: 'secretsync_change_stream_up',
      help: "1 while this manager watches the provider's change notices; 0 when the stream is down or the provider has none (its SecretSyncs are polled only)",
      labelNames: ['provider'] as const,
      registers: [registry],
    }),
    changeSourceReceiving: new Gauge({
      name: 'secretsync_change_source_receiving',
      help: 'As the provider reports it over an open stream: 1 while it receives change events from its store',
      labelNames: ['provider'] as const,
      registers: [registry],
    }),
    changeNotices: new Counter({
      name: 'secretsync_change_notices_total',
      help: 'Change notices received from the provider',
      labelNames: ['provider'] as const,
      registers: [registry],
    }),
    changeEnqueued: new Counter({
      name: 'secretsync_change_enqueued_total',
      help: 'SecretSyncs enqueued because a change notice named a key of their last Mount',
      labelNames: ['provider'] as const,
      registers: [registry],
    }),
    changeKeys: new Gauge({
      name: 'secretsync_change_keys',
      help: 'Change keys indexed (key to SecretSync, from the last successful Mounts)',
      registers: [registry],
      collect() {
        this.set(changeKeysSource.size?.() ?? 0);
      },
    }),
    changeKeysDropped: new Counter({
      name: 'secretsync_change_keys_dropped_total',
      help: 'Change keys a provider named that were not indexed (those SecretSyncs are polled only), by reason: not_returned (no such object in the answer), per_secretsync or total (a cap)',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    changeKeysSource,
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
