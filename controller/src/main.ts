#!/usr/bin/env node
// The manager: syncs SecretSync objects into Secrets through providers on unix sockets.
import { errorStack } from '@secret-store-sync/proto';
import { CoordinationV1Api, KubeConfig } from '@kubernetes/client-node';
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { ConfigError, parseConfig, usage } from './config.js';
import { Controller } from './controller.js';
import { Hasher } from './hash.js';
import { KubeClients } from './kube-client.js';
import { fixedAnswer, metricsRoute, startHttp } from './http.js';
import { LeaderElector, timings } from './leader.js';
import { detectSchema } from './schema.js';
import { createLogger } from './log.js';
import { createMetrics } from './metrics.js';

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
    console.log(JSON.stringify({ name: 'secret-store-sync-manager', version: VERSION }));
    return 0;
  }
  if (parsed === 'help') {
    console.log(usage());
    return 0;
  }
  const cfg = parsed;
  const log = createLogger(cfg.logLevel);
  const metrics = createMetrics();
  const kc = new KubeConfig();
  if (cfg.kubeconfig) kc.loadFromFile(cfg.kubeconfig);
  else kc.loadFromDefault();
  const { hasher, generated } = Hasher.fromFile(cfg.hashKeyFile);
  if (generated)
    log.warn(
      'no --hash-key-file: using a key for this process only; every SecretSync is rewritten once after a restart',
    );

  let elector: LeaderElector | undefined;
  // Without election the manager is the only writer; with it, writes pass the elector's fence.
  const clients = new KubeClients(kc, {
    timeoutMs: cfg.apiTimeoutSeconds * 1000,
    writeBudgetMs: () => (elector ? elector.writeBudgetMs() : Infinity),
  });
  const controller = new Controller({ kc, clients, cfg, hasher, log, metrics });
  log.info('starting', {
    version: VERSION,
    namespace: cfg.namespace || '(all)',
    controllerName: cfg.controllerName,
    workers: cfg.workers,
    rotationIntervalSeconds: cfg.rotationIntervalSeconds,
    providerDir: cfg.providerDir,
    providerTokenAudiences: Object.fromEntries(cfg.providerTokenAudiences),
  });
  let ready = false;
  const servers: Server[] = [];
  if (cfg.healthPort) {
    const [ok, notReady] = [fixedAnswer(200, 'ok'), fixedAnswer(503, 'caches not synced')];
    servers.push(
      await startHttp(cfg.healthPort, cfg.healthBindAddress, {
        '/healthz': () => ok,
        '/readyz': () => (ready ? ok : notReady),
      }),
    );
  }
  if (cfg.metricsPort)
    servers.push(
      await startHttp(cfg.metricsPort, cfg.metricsBindAddress, { '/metrics': metricsRoute(metrics.registry) }),
    );

  await detectSchema(clients, log);
  await controller.watch();
  ready = true;
  if (cfg.leaderElect) {
    let started = false;
    // Its own connection pool with a short deadline: a renewal must fail fast, not outlive the lease.
    const leaseClients = new KubeClients(kc, { timeoutMs: timings(cfg.leaseDurationSeconds).retryPeriodMs * 2 });
    elector = new LeaderElector(
      leaseClients.make(CoordinationV1Api),
      {
        namespace: cfg.leaderElectionNamespace,
        name: cfg.leaderElectionId,
        identity: `${cfg.podName}_${cfg.podUid || process.pid}`,
        leaseDurationSeconds: cfg.leaseDurationSeconds,
      },
      {
        log,
        onChange: (leading) => {
          metrics.leader.set(leading ? 1 : 0);
          log.info(leading ? 'leading' : 'not leading', { lease: cfg.leaderElectionId });
          if (leading && !started) {
            started = true;
            controller.lead();
          }
          if (!leading) controller.stepDown();
        },
      },
    );
    elector.start();
  } else {
    metrics.leader.set(1);
    controller.lead();
  }
  log.info('running', { leaderElection: cfg.leaderElect });

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info('stopping', { signal, ...controller.queueDepths() });
      // In-flight reconciles finish (bounded) while the lease is still renewed; then it is handed back.
      void controller.stop(cfg.shutdownGraceSeconds * 1000).then(async () => {
        await elector?.release();
        for (const s of servers) s.close();
        clients.close();
        log.info('stopped');
        resolve(0);
      });
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
}

main().then(
  (code) => setTimeout(() => process.exit(code), 50),
  (err: unknown) => {
    console.error(JSON.stringify({ level: 'error', message: 'manager failed', error: errorStack(err) }));
    process.exit(1);
  },
);
