/**
 * Durations as the configuration writes them. Apart from the schema so that
 * a serving thread, which receives the configuration already checked, can
 * read them without loading the schema and its validation library.
 */

/** Parses a duration such as `30s` into milliseconds. */
export function parseDuration(value: string): number {
  const match = /^(\d+)(ms|s|m|h|d)$/.exec(value);
  if (!match) throw new Error(`Invalid duration "${value}": expected e.g. 30s, 10m, 24h`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as string];
  return Number(match[1]) * (unit ?? 1);
}
