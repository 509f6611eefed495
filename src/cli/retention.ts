import { parseArgs } from 'node:util';
import { loadConfig } from '../config/load.js';
import { createLogger, createSilentLogger } from '../log/logger.js';
import { openRegistry } from '../registry/registry.js';
import { Retention, retentionRulesOf, type RetentionReport } from '../registry/retention.js';

/**
 * `berth retention [--dry-run]`: one retention run now, by the rules of the
 * configuration, printing what it removes per repository. It runs beside a
 * serving registry: both share the stores.
 */

export const retentionUsage = `Usage: berth retention [options]

Removes tags and untagged manifests by the configuration's retention rules
and prints what it removed per repository. Garbage collection frees the bytes.

Options:
  -c, --config FILE   The registry's configuration (its rules and its stores)
  -n, --dry-run       Print what would be removed; remove nothing
  --json              Print the report as JSON
  --log               Log the run's JSON lines on standard error`;

export async function runRetentionCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string', short: 'c' },
      'dry-run': { type: 'boolean', short: 'n', default: false },
      json: { type: 'boolean', default: false },
      log: { type: 'boolean', default: false },
    },
    allowPositionals: false,
  });
  const config = await loadConfig(values.config);
  const log = values.log
    ? createLogger({ level: config.log.level, fields: config.log.fields }, process.stderr)
    : createSilentLogger();
  const registry = await openRegistry(config);
  try {
    const rules = retentionRulesOf(config);
    const retention = new Retention(registry.metadata, rules, registry.rules.immutableTags, log);
    if (!retention.hasRules) {
      console.error('berth: no retention rule removes anything: see retention.rules');
    }
    const report = await retention.run({ dryRun: values['dry-run'] });
    console.log(values.json ? JSON.stringify(report, null, 2) : formatReport(report));
    if (report.failed.length > 0) process.exitCode = 1;
  } finally {
    await registry.close();
  }
}

/** One block per repository, then a summary line. */
export function formatReport(report: RetentionReport): string {
  const lines: string[] = [];
  for (const each of report.repositories) {
    lines.push(
      `${each.repository}: ${count(each.tags.length, 'tag')}, ${count(each.manifests.length, 'manifest')}`,
    );
    for (const tag of each.tags) lines.push(`  tag ${tag.name} (${tag.digest})`);
    for (const manifest of each.manifests) {
      lines.push(`  manifest ${manifest.digest} (${manifest.mediaType})`);
    }
    if (each.skipped > 0) lines.push(`  kept ${count(each.skipped, 'change')} made since planned`);
  }
  const verb = report.dryRun ? 'Would remove' : 'Removed';
  const where = count(report.repositories.length, 'repository', 'repositories');
  lines.push(
    `${verb} ${count(report.tagsRemoved, 'tag')} and ${count(report.manifestsRemoved, 'manifest')} in ${where}.`,
  );
  for (const repository of report.failed) lines.push(`Failed in ${repository}: see the log.`);
  return lines.join('\n');
}

function count(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
