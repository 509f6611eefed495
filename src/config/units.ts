import { z } from 'zod';

/** The configuration's units: durations and sizes, each with the message a bad value gets. */

export const duration = z
  .string()
  .regex(/^\d+(ms|s|m|h|d)$/, 'expected a duration such as 500ms, 30s, 10m, 24h or 7d');

/** Bytes per unit: SI units count in thousands, IEC units (`KiB`...) in 1024s. */
const sizeUnits: Record<string, number> = {
  B: 1,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
  TiB: 1024 ** 4,
};

const sizePattern = /^(\d+(?:\.\d+)?) ?(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$/;
const sizeMessage = 'expected a size such as 500MB, 10GiB or a whole number of bytes';

/** Parses `500MB`, `10GiB`, `1.5 TB`; undefined when the text is not a size. */
export function parseSize(text: string): number | undefined {
  const match = sizePattern.exec(text.trim());
  if (!match) return undefined;
  const bytes = Math.floor(Number(match[1]) * (sizeUnits[match[2] as string] ?? 1));
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/** A size in bytes: a whole number, or a number and a unit (`500MB`, `10GiB`). */
export const size = z.union(
  [
    z.number().int().min(0),
    z.string().transform((text, ctx) => {
      const bytes = parseSize(text);
      if (bytes === undefined) ctx.addIssue({ code: 'custom', message: sizeMessage });
      return bytes ?? 0;
    }),
  ],
  { message: sizeMessage },
);
