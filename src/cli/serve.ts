import type { AddressInfo } from 'node:net';
import { openAccessControl } from '../auth/open-access-control.js';
import { loadConfig } from '../config/load.js';
import { type Config } from '../config/schema.js';
import type { HttpOptions } from '../http/context.js';
import { createRegistryServer } from '../http/server.js';
import { closeIdleConnections, readTlsOptions, type RegistryServer } from '../http/tls.js';
import { createLogger, type Logger } from '../log/logger.js';
import { startMaintenance } from '../registry/maintenance.js';
import { openRegistry, type Registry } from '../registry/registry.js';
import { scheduleRetention } from './retention-schedule.js';
import { version } from './version.js';
import { isWorker, receiveListeningSocket, startWorkers, workerCount } from './workers.js';

/** `berth serve [--config FILE]`: runs the registry until SIGINT or SIGTERM. */
export async function serve(configFile: string | undefined): Promise<void> {
  const config = await loadConfig(configFile);
  const log = createLogger({ level: config.log.level, fields: config.log.fields });
  const registry = await openRegistry(config);
  const options = await serverOptionsOf(config, registry, log);
  const server = createRegistryServer(registry, options, log);
  if (isWorker()) return serveAsWorker(server, registry, log);

  const { host, port } = parseAddress(config.http.addr);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, resolve);
  });
  const workers = workerCount(config);
  const stopWorkers = startWorkers(workers - 1, server, log);
  const stopRetention = scheduleRetention(registry, config, log);
  const maintenance = startMaintenance(registry, config, log);
  const address = server.address() as AddressInfo;
  log.info(
    {
      address: `${address.address}:${address.port}`,
      storage: registry.blobStore.description,
      metadata: config.metadata.postgres ? 'postgres' : 'sqlite',
      workers,
      tls: options.tls ? (options.tls.http2 ? 'http/2 and http/1.1' : 'http/1.1') : undefined,
      auth: options.auth?.challenge.scheme,
      version,
    },
    'berth is serving',
  );
  onStopSignal((signal) => {
    log.info({ signal }, 'shutting down');
    stopWorkers();
    stopRetention();
    void shutDown(server, registry, log, maintenance.stop());
  });
}

/** A worker serves connections accepted from the first process's listening socket. */
async function serveAsWorker(server: RegistryServer, registry: Registry, log: Logger) {
  const listening = await receiveListeningSocket();
  listening.on('connection', (socket) => server.emit('connection', socket));
  const stop = () => {
    listening.close();
    void shutDown(server, registry, log);
  };
  process.once('disconnect', stop);
  onStopSignal(stop);
}

/** Finishes the requests in flight and the maintenance under way (at most 10 s), then closes the stores. */
async function shutDown(
  server: RegistryServer,
  registry: Registry,
  log: Logger,
  maintenanceStopped: Promise<void> = Promise.resolve(),
) {
  setTimeout(() => process.exit(0), 10_000).unref();
  closeIdleConnections(server);
  await new Promise((resolve) => server.close(resolve));
  await maintenanceStopped;
  await registry.close();
  log.flush(() => process.exit(0));
}

function onStopSignal(stop: (signal: string) => void) {
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

/** The HTTP options, with access control and TLS set up as the configuration says. */
export async function serverOptionsOf(
  config: Config,
  registry: Registry,
  log: Logger,
): Promise<HttpOptions> {
  return {
    ...httpOptionsOf(config),
    auth: await openAccessControl(config, registry.metadata, log),
    tls: await readTlsOptions(config),
  };
}

export function httpOptionsOf(config: Config): HttpOptions {
  return {
    deleteEnabled: config.storage.delete.enabled,
    readOnly: config.storage.maintenance.readonly.enabled,
    manifestMaxBytes: config.limits.manifestbytes,
    baseUrl: config.http.host?.replace(/\/$/, ''),
    headers: config.http.headers,
    accessLog: !config.log.accesslog.disabled,
  };
}

/** `host:port`, `[v6]:port`, or `:port` for every interface. */
export function parseAddress(addr: string): { host: string | undefined; port: number } {
  const separator = addr.lastIndexOf(':');
  const host = addr.slice(0, separator).replace(/^\[|\]$/g, '');
  const port = Number(addr.slice(separator + 1));
  return { host: host === '' ? undefined : host, port };
}
