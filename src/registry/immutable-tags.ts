import { RegistryError } from '../errors/registry-error.js';
import { compileRepositoryPattern, compileTagPattern, matchesAny } from './patterns.js';

/** One rule of `immutability.tags`: these tags of these repositories never move. */
export interface ImmutableTagRule {
  repositories: readonly string[];
  tags: readonly string[];
}

interface CompiledRule {
  repositories: RegExp[];
  tags: RegExp[];
}

/**
 * Immutable tags: a tag that matches a rule, once pushed, stays on its
 * digest. Pushing it again with the same manifest is allowed; retention
 * never removes it.
 */
export class ImmutableTags {
  readonly #rules: CompiledRule[];

  constructor(rules: readonly ImmutableTagRule[] = []) {
    this.#rules = rules.map((rule) => ({
      repositories: rule.repositories.map(compileRepositoryPattern),
      tags: rule.tags.map(compileTagPattern),
    }));
  }

  /** True when any rule makes the tag of this repository immutable. */
  isImmutable(repository: string, tag: string): boolean {
    return this.#rules.some(
      (rule) => matchesAny(rule.repositories, repository) && matchesAny(rule.tags, tag),
    );
  }
}

/**
 * The answer to a push that would move an immutable tag. DENIED, which the
 * spec defines for an operation the registry refuses, and which `docker
 * push` neither retries nor hides: it shows "denied: " and this message.
 * The status is 409 Conflict rather than DENIED's usual 403: the caller
 * may push, the tag's current state is what conflicts, and a 403 would send
 * people looking for a missing permission.
 */
export function immutableTagError(repository: string, tag: string, digest: string): RegistryError {
  return new RegistryError(
    'DENIED',
    `Tag "${repository}:${tag}" is immutable: it already points at ${digest}`,
    { status: 409, detail: { tag, digest } },
  );
}
