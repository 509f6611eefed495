/**
 * What a caller may do, in the terms of the Docker token specification
 * ("Token Authentication Specification" and "Token Scope Documentation"):
 * a scope names a resource type, a resource and the actions asked for,
 * `repository:team-a/app:pull,push`; a granted token carries the same
 * triples in its `access` claim.
 */

/** The actions of the `repository` resource type. */
export const repositoryActions = ['pull', 'push', 'delete'] as const;
export type RepositoryAction = (typeof repositoryActions)[number];

/** One entry of a scope or of a token's `access` claim. */
export interface ResourceAccess {
  type: string;
  name: string;
  actions: string[];
}

/** The access the catalog needs (`GET /v2/_catalog`). */
export const catalogAccess: ResourceAccess = { type: 'registry', name: 'catalog', actions: ['*'] };

export function isRepositoryAction(value: string): value is RepositoryAction {
  return (repositoryActions as readonly string[]).includes(value);
}

/**
 * Parses one scope, `type[(class)]:name:actions`. A repository name may
 * hold a `:` only in a registry host's port, so the type ends at the first
 * colon and the actions begin after the last. Undefined when malformed.
 */
export function parseScope(text: string): ResourceAccess | undefined {
  const first = text.indexOf(':');
  const last = text.lastIndexOf(':');
  if (first <= 0 || last === first) return undefined;
  const type = text.slice(0, first).replace(/\(.*\)$/, '');
  const name = text.slice(first + 1, last);
  const actions = text
    .slice(last + 1)
    .split(',')
    .filter((action) => action !== '');
  if (name === '' || type === '') return undefined;
  return { type, name, actions: [...new Set(actions)] };
}

/** Scopes from `scope` parameters: each may hold several, separated by spaces (OAuth2 form). */
export function parseScopes(values: readonly string[]): ResourceAccess[] {
  return values
    .flatMap((value) => value.split(' '))
    .filter((text) => text !== '')
    .map(parseScope)
    .filter((scope): scope is ResourceAccess => scope !== undefined);
}

export function formatScope(access: ResourceAccess): string {
  return `${access.type}:${access.name}:${access.actions.join(',')}`;
}
