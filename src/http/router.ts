import { matchAdminRoute, type AdminRoute } from './admin/routes.js';

/**
 * Routes of the OCI distribution spec ("API" table) and the Docker Registry
 * HTTP API V2. Repository names contain slashes, so a route is recognised by
 * its last fixed segment (`/manifests/`, `/blobs/`, ...) and the name is
 * everything before it. Names are never percent-decoded: an encoded slash
 * or dot stays invalid instead of turning into a path separator.
 */

export type Route =
  | { kind: 'base' }
  /** Berth's token service (Docker token specification), outside `/v2/`. */
  | { kind: 'token' }
  | { kind: 'catalog' }
  | { kind: 'tags'; name: string }
  | { kind: 'manifest'; name: string; reference: string }
  | { kind: 'blob'; name: string; digest: string }
  | { kind: 'uploads'; name: string }
  | { kind: 'upload'; name: string; id: string }
  | { kind: 'referrers'; name: string; digest: string }
  /** Berth's storage usage, `/admin/v1/usage[/<name>]` (src/http/admin/usage.ts). */
  | { kind: 'usage'; name: string | undefined }
  /** Berth's deletes and garbage collection under `/admin/v1/` (src/http/admin/routes.ts). */
  | AdminRoute;

export type RouteKind = Route['kind'];

const patterns: [RegExp, (match: RegExpExecArray) => Route][] = [
  [
    /^(.+)\/manifests\/([^/]+)$/,
    (m) => ({ kind: 'manifest', name: m[1]!, reference: decode(m[2]!) }),
  ],
  [/^(.+)\/blobs\/uploads\/?$/, (m) => ({ kind: 'uploads', name: m[1]! })],
  [/^(.+)\/blobs\/uploads\/([^/]+)$/, (m) => ({ kind: 'upload', name: m[1]!, id: decode(m[2]!) })],
  [/^(.+)\/blobs\/([^/]+)$/, (m) => ({ kind: 'blob', name: m[1]!, digest: decode(m[2]!) })],
  [/^(.+)\/tags\/list$/, (m) => ({ kind: 'tags', name: m[1]! })],
  [
    /^(.+)\/referrers\/([^/]+)$/,
    (m) => ({ kind: 'referrers', name: m[1]!, digest: decode(m[2]!) }),
  ],
];

const usagePrefix = '/admin/v1/usage/';

/** The route for a request path (without the query), or undefined when none matches. */
export function matchRoute(path: string): Route | undefined {
  if (path === '/v2/' || path === '/v2') return { kind: 'base' };
  if (path === '/auth/token') return { kind: 'token' };
  if (path === '/admin/v1/usage') return { kind: 'usage', name: undefined };
  if (path.startsWith(usagePrefix)) return { kind: 'usage', name: path.slice(usagePrefix.length) };
  if (path.startsWith('/admin/')) return matchAdminRoute(path);
  if (!path.startsWith('/v2/')) return undefined;
  const rest = path.slice(4);
  if (rest === '_catalog') return { kind: 'catalog' };
  for (const [pattern, build] of patterns) {
    const match = pattern.exec(rest);
    if (match) return build(match);
  }
  return undefined;
}

/** References and digests may arrive percent-encoded (`sha256%3A...`); names may not. */
function decode(segment: string): string {
  if (!segment.includes('%')) return segment;
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
