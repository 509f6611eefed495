import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { openAccessControl } from '../auth/open-access-control.js';
import type { Config } from '../config/schema.js';
import type { HttpOptions } from '../http/context.js';
import { createRegistryServer } from '../http/server.js';
import { closeIdleConnections, readTlsOptions, type RegistryServer } from '../http/tls.js';
import { createLogger, type Logger } from '../log/logger.js';
import { watchHeapGrowth } from '../registry/heap-growth.js';
import { openRegistry, type Registry } from '../registry/registry.js';

/**
 * What every serving thread sets up from a checked configuration: the main
 * thread (serve.ts) and the others (serving-thread.ts). Nothing here loads
 * the configuration file, so the other threads load neither the YAML
 * parser nor the schema.
 */

export interface Serving {
  log: Logger;
  registry: Registry;
  options: HttpOptions;
  server: RegistryServer;
}

/** Opens the stores and makes the HTTP server, not yet listening. */
export async function openServing(config: Config): Promise<Serving> {
  watchHeapGrowth();
  const log = createLogger({ level: config.log.level, fields: config.log.fields });
  const registry = await openRegistry(config);
  const options = await serverOptionsOf(config, registry, log);
  const server = createRegistryServer(registry, options, log);
  return { log, registry, options, server };
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

/** Stops accepting, then waits for the connections in flight to finish. */
export async function close(server: RegistryServer): Promise<void> {
  closeIdleConnections(server);
  await new Promise((resolve) => server.close(resolve));
}

/**
 * Like `close`, for a server on a shared descriptor: turns new connections
 * away instead of closing the listening socket, then waits until the
 * connections in flight have finished their requests.
 */
export async function drain(server: RegistryServer): Promise<void> {
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
