import { parseDuration } from '../config/duration.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import type { MetadataStore } from '../metadata/metadata-store.js';
import type { ImmutableTags } from './immutable-tags.js';
import { compileRepositoryPattern, compileTagPattern, matchesAny } from './patterns.js';
import { planRetention, type RetentionRule } from './retention-plan.js';

/**
 * Retention: removes tags and untagged manifests by rule (configuration
 * `retention`), on a schedule in `berth serve` and on demand with `berth
 * retention`. It removes metadata only, through the store's guarded deletes,
 * which check again that nothing took the tag or needs the manifest since
 * the plan was made; garbage collection frees the bytes afterwards.
 *
 * Limitation: every `berth serve` instance sharing one database runs its own
 * schedule. Runs that overlap are safe (each delete is checked as it is
 * made) but repeat the listing work; give one instance the schedule
 * (`retention.enabled: false` on the others) when that matters.
 */

export interface RemovedTag {
  name: string;
  digest: string;
}

export interface RemovedManifest {
  digest: string;
  mediaType: string;
}

/** What a run removed from one repository, or would remove in a dry run. */
export interface RepositoryRetention {
  repository: string;
  tags: RemovedTag[];
  manifests: RemovedManifest[];
  /** Planned removals left in place because a client changed them meanwhile. */
  skipped: number;
}

export interface RetentionReport {
  dryRun: boolean;
  /** Repositories with something removed, by name. */
  repositories: RepositoryRetention[];
  tagsRemoved: number;
  manifestsRemoved: number;
  /** Repositories whose run failed (logged); the others went on. */
  failed: string[];
}

export interface RetentionRunOptions {
  dryRun?: boolean;
  /** The time rules measure ages against; now by default. */
  now?: number;
}

const pageSize = 1000;

export class Retention {
  readonly #metadata: MetadataStore;
  readonly #rules: RetentionRule[];
  readonly #immutableTags: ImmutableTags;
  readonly #log: Logger;

  constructor(
    metadata: MetadataStore,
    rules: RetentionRule[],
    immutableTags: ImmutableTags,
    log: Logger,
  ) {
    this.#metadata = metadata;
    this.#rules = rules;
    this.#immutableTags = immutableTags;
    this.#log = log;
  }

  /** True when some rule may remove something. */
  get hasRules(): boolean {
    return this.#rules.some(removesAnything);
  }

  /** One run over every repository; each removal is logged, one line per repository. */
  async run(options: RetentionRunOptions = {}): Promise<RetentionReport> {
    const dryRun = options.dryRun ?? false;
    const now = options.now ?? Date.now();
    const started = Date.now();
    const report: RetentionReport = {
      dryRun,
      repositories: [],
      tagsRemoved: 0,
      manifestsRemoved: 0,
      failed: [],
    };

    for await (const repository of this.#repositories()) {
      const rule = this.#rules.find((each) => matchesAny(each.repositories, repository));
      if (!rule || !removesAnything(rule)) continue;
      try {
        const result = await this.#apply(repository, rule, now, dryRun);
        if (result.tags.length + result.manifests.length === 0) continue;
        report.repositories.push(result);
        report.tagsRemoved += result.tags.length;
        report.manifestsRemoved += result.manifests.length;
      } catch (error) {
        this.#log.error({ err: error, repository }, 'retention failed for a repository');
        report.failed.push(repository);
      }
    }

    const { tagsRemoved, manifestsRemoved, failed } = report;
    const summary = { dryRun, tagsRemoved, manifestsRemoved, failed: failed.length };
    this.#log.info({ ...summary, durationMs: Date.now() - started }, 'retention run');
    return report;
  }

  async #apply(repository: string, rule: RetentionRule, now: number, dryRun: boolean) {
    const content = await this.#metadata.listRepositoryContent(repository);
    const isProtected = (tag: string) => this.#immutableTags.isImmutable(repository, tag);
    const plan = planRetention(content, rule, { now, isProtected });
    const result: RepositoryRetention = { repository, tags: [], manifests: [], skipped: 0 };

    for (const tag of plan.tags) {
      if (dryRun || (await this.#metadata.deleteTagIfUnchanged(repository, tag))) {
        result.tags.push({ name: tag.name, digest: tag.digest });
      } else result.skipped++;
    }
    const pushedBefore = now - (rule.removeUntaggedAfterMs ?? 0);
    for (const node of plan.manifests) {
      const { digest, mediaType } = node;
      if (
        dryRun ||
        (await this.#metadata.deleteUntaggedManifest(repository, digest, pushedBefore))
      ) {
        result.manifests.push({ digest, mediaType });
      } else result.skipped++;
    }

    if (result.tags.length + result.manifests.length + result.skipped > 0) {
      const message = dryRun ? 'retention would remove' : 'retention removed';
      this.#log.info({ ...result, dryRun }, message);
    }
    return result;
  }

  async *#repositories(): AsyncGenerator<string> {
    let last: string | undefined;
    for (;;) {
      const page = await this.#metadata.listRepositories({
        limit: pageSize,
        ...(last === undefined ? {} : { last }),
      });
      yield* page;
      if (page.length < pageSize) return;
      last = page.at(-1);
    }
  }
}

function removesAnything(rule: RetentionRule): boolean {
  return (
    rule.keepLatest !== undefined ||
    rule.removeTagsOlderThanMs !== undefined ||
    rule.removeUntaggedAfterMs !== undefined
  );
}

/** The configuration's rules, compiled. */
export function retentionRulesOf(config: Config): RetentionRule[] {
  return config.retention.rules.map((rule) => ({
    repositories: rule.repositories.map(compileRepositoryPattern),
    keepLatest: rule.keeplatest,
    keepTags: rule.keeptags.map(compileTagPattern),
    removeTagsOlderThanMs: optionalDuration(rule.removetagsolderthan),
    removeUntaggedAfterMs: optionalDuration(rule.removeuntaggedafter),
  }));
}

function optionalDuration(value: string | undefined): number | undefined {
  return value === undefined ? undefined : parseDuration(value);
}
