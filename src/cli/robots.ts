import { parseArgs } from 'node:util';
import { mintRobot, robotNamePattern, validateRobotScopes } from '../auth/robots.js';
import { loadConfig } from '../config/load.js';
import { parseDuration } from '../config/duration.js';
import type { MetadataStore } from '../metadata/metadata-store.js';
import { openRegistry } from '../registry/registry.js';

/**
 * `berth robot create|list|revoke`: tokens for machines, kept in the
 * metadata store that every instance reads, so they work at once
 * everywhere. The token is printed once, on standard output.
 */

export const robotUsage = `Usage: berth robot <create|list|revoke> [NAME] [options]

  create NAME --scope SCOPE... [--expires 30d]
                 Create a robot and print its token (shown only once)
  list           List robots, their scopes and expiry
  revoke NAME    Delete a robot: its token stops working at once

Options:
  -c, --config FILE   The registry's configuration (for its metadata store)
  --scope SCOPE       repository:PATTERN:ACTIONS, e.g. 'repository:ci/*:pull,push',
                      or registry:catalog:*; may be repeated
  --expires DURATION  How long the token lives: 12h, 30d, 365d (default 30d)

Use the token as a password: docker login -u NAME --password-stdin HOST`;

export async function runRobotCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      config: { type: 'string', short: 'c' },
      scope: { type: 'string', multiple: true, default: [] },
      expires: { type: 'string', default: '30d' },
    },
    allowPositionals: true,
  });
  const [action, name] = positionals;
  if (positionals.length > 2) throw new Error(`Unexpected argument "${positionals[2]}"`);
  const config = await loadConfig(values.config);
  const registry = await openRegistry(config);
  try {
    switch (action) {
      case 'create':
        return await createRobot(
          registry.metadata,
          requireName(name),
          values.scope,
          values.expires,
        );
      case 'list':
        return await listRobots(registry.metadata);
      case 'revoke':
        return await revokeRobot(registry.metadata, requireName(name));
      default:
        throw new Error(`Unknown robot command "${action ?? ''}"\n\n${robotUsage}`);
    }
  } finally {
    await registry.close();
  }
}

function requireName(name: string | undefined): string {
  if (name === undefined) throw new Error(`A robot name is needed\n\n${robotUsage}`);
  if (!robotNamePattern.test(name)) {
    throw new Error(
      `Invalid robot name "${name}": expected lower-case letters, digits, '.', '_' or '-'`,
    );
  }
  return name;
}

async function createRobot(store: MetadataStore, name: string, scopes: string[], expires: string) {
  validateRobotScopes(scopes);
  const lifetime = parseDuration(expires);
  const { record, token } = mintRobot(name, scopes, Date.now() + lifetime);
  if (!(await store.createRobot(record))) {
    throw new Error(`A robot named "${name}" exists: revoke it first`);
  }
  console.error(
    `Robot "${name}" created, expires ${new Date(record.expiresAt).toISOString()}. ` +
      'Its token is below; it is not shown again.',
  );
  console.log(token);
}

async function listRobots(store: MetadataStore) {
  const now = Date.now();
  for (const robot of await store.listRobots()) {
    const expiry = new Date(robot.expiresAt).toISOString();
    const state = robot.expiresAt <= now ? `expired ${expiry}` : `expires ${expiry}`;
    console.log(`${robot.name}\t${state}\t${robot.scopes.join(' ')}`);
  }
}

async function revokeRobot(store: MetadataStore, name: string) {
  if (!(await store.deleteRobot(name))) throw new Error(`No robot named "${name}"`);
  console.error(`Robot "${name}" revoked`);
}
