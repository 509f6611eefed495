import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { MetadataStore, RobotRecord } from '../metadata/metadata-store.js';
import { compileRepositoryPattern, repositoryPatternProblem } from '../registry/patterns.js';
import {
  isRepositoryAction,
  parseScope,
  repositoryActions,
  type RepositoryAction,
} from './access.js';

/**
 * Robot accounts: long-lived tokens for machines (CI jobs), each limited to
 * scopes and an expiry, created and revoked with `berth robot`. They live in
 * the metadata store so that every instance sees them; only a SHA-256 hash
 * of each secret is stored. The secret is random (256 bits), so a plain hash
 * is as strong as a slow one here, and it can be checked on every request.
 *
 * A token reads `berth_robot_<id>_<secret>`: the id finds the record, the
 * secret proves the holder. Clients send it as the password of Basic
 * credentials (`docker login -u NAME`) or as a Bearer token.
 */

export type { RobotRecord };

/** What robots need of the metadata store. */
export type RobotStore = Pick<
  MetadataStore,
  'createRobot' | 'getRobot' | 'getRobotByName' | 'listRobots' | 'deleteRobot'
>;

const tokenPattern = /^berth_robot_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$/;
export const robotNamePattern = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/** The name a robot goes by in logs and token subjects; no htpasswd user can have a colon. */
export function robotSubject(name: string): string {
  return `robot:${name}`;
}

export function isRobotToken(text: string): boolean {
  return tokenPattern.test(text);
}

/** A new robot's record and its token, which is shown once and never stored. */
export function mintRobot(
  name: string,
  scopes: string[],
  expiresAt: number,
): { record: RobotRecord; token: string } {
  const id = randomBytes(16).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  const record = {
    id,
    name,
    secretHash: hashSecret(secret),
    scopes,
    createdAt: Date.now(),
    expiresAt,
  };
  return { record, token: `berth_robot_${id}_${secret}` };
}

/** The robot a token belongs to, when the token is genuine and unexpired. */
export async function verifyRobotToken(
  store: RobotStore,
  token: string,
  now = Date.now(),
): Promise<RobotRecord | undefined> {
  const match = tokenPattern.exec(token);
  if (!match) return undefined;
  const robot = await store.getRobot(match[1] as string);
  const presented = Buffer.from(hashSecret(match[2] as string), 'hex');
  // Compared in constant time even when the id is unknown, against a hash of nothing.
  const expected = Buffer.from(robot?.secretHash ?? hashSecret(''), 'hex');
  const equal = expected.length === presented.length && timingSafeEqual(expected, presented);
  if (!robot || !equal || robot.expiresAt <= now) return undefined;
  return robot;
}

/** Checks robot scopes before they are stored; throws with the first bad one. */
export function validateRobotScopes(scopes: readonly string[]): void {
  if (scopes.length === 0) throw new Error('A robot needs at least one --scope');
  for (const text of scopes) {
    const scope = parseScope(text);
    const catalog = scope?.type === 'registry' && scope.name === 'catalog';
    const repository =
      scope?.type === 'repository' &&
      repositoryPatternProblem(scope.name) === undefined &&
      scope.actions.length > 0 &&
      scope.actions.every((action) => action === '*' || isRepositoryAction(action));
    if (!catalog && !repository) {
      throw new Error(
        `Invalid scope "${text}": expected repository:PATTERN:ACTIONS with actions among ` +
          `pull, push, delete (or *), or registry:catalog:*`,
      );
    }
  }
}

/** What a robot's scopes allow on one repository. */
export function robotActionsOn(robot: RobotRecord, repository: string): Set<RepositoryAction> {
  const granted = new Set<RepositoryAction>();
  for (const text of robot.scopes) {
    const scope = parseScope(text);
    if (scope?.type !== 'repository') continue;
    if (!compileRepositoryPattern(scope.name).test(repository)) continue;
    for (const action of scope.actions) {
      if (action === '*') repositoryActions.forEach((each) => granted.add(each));
      else if (isRepositoryAction(action)) granted.add(action);
    }
  }
  return granted;
}

export function robotMayListCatalog(robot: RobotRecord): boolean {
  return robot.scopes.some((text) => {
    const scope = parseScope(text);
    return scope?.type === 'registry' && scope.name === 'catalog';
  });
}

function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}
