import {
  catalogAccess,
  isRepositoryAction,
  repositoryActions,
  type RepositoryAction,
  type ResourceAccess,
} from './access.js';

/** Who made a request, and what they may do: the outcome of authentication. */

export type CallerKind = 'anonymous' | 'user' | 'robot' | 'token';

/** How the caller proved who they are; a denial answers 401 or 403 depending on it. */
export type CredentialScheme = 'none' | 'basic' | 'bearer';

export interface Caller {
  kind: CallerKind;
  /** A user name, `robot:NAME`, or a token's `sub`; undefined when anonymous. */
  name: string | undefined;
  scheme: CredentialScheme;
  /** The actions the caller has on a repository. */
  actionsOn(repository: string): ReadonlySet<RepositoryAction>;
  mayListCatalog: boolean;
  /** An administrator of the policy: may use `/admin/v1/`. */
  isAdmin: boolean;
  /** Which repositories the caller's catalog shows: those they may pull. */
  catalogFilter(): Promise<(repository: string) => boolean>;
}

/**
 * The access a token grants: for each scope asked, the actions asked that
 * the caller has (the intersection the token specification describes).
 * Scopes of unknown types, and scopes nothing was granted for, are left out.
 */
export function grantAccess(
  caller: Caller,
  requested: readonly ResourceAccess[],
): ResourceAccess[] {
  const granted: ResourceAccess[] = [];
  for (const scope of requested) {
    const actions = grantedActions(caller, scope);
    if (actions.length > 0) granted.push({ type: scope.type, name: scope.name, actions });
  }
  return mergeAccess(granted);
}

function grantedActions(caller: Caller, scope: ResourceAccess): string[] {
  if (scope.type === catalogAccess.type && scope.name === catalogAccess.name) {
    return caller.mayListCatalog && scope.actions.includes('*') ? ['*'] : [];
  }
  if (scope.type !== 'repository') return [];
  const has = caller.actionsOn(scope.name);
  const asked = scope.actions.includes('*') ? repositoryActions : scope.actions;
  return asked.filter((action) => isRepositoryAction(action) && has.has(action));
}

/** One entry per resource, actions in a stable order. */
function mergeAccess(entries: readonly ResourceAccess[]): ResourceAccess[] {
  const merged = new Map<string, ResourceAccess>();
  for (const entry of entries) {
    const key = `${entry.type}\0${entry.name}`;
    const known = merged.get(key);
    const actions = new Set([...(known?.actions ?? []), ...entry.actions]);
    merged.set(key, { type: entry.type, name: entry.name, actions: [...actions].sort() });
  }
  return [...merged.values()];
}

/** A caller whose rights are exactly a token's `access` claim. */
export function callerFromAccess(
  name: string,
  access: readonly ResourceAccess[],
  catalogFilter: () => Promise<(repository: string) => boolean>,
): Caller {
  return {
    kind: 'token',
    name,
    scheme: 'bearer',
    actionsOn(repository) {
      const actions = new Set<RepositoryAction>();
      for (const entry of access) {
        if (entry.type !== 'repository' || entry.name !== repository) continue;
        for (const action of entry.actions) {
          if (action === '*') repositoryActions.forEach((each) => actions.add(each));
          else if (isRepositoryAction(action)) actions.add(action);
        }
      }
      return actions;
    },
    mayListCatalog: access.some(
      (entry) =>
        entry.type === catalogAccess.type &&
        entry.name === catalogAccess.name &&
        entry.actions.includes('*'),
    ),
    isAdmin: false,
    catalogFilter,
  };
}
