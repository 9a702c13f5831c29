// The provider's Prometheus metrics, on a registry of its own.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const buckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
  return {
    registry,
    keyvaultRequests: new Counter({
      name: 'keyvault_requests_total',
      help: 'HTTP requests sent to Key Vault, retries and auth challenges included',
      labelNames: ['vault', 'operation', 'status'] as const,
      registers: [registry],
    }),
    keyvaultDuration: new Histogram({
      name: 'keyvault_request_duration_seconds',
      help: 'Duration of HTTP requests to Key Vault',
      labelNames: ['vault', 'operation'] as const,
      buckets,
      registers: [registry],
    }),
    cacheLookups: new Counter({
      name: 'keyvault_cache_lookups_total',
      help: 'Key Vault reads answered from the version cache (hit), from a read of the same current version or version list by the same identity within the read share window, --read-share-seconds or, for a vault whose change events are received, --read-share-seconds-with-events (shared), joined to an identical in-flight read (coalesced), or sent (miss)',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    grpcRequests: new Counter({
      name: 'grpc_requests_total',
      help: 'Provider API calls by method and gRPC status',
      labelNames: ['method', 'code'] as const,
      registers: [registry],
    }),
    // Time left before each returned object expires, without object labels: the provider serves
    // every namespace, and per-object series would grow with what tenants name.
    objectExpiry: new Histogram({
      name: 'keyvault_object_time_to_expiry_seconds',
      help: 'Time left before a returned object version expires (Key Vault exp, certificate notAfter), observed per object per Mount; negative when already expired',
      buckets: [-86_400, 0, 86_400, 7 * 86_400, 14 * 86_400, 30 * 86_400, 90 * 86_400, 365 * 86_400],
      registers: [registry],
    }),
    // One check per --healthz-check-interval-seconds, however often /healthz is asked.
    selfChecks: new Counter({
      name: 'healthz_self_checks_total',
      help: "Checks of the provider's own gRPC health service over its socket, which /healthz answers from",
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    // Change events (change-source.ts). No vault or object labels: queue messages are untrusted
    // input, and per-object series would grow with what anyone writes to the queue.
    changeEventsReceiving: new Gauge({
      name: 'change_events_receiving',
      help: "1 while the change queue is read successfully, 0 otherwise (also while nobody watches: see change_events_watchers); the provider's log says why",
      registers: [registry],
    }),
    changeWatchers: new Gauge({
      name: 'change_events_watchers',
      help: 'Callers watching for change notices; the queue is read only while there is one',
      registers: [registry],
    }),
    changeEventsCoveredVaults: new Gauge({
      name: 'change_events_covered_vaults',
      help: 'Vaults a Key Vault event has come from (at most 1024, the least recently seen forgotten); while change_events_receiving is 1, their reads are shared up to --read-share-seconds-with-events',
      registers: [registry],
    }),
    changeMessages: new Counter({
      name: 'change_queue_messages_total',
      help: 'Change queue messages handled, by result: notified, duplicate, ignored (a Key Vault event naming no object version), not_keyvault, malformed',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    changeQueueErrors: new Counter({
      name: 'change_queue_errors_total',
      help: 'Failed reads of the change queue, by reason (Forbidden, QueueNotFound, QueueUnreachable, TokenFailed, …)',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    mountDuration: new Histogram({
      name: 'mount_duration_seconds',
      help: 'Duration of Mount calls',
      labelNames: ['code'] as const,
      buckets,
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
