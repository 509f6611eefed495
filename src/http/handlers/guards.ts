import { RegistryError } from '../../errors/registry-error.js';
import type { RequestContext } from '../context.js';

/** Checks shared by several handlers. */

export function methodNotAllowed(ctx: RequestContext): RegistryError {
  return new RegistryError(
    'UNSUPPORTED',
    `Method ${ctx.req.method ?? ''} is not supported on this endpoint`,
  );
}

export function requireDeleteEnabled(ctx: RequestContext): void {
  if (ctx.options.deleteEnabled) return;
  throw new RegistryError(
    'UNSUPPORTED',
    'Deletes are disabled on this registry: set storage.delete.enabled to true to allow them',
  );
}

/** Distribution's `storage.maintenance.readonly`: pulls go on, writes are refused. */
export function requireWritable(ctx: RequestContext): void {
  if (!ctx.options.readOnly) return;
  throw new RegistryError('UNSUPPORTED', 'The registry is in read-only mode for maintenance');
}
