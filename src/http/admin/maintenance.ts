import { parseDuration } from '../../config/duration.js';
import { RegistryError } from '../../errors/registry-error.js';
import { parseReference, requireRepositoryName } from '../../registry/names.js';
import type { RequestContext } from '../context.js';
import { methodNotAllowed, requireDeleteEnabled, requireWritable } from '../handlers/guards.js';
import { sendJson } from '../respond.js';
import type { AdminRoute } from './routes.js';

/**
 * The administrative deletes and garbage collection (routes.ts). Deletes
 * obey `storage.delete.enabled` and read-only mode as `/v2/` deletes do;
 * a collection obeys read-only mode unless it is a dry run.
 */
export async function handleAdmin(ctx: RequestContext, route: AdminRoute): Promise<void> {
  requireAdministrator(ctx);
  if (route.action === 'gc') return collect(ctx);

  ctx.repository = route.name;
  requireRepositoryName(route.name);
  if (ctx.req.method !== 'DELETE') throw methodNotAllowed(ctx);
  requireDeleteEnabled(ctx);
  requireWritable(ctx);
  if (route.action === 'delete-repository') return deleteRepository(ctx, route.name);
  ctx.reference = route.reference.slice(0, 200);
  return deleteManifest(ctx, route.name, route.reference);
}

/**
 * Under access control (`auth`), the policy's administrators only
 * (`admins`; every user when there is no policy file): authorize.ts lets
 * no one else reach here, and this is the second guard. Without access
 * control anyone may call them, as anyone may delete through `/v2/`.
 */
function requireAdministrator(ctx: RequestContext): void {
  if (!ctx.options.auth || ctx.caller?.isAdmin === true) return;
  throw new RegistryError('DENIED', "Administrative endpoints are for the policy's administrators");
}

/** `DELETE /admin/v1/repositories/<name>`; `?referrers=true` is implied: every manifest goes. */
async function deleteRepository(ctx: RequestContext, name: string) {
  const deleted = await ctx.registry.repositories.delete(name);
  const body = {
    repository: name,
    manifests: deleted.manifests,
    tags: deleted.tags,
    blobLinks: deleted.blobLinks,
    uploads: deleted.uploads.length,
  };
  ctx.log.info({ action: 'delete-repository', ...body }, 'deleted');
  ctx.bytesOut = sendJson(ctx.res, 200, body);
}

/** `DELETE /admin/v1/repositories/<name>/_manifests/<reference>[?referrers=true]`. */
async function deleteManifest(ctx: RequestContext, name: string, raw: string) {
  const reference = parseReference(raw);
  const referrers = flagOf(ctx, 'referrers') ?? false;
  const deleted = await ctx.registry.manifests.delete(name, reference, { referrers });
  const body = { repository: name, reference: raw, ...deleted };
  ctx.log.info({ action: 'delete-manifest', ...body }, 'deleted');
  ctx.bytesOut = sendJson(ctx.res, 200, body);
}

/** `POST /admin/v1/gc[?dryRun=true&grace=30m&untagged=true]`: answers with the run's report. */
async function collect(ctx: RequestContext) {
  if (ctx.req.method !== 'POST') throw methodNotAllowed(ctx);
  const dryRun = flagOf(ctx, 'dryRun') ?? false;
  if (!dryRun) requireWritable(ctx);
  const { defaults } = ctx.registry.gc;
  const grace = ctx.query.get('grace');
  const outcome = await ctx.registry.gc.run({
    dryRun,
    graceMs: grace === null ? defaults.graceMs : durationOf('grace', grace),
    untagged: flagOf(ctx, 'untagged') ?? defaults.untagged,
    log: ctx.log.child({ task: 'gc' }),
  });
  if (!outcome.ran) {
    throw new RegistryError('UNSUPPORTED', `Garbage collection skipped: ${outcome.reason}`, {
      status: 409,
    });
  }
  ctx.bytesOut = sendJson(ctx.res, 200, outcome.report);
}

function flagOf(ctx: RequestContext, name: string): boolean | undefined {
  const value = ctx.query.get(name);
  if (value === null) return undefined;
  if (value === 'true' || value === '1' || value === '') return true;
  if (value === 'false' || value === '0') return false;
  throw new RegistryError(
    'UNSUPPORTED',
    `Invalid ${name}="${value.slice(0, 50)}": expected true or false`,
    {
      status: 400,
    },
  );
}

function durationOf(name: string, value: string): number {
  try {
    return parseDuration(value);
  } catch {
    throw new RegistryError(
      'UNSUPPORTED',
      `Invalid ${name}="${value.slice(0, 50)}": expected a duration such as 0s, 30m or 24h`,
      { status: 400 },
    );
  }
}
