import { parseDuration } from '../config/duration.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import type { Registry } from '../registry/registry.js';
import { Retention, retentionRulesOf } from '../registry/retention.js';

/** The longest wait before the first scheduled run, as Distribution's upload purger waits. */
const maxFirstDelayMs = 60 * 60_000;

/**
 * Runs retention every `retention.interval` in the main thread of `berth
 * serve` (serving threads run no schedule). The first run comes at a random moment
 * within the first hour, or the first interval when shorter: a restart does
 * not remove anything at once, and instances sharing a database spread
 * their runs. A run still going when the next is due makes that one skip.
 * Returns the function that stops the schedule.
 */
export function scheduleRetention(registry: Registry, config: Config, log: Logger): () => void {
  const retention = new Retention(
    registry.metadata,
    retentionRulesOf(config),
    registry.rules.immutableTags,
    log,
  );
  if (!config.retention.enabled || !retention.hasRules) return () => undefined;

  const intervalMs = parseDuration(config.retention.interval);
  const dryRun = config.retention.dryrun;
  let running = false;
  const run = () => {
    if (running) return;
    running = true;
    retention
      .run({ dryRun })
      .catch((error: unknown) => log.error({ err: error }, 'retention run failed'))
      .finally(() => (running = false));
  };

  let interval: NodeJS.Timeout | undefined;
  const firstDelay = Math.random() * Math.min(intervalMs, maxFirstDelayMs);
  const first = setTimeout(() => {
    run();
    interval = setInterval(run, intervalMs).unref();
  }, firstDelay).unref();
  log.info({ interval: config.retention.interval, dryRun }, 'retention scheduled');
  return () => {
    clearTimeout(first);
    clearInterval(interval);
  };
}
