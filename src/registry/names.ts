import { RegistryError } from '../errors/registry-error.js';
import { parseDigest } from './digest.js';

/**
 * Repository names and references, with the grammar of the OCI Distribution
 * Specification ("Pulling manifests"): path components of lowercase
 * alphanumerics joined by `.`, `_`, `__` or dashes, separated by `/`.
 */

const namePattern =
  /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
const tagPattern = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;

/** Distribution's limit, which docker and containerd respect too. */
export const maxNameLength = 255;

export function isRepositoryName(value: string): boolean {
  return value.length <= maxNameLength && namePattern.test(value);
}

export function requireRepositoryName(value: string): string {
  if (!isRepositoryName(value)) {
    throw new RegistryError(
      'NAME_INVALID',
      `Invalid repository name "${truncate(value)}": expected lowercase path components ` +
        `such as "team/app", at most ${maxNameLength} characters`,
    );
  }
  return value;
}

export function isTag(value: string): boolean {
  return tagPattern.test(value);
}

export type Reference = { kind: 'tag'; tag: string } | { kind: 'digest'; digest: string };

/** A manifest reference in a URL: a tag, or a digest when it contains a colon. */
export function parseReference(value: string): Reference {
  if (value.includes(':')) {
    if (!parseDigest(value)) {
      throw new RegistryError(
        'DIGEST_INVALID',
        `Invalid digest "${truncate(value)}": expected sha256:<64 hex> or sha512:<128 hex>`,
      );
    }
    return { kind: 'digest', digest: value };
  }
  if (!isTag(value)) {
    throw new RegistryError(
      'TAG_INVALID',
      `Invalid tag "${truncate(value)}": expected [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`,
    );
  }
  return { kind: 'tag', tag: value };
}

function truncate(value: string): string {
  return value.length > 300 ? `${value.slice(0, 300)}...` : value;
}
