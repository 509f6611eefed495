import { RegistryError } from '../../errors/registry-error.js';
import type { ManifestRecord } from '../../metadata/metadata-store.js';
import { requireDigest } from '../../registry/digest.js';
import { mediaTypes } from '../../registry/media-types.js';
import type { RequestContext } from '../context.js';
import { listVisibleRepositories } from '../visibility.js';
import { sendJson, type Headers } from '../respond.js';
import { methodNotAllowed } from './guards.js';

/** Listings: the catalog, a repository's tags, and referrers. */

/** The most entries one page returns; a larger `n` gets this many and a `Link` to the rest. */
export const maxPageSize = 10_000;
/** The catalog's page size when the client names none, as Distribution answers. */
const defaultCatalogPage = 1000;

/** `GET /v2/_catalog?n=&last=` (Docker Registry HTTP API V2, "Listing repositories"). */
export async function handleCatalog(ctx: RequestContext) {
  requireRead(ctx);
  const { limit, last } = pageOf(ctx, defaultCatalogPage);
  const names = await listVisibleRepositories(ctx, limit + 1, last.last);
  const headers = nextLink(ctx, '/v2/_catalog', names, limit);
  ctx.bytesOut = sendJson(ctx.res, 200, { repositories: names.slice(0, limit) }, headers);
}

/** `GET /v2/<name>/tags/list?n=&last=` (OCI spec, "Listing tags"). */
export async function handleTags(ctx: RequestContext, name: string) {
  requireRead(ctx);
  const { limit, last } = pageOf(ctx, maxPageSize);
  const tags = await ctx.registry.metadata.listTags(name, { limit: limit + 1, ...last });
  if (!tags) {
    throw new RegistryError('NAME_UNKNOWN', `Repository "${name}" is unknown`, {
      detail: { name },
    });
  }
  const headers = nextLink(ctx, `/v2/${name}/tags/list`, tags, limit);
  ctx.bytesOut = sendJson(ctx.res, 200, { name, tags: tags.slice(0, limit) }, headers);
}

/** `GET /v2/<name>/referrers/<digest>?artifactType=` (OCI spec, "Listing referrers"). */
export async function handleReferrers(ctx: RequestContext, name: string, digest: string) {
  requireRead(ctx);
  requireDigest(digest);
  const artifactType = ctx.query.get('artifactType') ?? undefined;
  const records = await ctx.registry.metadata.listReferrers(name, digest, artifactType);
  const headers: Headers = { 'Content-Type': mediaTypes.ociIndex };
  if (artifactType !== undefined) headers['OCI-Filters-Applied'] = 'artifactType';
  const index = {
    schemaVersion: 2,
    mediaType: mediaTypes.ociIndex,
    manifests: records.map(toDescriptor),
  };
  ctx.bytesOut = sendJson(ctx.res, 200, index, headers);
}

function toDescriptor(record: ManifestRecord) {
  return {
    mediaType: record.mediaType,
    digest: record.digest,
    size: record.size,
    ...(record.artifactType ? { artifactType: record.artifactType } : {}),
    ...(record.annotations ? { annotations: JSON.parse(record.annotations) as unknown } : {}),
  };
}

function requireRead(ctx: RequestContext) {
  if (ctx.req.method !== 'GET' && ctx.req.method !== 'HEAD') throw methodNotAllowed(ctx);
}

function pageOf(
  ctx: RequestContext,
  defaultLimit: number,
): { limit: number; last: { last?: string } } {
  const n = ctx.query.get('n');
  const last = ctx.query.get('last');
  let limit = defaultLimit;
  if (n !== null) {
    if (!/^\d+$/.test(n)) {
      throw new RegistryError(
        'PAGINATION_NUMBER_INVALID',
        `Invalid page size n="${n}": expected a whole number`,
      );
    }
    limit = Math.min(Number(n), maxPageSize);
  }
  return { limit, last: last ? { last } : {} };
}

/** `Link: <...?last=X&n=N>; rel="next"` when entries remain after this page (RFC 8288). */
function nextLink(ctx: RequestContext, path: string, entries: string[], limit: number): Headers {
  if (entries.length <= limit || limit === 0) return {};
  const last = entries[limit - 1] as string;
  const query = new URLSearchParams({ last, n: String(limit) }).toString();
  return { Link: `<${path}?${query}>; rel="next"` };
}
