import { RegistryError } from '../../errors/registry-error.js';
import { requireRepositoryName } from '../../registry/names.js';
import type { RequestContext } from '../context.js';
import { methodNotAllowed } from '../handlers/guards.js';
import { sendJson } from '../respond.js';

/**
 * Storage usage, Berth's own endpoints:
 *
 * - `GET /admin/v1/usage`: every repository's stored, unique and shared
 *   bytes, and the registry's total, each digest counted once
 *   (`RegistryUsage` in src/metadata/metadata-store.ts);
 * - `GET /admin/v1/usage/<name>`: one repository (`RepositoryUsage`), or
 *   404 NAME_UNKNOWN when it holds nothing.
 *
 * Under access control the first needs the catalog's access and lists the
 * repositories the caller may pull, as the catalog does; the registry's
 * `total` is left out unless the caller may pull every repository, since it
 * would tell of the others. The second needs pull on the repository.
 */
export async function handleUsage(ctx: RequestContext, name: string | undefined) {
  if (ctx.req.method !== 'GET' && ctx.req.method !== 'HEAD') throw methodNotAllowed(ctx);
  if (name === undefined) return sendRegistryUsage(ctx);

  ctx.repository = name;
  requireRepositoryName(name);
  const usage = await ctx.registry.metadata.measureRepositoryUsage(name);
  if (!usage) {
    throw new RegistryError('NAME_UNKNOWN', `Repository "${name}" is unknown or holds nothing`, {
      detail: { name },
    });
  }
  ctx.bytesOut = sendJson(ctx.res, 200, usage);
}

async function sendRegistryUsage(ctx: RequestContext) {
  const usage = await ctx.registry.metadata.measureUsage();
  if (!ctx.caller) {
    ctx.bytesOut = sendJson(ctx.res, 200, usage);
    return;
  }
  const visible = await ctx.caller.catalogFilter();
  const repositories = usage.repositories.filter((each) => visible(each.repository));
  const complete = repositories.length === usage.repositories.length;
  ctx.bytesOut = sendJson(ctx.res, 200, complete ? usage : { repositories });
}
