import { parseArgs } from 'node:util';
import { loadConfig } from '../config/load.js';
import { parseDuration } from '../config/duration.js';
import { createLogger } from '../log/logger.js';
import { formatSize } from '../registry/byte-sizes.js';
import type { CollectedItem, CollectionReport } from '../registry/gc.js';
import { openRegistry } from '../registry/registry.js';

/**
 * `berth gc`: one garbage collection now, with the configuration (file and
 * `REGISTRY_*` variables) that `berth serve` reads. It runs safely beside a
 * serving registry: they share the stores, and a lease keeps a second
 * collection from starting. Each item goes to standard output as it is
 * removed, then a summary; the JSON log goes to standard error.
 */

export const gcUsage = `Usage: berth gc [options]

Removes what no manifest references any more: blobs and blob links, and with
gc.untagged (or --untagged) manifests that no tag, index or subject holds.
Runs beside a serving registry. Prints each item, then what was freed.

Options:
  -c, --config FILE      The registry's configuration (the one berth serve reads)
  -n, --dry-run          List what would be removed and the bytes; remove nothing
  --grace DURATION       Keep content younger than this (default: gc.grace, 1h);
                         0s is safe only while nothing is being pushed
  --untagged             Also remove untagged, unreferenced manifests
  --json                 Print the report as JSON instead`;

export async function runGcCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string', short: 'c' },
      'dry-run': { type: 'boolean', short: 'n', default: false },
      grace: { type: 'string' },
      untagged: { type: 'boolean' },
      json: { type: 'boolean', default: false },
    },
    allowPositionals: false,
  });
  const config = await loadConfig(values.config);
  const graceMs = parseDuration(values.grace ?? config.gc.grace);
  const log = createLogger({ level: config.log.level, fields: config.log.fields }, process.stderr);
  const registry = await openRegistry(config);
  try {
    const outcome = await registry.gc.run({
      graceMs,
      untagged: values.untagged ?? config.gc.untagged,
      dryRun: values['dry-run'],
      log,
      ...(values.json ? {} : { onItem: (item) => console.log(formatItem(item)) }),
    });
    if (!outcome.ran) throw new Error(`Garbage collection skipped: ${outcome.reason}`);
    const { report } = outcome;
    console.log(values.json ? JSON.stringify(report, null, 2) : formatSummary(report));
  } finally {
    await registry.close();
  }
}

function formatItem(item: CollectedItem): string {
  switch (item.kind) {
    case 'manifest':
      return `manifest ${item.repository}@${item.digest} (${item.mediaType})`;
    case 'link':
      return `link     ${item.repository} ${item.digest}`;
    case 'blob':
      return `blob     ${item.digest} (${formatSize(item.size)})`;
    case 'file':
      return `file     ${item.digest} (${formatSize(item.size)}, no record)`;
  }
}

export function formatSummary(report: CollectionReport): string {
  const parts = [
    count(report.manifests, 'manifest'),
    count(report.links, 'blob link'),
    count(report.blobs, 'blob'),
    count(report.files, 'unrecorded file'),
  ];
  const verb = report.dryRun ? 'Would remove' : 'Removed';
  const freed = report.dryRun ? 'would be freed' : 'freed';
  const seconds = (report.durationMs / 1000).toFixed(1);
  return `${verb} ${parts.join(', ')}: ${formatSize(report.bytesFreed)} ${freed} (${report.bytesFreed} bytes, ${seconds} s).`;
}

export function count(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
