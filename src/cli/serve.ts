import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
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
import {
  descriptorOf,
  listeningDescriptor,
  reportToMainThread,
  type ServingThreads,
  startServingThreads,
  workerCount,
} from './workers.js';

/** `berth serve [--config FILE]`: runs the registry until SIGINT or SIGTERM. */
export async function serve(configFile: string | undefined): Promise<void> {
  const config = await loadConfig(configFile);
  const log = createLogger({ level: config.log.level, fields: config.log.fields });
  const registry = await openRegistry(config);
  const options = await serverOptionsOf(config, registry, log);
  const server = createRegistryServer(registry, options, log);
  const descriptor = listeningDescriptor();
  if (descriptor !== undefined) return serveAsThread(server, descriptor, registry, log);

  const { host, port } = parseAddress(config.http.addr);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, resolve);
  });
  const workers = workerCount(config);
  let threads: ServingThreads | undefined;
  let stopping = false;
  const stopRetention = scheduleRetention(registry, config, log);
  const maintenance = startMaintenance(registry, config, log);

  /** Finishes the requests in flight and the maintenance under way (at most 10 s), then exits. */
  const stop = (code: number) => {
    if (stopping) return;
    stopping = true;
    stopRetention();
    setTimeout(() => process.exit(code), 10_000).unref();
    const serversDone = threads ? Promise.all([threads.drain(), drain(server)]) : close(server);
    void Promise.all([serversDone, maintenance.stop()])
      .then(() => registry.close())
      .finally(() => log.flush(() => process.exit(code)));
  };
  onStopSignal((signal) => {
    log.info({ signal }, 'shutting down');
    stop(0);
  });

  if (workers > 1) {
    threads = startServingThreads(workers - 1, descriptorOf(server), (reason) => {
      if (stopping) return;
      log.fatal({ reason }, 'stopping the process');
      stop(1);
    });
    await threads.listening;
  }
  if (stopping) return;
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
}

/**
 * A serving thread accepts from the main thread's listening descriptor and
 * never closes it (workers.ts says why); asked to stop, it drains.
 */
async function serveAsThread(
  server: RegistryServer,
  descriptor: number,
  registry: Registry,
  log: Logger,
) {
  await new Promise<void>((resolve) => server.listen({ fd: descriptor }, resolve));
  const stop = async () => {
    await drain(server);
    await registry.close();
    await new Promise((resolve) => log.flush(resolve));
  };
  reportToMainThread(stop, log);
}

/** Stops accepting, then waits for the connections in flight to finish. */
async function close(server: RegistryServer): Promise<void> {
  closeIdleConnections(server);
  await new Promise((resolve) => server.close(resolve));
}

/**
 * Like `close`, for a server on a shared descriptor: turns new connections
 * away instead of closing the listening socket, then waits until the
 * connections in flight have finished their requests.
 */
async function drain(server: RegistryServer): Promise<void> {
  server.on('connection', (socket: Socket) => socket.destroy());
  for (;;) {
    closeIdleConnections(server);
    const open = await new Promise<number>((resolve) =>
      server.getConnections((error, count) => resolve(error ? 0 : count)),
    );
    if (open === 0) return;
    await sleep(50);
  }
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
