import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { compileRepositoryPattern, repositoryPatternProblem } from '../registry/patterns.js';
import { repositoryActions, type RepositoryAction } from './access.js';

/**
 * The access policy: who may pull, push and delete where. A YAML file
 * (`auth.policy.path`, docs/configuration.md, "Access control"):
 *
 * ```yaml
 * admins: [root]                 # every action on every repository
 * groups:
 *   team-a: [alice, bob]
 * rules:
 *   - repository: team-a/**      # or a list of patterns
 *     groups: [team-a]
 *     users: [carol]
 *     actions: [pull, push, delete]
 *   - repository: public/**
 *     anonymous: true            # everyone, logged in or not
 *     actions: [pull]
 *   - repository: "**"
 *     authenticated: true        # every user who logged in
 *     actions: [pull]
 * ```
 *
 * A user's actions on a repository are the union of the actions of every
 * rule that matches both; nothing is allowed that no rule allows.
 */

export class PolicyError extends Error {
  override name = 'PolicyError';
}

/** The grammar every repository pattern of Berth follows (src/registry/patterns.ts). */
const repositoryPattern = z.string().superRefine((pattern, ctx) => {
  const problem = repositoryPatternProblem(pattern);
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: `"${pattern}": ${problem}` });
});

const ruleSchema = z.strictObject({
  repository: z.union([repositoryPattern, z.array(repositoryPattern).min(1)]),
  users: z.array(z.string().min(1)).default([]),
  groups: z.array(z.string().min(1)).default([]),
  authenticated: z.boolean().default(false),
  anonymous: z.boolean().default(false),
  actions: z.array(z.enum(repositoryActions)).min(1),
});

const policySchema = z.strictObject({
  admins: z.array(z.string().min(1)).default([]),
  groups: z.record(z.string(), z.array(z.string().min(1))).default({}),
  rules: z.array(ruleSchema).default([]),
});

interface CompiledRule {
  patterns: RegExp[];
  users: ReadonlySet<string>;
  groups: readonly string[];
  authenticated: boolean;
  anonymous: boolean;
  actions: readonly RepositoryAction[];
}

const allActions: ReadonlySet<RepositoryAction> = new Set(repositoryActions);

export class Policy {
  readonly #admins: ReadonlySet<string>;
  readonly #groups: ReadonlyMap<string, ReadonlySet<string>>;
  readonly #rules: readonly CompiledRule[];
  /** When true (no policy file), every authenticated user may do everything. */
  readonly #openToUsers: boolean;

  private constructor(document: z.infer<typeof policySchema>, openToUsers: boolean) {
    this.#admins = new Set(document.admins);
    this.#groups = new Map(
      Object.entries(document.groups).map(([name, members]) => [name, new Set(members)]),
    );
    this.#rules = document.rules.map(compileRule);
    this.#openToUsers = openToUsers;
  }

  /** Without a policy file, as Distribution does: users who logged in may do anything. */
  static authenticatedMayDoAnything(): Policy {
    return new Policy({ admins: [], groups: {}, rules: [] }, true);
  }

  /** Parses a policy file's text; `source` names it in the error. */
  static parse(text: string, source: string): Policy {
    let raw: unknown;
    try {
      raw = parseYaml(text);
    } catch (error) {
      throw new PolicyError(`Invalid YAML in policy "${source}": ${(error as Error).message}`);
    }
    const result = policySchema.safeParse(raw ?? {});
    if (!result.success) {
      const problems = result.error.issues.map(describeIssue).join('; ');
      throw new PolicyError(`Invalid policy in "${source}": ${problems}`);
    }
    return new Policy(result.data, false);
  }

  isAdmin(user: string): boolean {
    return this.#openToUsers || this.#admins.has(user);
  }

  /** The actions a user (or, when `user` is undefined, an anonymous caller) has on a repository. */
  actionsFor(user: string | undefined, repository: string): ReadonlySet<RepositoryAction> {
    if (user !== undefined && this.isAdmin(user)) return allActions;
    const granted = new Set<RepositoryAction>();
    for (const rule of this.#rules) {
      if (!this.#applies(rule, user)) continue;
      if (!rule.patterns.some((pattern) => pattern.test(repository))) continue;
      for (const action of rule.actions) granted.add(action);
    }
    return granted;
  }

  /** True when some rule lets anonymous callers in, so that they may list the catalog. */
  allowsAnonymous(): boolean {
    return this.#rules.some((rule) => rule.anonymous);
  }

  #applies(rule: CompiledRule, user: string | undefined): boolean {
    if (rule.anonymous) return true;
    if (user === undefined) return false;
    if (rule.authenticated || rule.users.has(user)) return true;
    return rule.groups.some((group) => this.#groups.get(group)?.has(user) === true);
  }
}

function compileRule(rule: z.infer<typeof ruleSchema>): CompiledRule {
  const patterns = Array.isArray(rule.repository) ? rule.repository : [rule.repository];
  return {
    patterns: patterns.map(compileRepositoryPattern),
    users: new Set(rule.users),
    groups: rule.groups,
    authenticated: rule.authenticated,
    anonymous: rule.anonymous,
    actions: rule.actions,
  };
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const where = issue.path.map(String).join('.') || '(top level)';
  if (issue.code === 'unrecognized_keys') {
    return `unknown key ${issue.keys.map((key) => `"${key}"`).join(', ')} in ${where}`;
  }
  return `"${where}": ${issue.message}`;
}
