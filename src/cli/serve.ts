import type { AddressInfo } from 'node:net';
import { loadConfig } from '../config/load.js';
import { type Config } from '../config/schema.js';
import type { HttpOptions } from '../http/context.js';
import { createRegistryServer } from '../http/server.js';
import { createLogger, type Logger } from '../log/logger.js';
import { openRegistry } from '../registry/registry.js';
import { version } from './version.js';

/** `berth serve [--config FILE]`: runs the registry until SIGINT or SIGTERM. */
export async function serve(configFile: string | undefined): Promise<void> {
  const config = await loadConfig(configFile);
  const log = createLogger({ level: config.log.level, fields: config.log.fields });
  const registry = await openRegistry(config);
  const server = createRegistryServer(registry, httpOptionsOf(config), log);
  const { host, port } = parseAddress(config.http.addr);

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, resolve);
  });
  const address = server.address() as AddressInfo;
  log.info(
    {
      address: `${address.address}:${address.port}`,
      storage: registry.blobStore.description,
      metadata: config.metadata.postgres ? 'postgres' : 'sqlite',
      version,
    },
    'berth is serving',
  );

  const stop = (signal: string) => {
    log.info({ signal }, 'shutting down');
    server.close(() => void registry.close().finally(() => log.flush(() => process.exit(0))));
    server.closeIdleConnections();
    setTimeout(() => process.exit(0), 10_000).unref();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

export function httpOptionsOf(config: Config): HttpOptions {
  return {
    deleteEnabled: config.storage.delete.enabled,
    readOnly: config.storage.maintenance.readonly.enabled,
    manifestMaxBytes: config.limits.manifestbytes,
    baseUrl: config.http.host?.replace(/\/$/, ''),
    headers: config.http.headers,
  };
}

/** `host:port`, `[v6]:port`, or `:port` for every interface. */
export function parseAddress(addr: string): { host: string | undefined; port: number } {
  const separator = addr.lastIndexOf(':');
  const host = addr.slice(0, separator).replace(/^\[|\]$/g, '');
  const port = Number(addr.slice(separator + 1));
  return { host: host === '' ? undefined : host, port };
}

export type { Logger };
