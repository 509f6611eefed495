import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateConfig } from '../../src/config/load.js';
import { serverOptionsOf } from '../../src/cli/serving.js';
import { createRegistryServer } from '../../src/http/server.js';
import { closeAllConnections } from '../../src/http/tls.js';
import { createSilentLogger, type Logger } from '../../src/log/logger.js';
import { openRegistry, type Registry } from '../../src/registry/registry.js';

/** A registry served in this process on a free loopback port, with a fresh data directory. */
export interface ApiServer {
  url: string;
  root: string;
  registry: Registry;
  /** Stops the server and closes the stores; `keepData` leaves the directory for a restart. */
  close(keepData?: boolean): Promise<void>;
}

export async function startApiServer(
  config: Record<string, unknown> = {},
  root?: string,
  log: Logger = createSilentLogger(),
): Promise<ApiServer> {
  const dataRoot = root ?? (await mkdtemp(join(tmpdir(), 'berth-api-')));
  const storage = { ...(config.storage as object), filesystem: { rootdirectory: dataRoot } };
  const parsed = validateConfig({ ...config, storage }, 'test');
  const registry = await openRegistry(parsed);
  const options = await serverOptionsOf(parsed, registry, log);
  const server = createRegistryServer(registry, options, log);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    root: dataRoot,
    registry,
    async close(keepData = false) {
      closeAllConnections(server);
      await new Promise((resolve) => server.close(resolve));
      await registry.close();
      if (!keepData) await rm(dataRoot, { recursive: true, force: true });
    },
  };
}
