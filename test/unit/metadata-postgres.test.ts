import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { access, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';

import pg from 'pg';

import { openPostgresMetadataStore } from '../../src/metadata/sql/postgres.js';
import { describeMetadataStore, digestOf } from './metadata-store-suite.js';

/**
 * Runs the metadata store suite on a real PostgreSQL that shared/services.sh
 * starts on a free port. Without the script or a server that starts, the
 * tests fail under CI and are skipped, with the reason, elsewhere.
 */

const run = promisify(execFile);

/**
 * shared/ lies beside the repository; this file runs from dist/test/unit/.
 * Run through bash: a read-only copy of shared/ may have lost its modes.
 */
const SERVICES_SH = fileURLToPath(new URL('../../../../shared/services.sh', import.meta.url));

interface Server {
  dir: string;
  /** The database the tests make their schemas in. */
  url: URL;
}

let server: Server | undefined;
let skipReason: string | undefined;
let schemas = 0;

before(async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-postgres-'));
  try {
    server = { dir, url: await createTestDatabase(await startPostgres(dir)) };
  } catch (error) {
    await stopPostgres(dir);
    const reason = `PostgreSQL did not start: ${describeFailure(error)}`;
    if (process.env.CI) throw new Error(`${reason} (CI needs it)`, { cause: error });
    skipReason = reason;
  }
});

after(async () => {
  if (server) await stopPostgres(server.dir);
});

/**
 * Starts a server and returns the URL of its maintenance database. Tries a
 * few ports: another process may take the free one before the server does.
 */
async function startPostgres(dir: string): Promise<URL> {
  await access(SERVICES_SH);
  for (let attempt = 1; ; attempt++) {
    try {
      return await startPostgresOn(dir, await findFreePort());
    } catch (error) {
      if (attempt === 3) throw error;
    }
  }
}

async function startPostgresOn(dir: string, port: number): Promise<URL> {
  const args = [SERVICES_SH, 'start', 'postgres', dir, String(port)];
  // The first start on a fresh machine installs PostgreSQL with apt-get.
  const { stdout } = await run('bash', args, { timeout: 10 * 60_000 });
  const line = stdout.split('\n').find((entry) => entry.startsWith('POSTGRES_URL='));
  assert.ok(line, `services.sh printed no POSTGRES_URL: ${stdout}`);
  const url = new URL(line.slice('POSTGRES_URL='.length));
  url.pathname = '/postgres';
  return url;
}

/** The last line services.sh wrote to stderr says what went wrong. */
function describeFailure(error: unknown): string {
  const stderr = (error as { stderr?: unknown }).stderr;
  const lines = typeof stderr === 'string' ? stderr.trim().split('\n') : [];
  return lines.at(-1) ?? (error as Error).message;
}

async function stopPostgres(dir: string) {
  await run('bash', [SERVICES_SH, 'stop', dir]).catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
}

/** Binds port 0 to let the system choose a free port, then frees it for the server. */
function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() =>
        typeof address === 'object' && address
          ? resolve(address.port)
          : reject(new Error('No port')),
      );
    });
  });
}

/**
 * The database for the tests. Its collation is ICU's root locale where the
 * server has ICU, which sorts `a` before `A` and ignores punctuation: names
 * come back byte-wise only because the store asks for "C" itself.
 */
async function createTestDatabase(admin: URL): Promise<URL> {
  await withClient(admin, async (client) => {
    await client
      .query(`CREATE DATABASE berth_test TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'und'`)
      .catch(() => client.query('CREATE DATABASE berth_test'));
  });
  const url = new URL(admin);
  url.pathname = '/berth_test';
  return url;
}

/**
 * A new, empty schema and the URL that makes it the store's: PostgreSQL's
 * `search_path` option, passed in the URL as every deployment may. A schema
 * per test is much cheaper than a database per test.
 */
async function createSchema(): Promise<{ url: string; drop: () => Promise<void> }> {
  assert.ok(server, 'PostgreSQL is not running');
  const { url: database } = server;
  const name = `test_${++schemas}`;
  await withClient(database, (client) => client.query(`CREATE SCHEMA ${name}`));
  const url = new URL(database);
  url.searchParams.set('options', `-c search_path=${name}`);
  const drop = () => withClient(database, (client) => client.query(`DROP SCHEMA ${name} CASCADE`));
  return { url: url.href, drop };
}

async function withClient(url: URL, work: (client: pg.Client) => Promise<unknown>) {
  const client = new pg.Client({ connectionString: url.href });
  await client.connect();
  try {
    await work(client);
  } finally {
    await client.end();
  }
}

describeMetadataStore(
  'PostgreSQL',
  async () => {
    const database = await createSchema();
    const store = await openPostgresMetadataStore(database.url);
    const cleanup = async () => {
      await store.close();
      await database.drop();
    };
    return { store, cleanup };
  },
  { skipReason: () => skipReason },
);

describe('metadata store on PostgreSQL, shared by several instances', () => {
  it('metadata: stores on one database migrate at the same time', async (t) => {
    if (skipReason !== undefined) return t.skip(skipReason);
    const database = await createSchema();
    const stores = await Promise.all([1, 2, 3].map(() => openPostgresMetadataStore(database.url)));
    try {
      await Promise.all(stores.map((store) => store.migrate()));
      await stores[0]?.linkBlob('app', { digest: digestOf('layer'), size: 1 });
      assert.equal(await stores[2]?.repositoryExists('app'), true);
    } finally {
      await Promise.all(stores.map((store) => store.close()));
      await database.drop();
    }
  });
});
