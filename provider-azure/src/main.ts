#!/usr/bin/env node
// provider-azure: serves the Secrets Store CSI provider API for Azure Key Vault on a unix socket.
import { errorMessage, serve } from '@secret-store-sync/proto';
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { ChangeSource } from '@secret-store-sync/proto';
import { Budgets } from './budget.js';
import { storageQueue } from './change-queue.js';
import { NOT_CONFIGURED, QueueChangeSource } from './change-source.js';
import { ConfigError, parseConfig, usage, type Config } from './config.js';
import { Credentials } from './credentials.js';
import { SelfCheck, startHealthz, startMetrics } from './http.js';
import { createLogger, type Logger } from './log.js';
import { createMetrics, type Metrics } from './metrics.js';
import { AzureProvider } from './mount.js';
import { describeQueueIdentity, queueCloud, queueCredential } from './queue-identity.js';
import { KeyVaultAccess } from './vault.js';

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string })
  .version;

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseConfig(process.argv.slice(2));
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(e.message);
      return 2;
    }
    throw e;
  }
  if (parsed === 'version') {
    console.log(JSON.stringify({ name: 'secret-store-sync-provider-azure', version: VERSION }));
    return 0;
  }
  if (parsed === 'help') {
    console.log(usage());
    return 0;
  }
  const cfg = parsed;
  const log = createLogger(cfg.logLevel);
  const metrics = createMetrics();
  const access = new KeyVaultAccess(
    {
      maxRetries: cfg.vaultMaxRetries,
      cacheTtlMs: cfg.versionCacheTtlSeconds * 1000,
      cacheMaxBytes: cfg.versionCacheMaxBytes,
      maxClients: cfg.maxIdentities,
      authWindowMs: cfg.cacheAuthWindowSeconds * 1000,
      maxVaultLabels: cfg.maxVaults,
      requestTimeoutMs: cfg.vaultRequestTimeoutSeconds * 1000,
      readShareMs: cfg.readShareSeconds * 1000,
      readShareWithEventsMs: cfg.readShareWithEvents.seconds * 1000,
    },
    new Budgets({
      ratePerSecond: cfg.vaultRequestsPerSecond,
      burst: cfg.vaultBurst,
      maxConcurrency: cfg.vaultMaxConcurrency,
      maxVaults: cfg.maxVaults,
    }),
    metrics,
  );
  const changes = await changeSource({ cfg, log, metrics, access });
  const provider = new AzureProvider({
    runtimeVersion: VERSION,
    changes,
    cfg,
    log,
    access,
    credentials: new Credentials(cfg.maxIdentities),
    observeExpiry: (t) => metrics.objectExpiry.observe((t.getTime() - Date.now()) / 1000),
  });
  log.info('starting', {
    version: VERSION,
    endpoint: cfg.endpoint,
    cloud: cfg.defaultCloud,
    budget: { rps: cfg.vaultRequestsPerSecond, burst: cfg.vaultBurst, concurrency: cfg.vaultMaxConcurrency },
  });
  const { seconds, asked } = cfg.readShareWithEvents;
  if (cfg.changeQueue && seconds !== asked) {
    log.info(
      '--read-share-seconds-with-events held to at most --cache-auth-window-seconds and at least --read-share-seconds',
      {
        asked,
        applied: seconds,
        cacheAuthWindowSeconds: cfg.cacheAuthWindowSeconds,
        readShareSeconds: cfg.readShareSeconds,
      },
    );
  }
  const anyIdentity = [...cfg.nodeIdentities].filter(([, g]) => g.anyIdentity).map(([ns]) => ns);
  if (cfg.allowNodeIdentity && anyIdentity.length > 0) {
    log.warn(
      "namespaces that may use every managed identity attached to the node (--node-identity-namespaces <namespace>=*): bind each to its identities' client IDs instead",
      { namespaces: anyIdentity },
    );
  }

  const running = await serve(provider, {
    endpoint: cfg.endpoint,
    shutdownGraceMs: cfg.shutdownGraceSeconds * 1000,
    onCall: (e) => {
      metrics.grpcRequests.inc({ method: e.method, code: e.code });
      if (e.method === 'Mount') metrics.mountDuration.observe({ code: e.code }, e.durationMs / 1000);
    },
  });
  const servers: Server[] = [];
  const selfCheck = new SelfCheck(running.socket, cfg.healthzCheckIntervalSeconds * 1000, (ok) =>
    metrics.selfChecks.inc({ result: ok ? 'ok' : 'failed' }),
  );
  if (cfg.healthzPort) {
    await selfCheck.start();
    servers.push(await startHealthz(cfg.healthzPort, cfg.healthzBindAddress, cfg.healthzPath, selfCheck));
  }
  if (cfg.metricsPort) servers.push(await startMetrics(cfg.metricsPort, cfg.metricsBindAddress, metrics.registry));
  log.info('listening', {
    socket: running.socket,
    healthz: `${cfg.healthzBindAddress}:${cfg.healthzPort}`,
    metrics: `${cfg.metricsBindAddress}:${cfg.metricsPort}`,
  });

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info('stopping', { signal, inFlight: running.inFlight() });
      selfCheck.stop();
      void Promise.all([running.stop(), changes instanceof QueueChangeSource ? changes.close() : undefined]).then(
        () => {
          for (const s of servers) s.close();
          log.info('stopped');
          resolve(0);
        },
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
}

/** Key Vault's events from the change queue when one is configured; else a source that says events are off. */
async function changeSource(o: {
  cfg: Config;
  log: Logger;
  metrics: Metrics;
  access: KeyVaultAccess;
}): Promise<ChangeSource> {
  const q = o.cfg.changeQueue;
  if (!q) {
    o.log.info('change events off: no --change-queue-url; Mounts are polled only');
    return NOT_CONFIGURED;
  }
  const names = { queue: q.url, identity: describeQueueIdentity(q.identity) };
  o.log.info('change events from a storage queue, read while the manager watches', names);
  return new QueueChangeSource({
    queue: storageQueue(q.url, queueCredential(q.identity, await queueCloud(o.cfg.defaultCloud))),
    log: o.log,
    metrics: o.metrics,
    invalidate: (key) => o.access.changed(key),
    coverage: o.access.coverage,
    pollIntervalMs: o.cfg.changeQueuePollSeconds * 1000,
    names,
  });
}

main().then(
  (code) => {
    // Let winston flush before exiting.
    setTimeout(() => process.exit(code), 50);
  },
  (err: unknown) => {
    console.error(
      JSON.stringify({
        level: 'error',
        message: 'provider failed to start',
        error: errorMessage(err),
      }),
    );
    process.exit(1);
  },
);
