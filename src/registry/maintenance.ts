import { parseDuration } from '../config/duration.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import type { Registry } from './registry.js';

/**
 * The scheduled maintenance of one instance, run by the main thread of
 * `berth serve` (src/cli/serve.ts): garbage collection (`gc`) and upload purging
 * (`storage.maintenance.uploadpurging`). Several instances may schedule the
 * same task: a lease lets one run it at a time, and a collection skips when
 * another instance completed one within half its interval. Read-only mode
 * runs neither, as Distribution skips upload purging then.
 */

export interface Maintenance {
  /** Cancels the schedule and waits for a task in progress, which stops at its next batch. */
  stop(): Promise<void>;
}

/** The first run comes soon after start: a registry restarted daily would otherwise never run a daily task. */
const firstRunMs = { min: 60_000, spread: 60_000 };

export function startMaintenance(registry: Registry, config: Config, log: Logger): Maintenance {
  const controller = new AbortController();
  const tasks: Schedule[] = [];
  if (config.storage.maintenance.readonly.enabled) return { stop: () => Promise.resolve() };

  if (config.gc.enabled) {
    const intervalMs = parseDuration(config.gc.interval);
    const options = {
      graceMs: parseDuration(config.gc.grace),
      untagged: config.gc.untagged,
      dryRun: config.gc.dryrun,
      skipIfCompletedWithinMs: intervalMs / 2,
      signal: controller.signal,
      log: log.child({ task: 'gc' }),
    };
    tasks.push(schedule('gc', intervalMs, log, () => registry.gc.run(options)));
  }

  const purging = config.storage.maintenance.uploadpurging;
  if (purging.enabled) {
    const options = { ageMs: parseDuration(purging.age), dryRun: purging.dryrun };
    const purgeLog = log.child({ task: 'uploadpurging' });
    tasks.push(
      schedule('uploadpurging', parseDuration(purging.interval), log, () =>
        registry.uploadPurger.purge({ ...options, log: purgeLog }),
      ),
    );
  }

  return {
    async stop() {
      controller.abort();
      await Promise.all(tasks.map((task) => task.stop()));
    },
  };
}

interface Schedule {
  stop(): Promise<void>;
}

/** Runs `task` every `intervalMs`, never two at once; a failed run is logged and the next one comes. */
function schedule(
  name: string,
  intervalMs: number,
  log: Logger,
  task: () => Promise<{ ran: boolean; reason?: string }>,
): Schedule {
  let running: Promise<void> | undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;

  const runOnce = async () => {
    try {
      const outcome = await task();
      if (!outcome.ran) log.info({ task: name, reason: outcome.reason }, 'maintenance skipped');
    } catch (error) {
      if (!stopped) log.error({ task: name, err: error }, 'maintenance failed');
    }
  };
  const next = (delayMs: number) => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = runOnce().finally(() => next(intervalMs));
    }, delayMs).unref();
  };

  next(Math.min(intervalMs, firstRunMs.min + Math.random() * firstRunMs.spread));
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
