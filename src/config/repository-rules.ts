import { z } from 'zod';
import { repositoryPatternProblem, tagPatternProblem } from '../registry/patterns.js';
import { duration, size } from './units.js';

/**
 * Berth's rules per repository pattern: retention, immutable tags and
 * storage quotas (docs/configuration.md). Patterns follow one grammar,
 * src/registry/patterns.ts; a rule's `repositories` is one pattern or a
 * list of them.
 */

const repositoryPattern = z.string().superRefine((pattern, ctx) => {
  const problem = repositoryPatternProblem(pattern);
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: `"${pattern}": ${problem}` });
});

const tagPattern = z.string().superRefine((pattern, ctx) => {
  const problem = tagPatternProblem(pattern);
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: `"${pattern}": ${problem}` });
});

const repositoryPatterns = z
  .union([repositoryPattern, z.array(repositoryPattern).min(1)])
  .transform((value) => (Array.isArray(value) ? value : [value]));

/**
 * One retention rule. A tag is removed only when every condition the rule
 * sets allows it: it is not among the `keeplatest` most recently updated
 * tags, matches none of `keeptags`, and (with `removetagsolderthan`) was
 * last updated longer ago than that. A rule without `keeplatest` and
 * `removetagsolderthan` removes no tag.
 */
const retentionRuleSchema = z.strictObject({
  repositories: repositoryPatterns,
  keeplatest: z.number().int().min(0).optional(),
  keeptags: z.array(tagPattern).default([]),
  removetagsolderthan: duration.optional(),
  /** Manifests without a tag, pushed longer ago than this, that nothing still needs. */
  removeuntaggedafter: duration.optional(),
});

export const retentionSchema = z.strictObject({
  /** Scheduled runs in `berth serve`; `berth retention` runs whatever this says. */
  enabled: z.boolean().default(true),
  interval: duration.default('24h'),
  /** Scheduled runs log what they would remove and remove nothing. */
  dryrun: z.boolean().default(false),
  /** The first rule whose pattern matches a repository applies to it. */
  rules: z.array(retentionRuleSchema).default([]),
});

export const immutabilitySchema = z.strictObject({
  /** A tag matching one of these rules, once pushed, never moves to another digest. */
  tags: z
    .array(z.strictObject({ repositories: repositoryPatterns, tags: z.array(tagPattern).min(1) }))
    .default([]),
});

export const quotasSchema = z.strictObject({
  /** The first rule whose pattern matches a repository sets its quota. */
  rules: z.array(z.strictObject({ repositories: repositoryPatterns, bytes: size })).default([]),
});

export type RetentionConfig = z.infer<typeof retentionSchema>;
export type RetentionRuleConfig = RetentionConfig['rules'][number];
export type ImmutabilityConfig = z.infer<typeof immutabilitySchema>;
export type QuotasConfig = z.infer<typeof quotasSchema>;
