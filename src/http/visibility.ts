import type { RequestContext } from './context.js';
import { logDecision } from './authorize.js';

/**
 * What access control hides: repositories the caller may not pull stay out
 * of the catalog, and a blob is never mounted from one of them (DESIGN.md,
 * invariant 3). With access control off, everything is visible.
 */

/** Names read per query while filtering. */
const scanPage = 1000;

/**
 * Up to `limit` repository names after `last` that the caller may pull.
 *
 * Limitation: the filter runs over the stored names, so a caller who may
 * pull few of many repositories makes one catalog request read every name
 * after `last` (in pages of 1000). It matters past some hundred thousand
 * repositories; policies compiled to SQL prefixes would avoid it.
 */
export async function listVisibleRepositories(
  ctx: RequestContext,
  limit: number,
  last: string | undefined,
): Promise<string[]> {
  const metadata = ctx.registry.metadata;
  const after = (name: string | undefined) => (name === undefined ? {} : { last: name });
  if (!ctx.caller) return metadata.listRepositories({ limit, ...after(last) });

  const visible = await ctx.caller.catalogFilter();
  const names: string[] = [];
  let cursor = last;
  for (;;) {
    const page = await metadata.listRepositories({ limit: scanPage, ...after(cursor) });
    for (const name of page) {
      if (!visible(name)) continue;
      names.push(name);
      if (names.length >= limit) return names;
    }
    if (page.length < scanPage) return names;
    cursor = page.at(-1);
  }
}

/**
 * The repository a mount may take the blob from, or undefined when none
 * may be used, in which case the client gets an ordinary upload and learns
 * nothing of the blob. With `from`, the caller must be able to pull it;
 * without, some repository that links the blob and that the caller may pull
 * is chosen. With access control off: `from` as given, or anywhere.
 */
export async function mountSource(
  ctx: RequestContext,
  name: string,
  digest: string,
  from: string | undefined,
): Promise<{ from: string | undefined } | undefined> {
  const caller = ctx.caller;
  if (!caller) return { from };
  if (from !== undefined) {
    if (caller.actionsOn(from).has('pull')) return { from };
    logDecision(ctx, 'mount', name, 'denied', `cannot pull "${from}"`);
    return undefined;
  }

  let cursor: string | undefined;
  for (;;) {
    const page = await ctx.registry.metadata.listRepositoriesLinkingBlob(digest, {
      limit: scanPage,
      ...(cursor === undefined ? {} : { last: cursor }),
    });
    const source = page.find((candidate) => caller.actionsOn(candidate).has('pull'));
    if (source !== undefined) return { from: source };
    if (page.length < scanPage) return undefined;
    cursor = page.at(-1);
  }
}
