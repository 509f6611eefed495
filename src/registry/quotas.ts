import { RegistryError } from '../errors/registry-error.js';
import { formatBytes } from './byte-sizes.js';
import { compileRepositoryPattern, matchesAny } from './patterns.js';

/** One rule of `quotas.rules`: each repository it matches may store up to `bytes`. */
export interface QuotaRule {
  repositories: readonly string[];
  bytes: number;
}

/**
 * Storage quotas per repository. The first rule whose pattern matches a
 * repository sets its limit; a repository that no rule matches has none,
 * and its pushes skip every quota query.
 *
 * Limitation: a quota limits each repository on its own; there is no
 * quota for a group of repositories together (a team's namespace), so
 * `team-a/**` with 10GiB lets every repository under team-a/ store 10 GiB.
 */
export class Quotas {
  readonly #rules: { repositories: RegExp[]; bytes: number }[];

  constructor(rules: readonly QuotaRule[] = []) {
    this.#rules = rules.map((rule) => ({
      repositories: rule.repositories.map(compileRepositoryPattern),
      bytes: rule.bytes,
    }));
  }

  /** The repository's quota in bytes, or undefined when it has none. */
  limitFor(repository: string): number | undefined {
    return this.#rules.find((rule) => matchesAny(rule.repositories, repository))?.bytes;
  }
}

/** What a push that would pass a quota checks first: pushing what is held adds nothing. */
export function exceedsQuota(
  usage: { storedBytes: number; holds: boolean },
  size: number,
  limit: number,
): boolean {
  return !usage.holds && usage.storedBytes + size > limit;
}

/**
 * The answer to a push past a quota: 403 DENIED, as Harbor answers, which
 * `docker push` shows ("denied: ...") and does not retry; SIZE_INVALID would
 * be retried as if the transfer had failed, five times over.
 */
export function quotaError(
  repository: string,
  what: string,
  size: number,
  limit: number,
  storedBytes: number,
): RegistryError {
  return new RegistryError(
    'DENIED',
    `Quota exceeded for repository "${repository}": it stores ${formatBytes(storedBytes)} ` +
      `of its ${formatBytes(limit)} quota, and the ${what} adds ${formatBytes(size)}`,
    { detail: { repository, quotaBytes: limit, storedBytes, size } },
  );
}
