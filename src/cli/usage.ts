import { parseArgs } from 'node:util';
import { loadConfig } from '../config/load.js';
import type { RegistryUsage, RepositoryUsage } from '../metadata/metadata-store.js';
import { formatBytes, formatSize } from '../registry/byte-sizes.js';
import { openRegistry } from '../registry/registry.js';

/**
 * `berth usage [REPOSITORY] [--json]`: bytes stored per repository, unique
 * to it (what deleting it would free) and shared with others, and the
 * registry's total, each digest counted once.
 */

export const usageUsage = `Usage: berth usage [REPOSITORY] [options]

Prints the bytes each repository stores, the bytes unique to it (what deleting
it would free) and the bytes it shares with others, then the registry's total.

Options:
  -c, --config FILE   The registry's configuration (for its stores)
  --json              Print JSON, sizes in bytes`;

export async function runUsageCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    options: { config: { type: 'string', short: 'c' }, json: { type: 'boolean', default: false } },
    allowPositionals: true,
  });
  if (positionals.length > 1) throw new Error(`Unexpected argument "${positionals[1]}"`);
  const [repository] = positionals;
  const config = await loadConfig(values.config);
  const registry = await openRegistry(config);
  try {
    if (repository === undefined) {
      const usage = await registry.metadata.measureUsage();
      console.log(values.json ? JSON.stringify(usage, null, 2) : formatRegistryUsage(usage));
      return;
    }
    const usage = await registry.metadata.measureRepositoryUsage(repository);
    if (!usage) throw new Error(`Repository "${repository}" is unknown or holds nothing`);
    console.log(values.json ? JSON.stringify(usage, null, 2) : formatTable([usage]));
  } finally {
    await registry.close();
  }
}

export function formatRegistryUsage(usage: RegistryUsage): string {
  const { total } = usage;
  return [
    formatTable(usage.repositories),
    '',
    `Total: ${formatBytes(total.storedBytes)} in ${total.objects} blobs and manifests ` +
      `of ${total.repositories} repositories, ${formatBytes(total.sharedBytes)} of it shared`,
  ].join('\n');
}

function formatTable(rows: RepositoryUsage[]): string {
  const header = ['REPOSITORY', 'STORED', 'UNIQUE', 'SHARED', 'OBJECTS'];
  const cells = rows.map((row) => [
    row.repository,
    formatSize(row.storedBytes),
    formatSize(row.uniqueBytes),
    formatSize(row.sharedBytes),
    String(row.objects),
  ]);
  const widths = header.map((title, i) =>
    Math.max(title.length, ...cells.map((c) => c[i]!.length)),
  );
  return [header, ...cells]
    .map((line) =>
      line
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
