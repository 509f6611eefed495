import type { AddressInfo } from 'node:net';
import { loadConfig } from '../config/load.js';
import { startMaintenance } from '../registry/maintenance.js';
import { scheduleRetention } from './retention-schedule.js';
import { close, drain, openServing } from './serving.js';
import { version } from './version.js';
import { descriptorOf, type ServingThreads, startServingThreads, workerCount } from './workers.js';

/** `berth serve [--config FILE]`: runs the registry until SIGINT or SIGTERM. */
export async function serve(configFile: string | undefined): Promise<void> {
  const config = await loadConfig(configFile);
  const { log, registry, options, server } = await openServing(config);
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
    threads = startServingThreads(workers - 1, config, descriptorOf(server), (reason) => {
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

function onStopSignal(stop: (signal: string) => void) {
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

/** `host:port`, `[v6]:port`, or `:port` for every interface. */
export function parseAddress(addr: string): { host: string | undefined; port: number } {
  const separator = addr.lastIndexOf(':');
  const host = addr.slice(0, separator).replace(/^\[|\]$/g, '');
  const port = Number(addr.slice(separator + 1));
  return { host: host === '' ? undefined : host, port };
}
