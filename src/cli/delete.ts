import { parseArgs } from 'node:util';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { createLogger } from '../log/logger.js';
import { parseReference, requireRepositoryName } from '../registry/names.js';
import { openRegistry } from '../registry/registry.js';
import { count } from './gc.js';

/**
 * `berth repo delete NAME` and `berth manifest delete NAME:TAG|NAME@DIGEST`:
 * the deletes of the administrative endpoints, from the registry's machine,
 * beside a serving registry. They obey `storage.delete.enabled`; read-only
 * mode is what the registry lets its clients do and does not apply here.
 * The bytes go at the next garbage collection (`berth gc`).
 */

export const repoUsage = `Usage: berth repo delete NAME [options]

Deletes a repository: its tags, manifests (referrers included), blob links and
upload sessions. It leaves the catalog; berth gc then frees its blobs.

Options:
  -c, --config FILE   The registry's configuration
  --referrers         Accepted for symmetry: every manifest of it goes anyway`;

export const manifestUsage = `Usage: berth manifest delete NAME:TAG | NAME@DIGEST [options]

Deletes a tag, or a manifest with the tags on it. An index that lists the
manifest must be deleted first.

Options:
  -c, --config FILE   The registry's configuration
  --referrers         Also delete the manifests whose subject it is (signatures,
                      SBOMs), and theirs, recursively`;

const options = {
  config: { type: 'string', short: 'c' },
  referrers: { type: 'boolean', default: false },
} as const;

export async function runRepoCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args, options, allowPositionals: true });
  const [verb, name, ...extra] = positionals;
  if (verb !== 'delete' || name === undefined || extra.length > 0) throw new Error(repoUsage);
  requireRepositoryName(name);
  const config = await openConfig(values.config);
  const log = logOf(config);
  const registry = await openRegistry(config);
  try {
    const deleted = await registry.repositories.delete(name);
    log.info({ action: 'delete-repository', repository: name, ...deleted }, 'deleted');
    const what = [
      count(deleted.manifests, 'manifest'),
      count(deleted.tags, 'tag'),
      count(deleted.blobLinks, 'blob link'),
      count(deleted.uploads.length, 'upload session'),
    ];
    console.log(`Deleted repository ${name}: ${what.join(', ')}. Run berth gc to free its blobs.`);
  } finally {
    await registry.close();
  }
}

export async function runManifestCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args, options, allowPositionals: true });
  const [verb, target, ...extra] = positionals;
  if (verb !== 'delete' || target === undefined || extra.length > 0) {
    throw new Error(manifestUsage);
  }
  const { name, reference } = splitTarget(target);
  const config = await openConfig(values.config);
  const log = logOf(config);
  const registry = await openRegistry(config);
  try {
    const deleted = await registry.manifests.delete(name, reference, {
      referrers: values.referrers,
    });
    log.info({ action: 'delete-manifest', repository: name, target, ...deleted }, 'deleted');
    for (const digest of deleted.manifests) console.log(`manifest ${name}@${digest}`);
    const what = `${count(deleted.manifests.length, 'manifest')}, ${count(deleted.tags, 'tag')}`;
    console.log(`Deleted ${what}. Run berth gc to free the bytes.`);
  } finally {
    await registry.close();
  }
}

/** `name@digest`, or `name:tag` (a name has no colon: it names no registry host here). */
function splitTarget(target: string) {
  const at = target.indexOf('@');
  const colon = target.lastIndexOf(':');
  const split = at >= 0 ? at : colon;
  if (split <= 0) throw new Error(`Expected NAME:TAG or NAME@DIGEST, not "${target}"`);
  const name = requireRepositoryName(target.slice(0, split));
  return { name, reference: parseReference(target.slice(split + 1)) };
}

async function openConfig(file: string | undefined): Promise<Config> {
  const config = await loadConfig(file);
  if (!config.storage.delete.enabled) {
    throw new Error('Deletes are disabled: storage.delete.enabled is false');
  }
  return config;
}

function logOf(config: Config) {
  return createLogger({ level: config.log.level, fields: config.log.fields }, process.stderr);
}
