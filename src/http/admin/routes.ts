/**
 * Berth's administrative endpoints beside `/v2/`, under `/admin/v1/`
 * (docs/operations.md, "Deleting" and "Garbage collection"):
 *
 * - `DELETE /admin/v1/repositories/<name>`: a whole repository;
 * - `DELETE /admin/v1/repositories/<name>/_manifests/<reference>`: a tag,
 *   or a manifest by digest with the tags on it;
 * - `POST /admin/v1/gc`: a garbage collection, now.
 *
 * `_manifests` cannot be part of a repository name (a path component
 * starts with a letter or digit), so the two delete routes never collide
 * whatever the name. Every route has kind `admin`: access control asks
 * for administrator rights on all of them.
 */

export type AdminRoute =
  | { kind: 'admin'; action: 'delete-repository'; name: string }
  | { kind: 'admin'; action: 'delete-manifest'; name: string; reference: string }
  | { kind: 'admin'; action: 'gc' };

const prefix = '/admin/v1/';
const repositoryPattern = /^repositories\/(.+?)(?:\/_manifests\/([^/]+))?$/;

/** The administrative route of a path, or undefined when none matches. */
export function matchAdminRoute(path: string): AdminRoute | undefined {
  if (!path.startsWith(prefix)) return undefined;
  const rest = path.slice(prefix.length);
  if (rest === 'gc') return { kind: 'admin', action: 'gc' };
  const match = repositoryPattern.exec(rest);
  if (!match?.[1]) return undefined;
  if (match[2] === undefined) return { kind: 'admin', action: 'delete-repository', name: match[1] };
  return { kind: 'admin', action: 'delete-manifest', name: match[1], reference: decode(match[2]) };
}

/** A digest may arrive percent-encoded (`sha256%3A...`); names may not. */
function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
