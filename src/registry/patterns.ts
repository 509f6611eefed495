/**
 * The one pattern grammar of Berth's configuration: which repositories a
 * rule applies to (retention, immutable tags, quotas, access policies) and
 * which tags it names.
 *
 * Repository patterns match whole names, component by component:
 *
 * - `*` matches within one path component: `team-a/*` matches `team-a/app`,
 *   not `team-a/app/api`, nor `team-a` itself;
 * - `**` matches across components, at any depth: `team-a/**` matches
 *   `team-a/app` and `team-a/app/api`, not `team-a`; `**` alone matches
 *   every repository. As a whole component it also stands for none:
 *   `**\/app` matches `app`, and `team-a/**\/cache` matches `team-a/cache`;
 * - anything else matches itself.
 *
 * Tag patterns are globs: `*` matches any run of characters, so `v*`
 * matches `v`, `v1` and `v1.2.3`. Tags contain no slash, so `**` there
 * means the same as `*`.
 *
 * Patterns are compiled once, when the configuration is read, to regular
 * expressions anchored at both ends.
 */

/** Characters of repository names (OCI distribution spec, "Pulling manifests"), plus `*`. */
const repositoryPatternCharacters = /^[a-z0-9._/*-]+$/;
/** Characters of tags, plus `*`. */
const tagPatternCharacters = /^[a-zA-Z0-9._*-]+$/;

/**
 * Why the text is not a repository pattern, or undefined when it is one:
 * for the configuration's error messages.
 */
export function repositoryPatternProblem(pattern: string): string | undefined {
  if (!repositoryPatternCharacters.test(pattern)) {
    return `expected a repository pattern of lowercase letters, digits, "._-/" and "*"`;
  }
  if (pattern.includes('***')) return 'expected "*" or "**", never "***"';
  if (pattern.startsWith('/') || pattern.endsWith('/') || pattern.includes('//')) {
    return 'expected path components separated by single slashes';
  }
  return undefined;
}

/** Why the text is not a tag pattern, or undefined when it is one. */
export function tagPatternProblem(pattern: string): string | undefined {
  if (pattern.length > 128 || !tagPatternCharacters.test(pattern)) {
    return 'expected a tag pattern of letters, digits, "._-" and "*", at most 128 characters';
  }
  return undefined;
}

/**
 * A repository pattern as an anchored regular expression; throws on a text
 * that `repositoryPatternProblem` refuses.
 */
export function compileRepositoryPattern(pattern: string): RegExp {
  const problem = repositoryPatternProblem(pattern);
  if (problem !== undefined) throw new Error(`Invalid repository pattern "${pattern}": ${problem}`);

  const components = pattern.split('/');
  let source = '';
  components.forEach((component, index) => {
    const last = index === components.length - 1;
    if (component === '**' && !last) {
      // Zero or more whole components, each with its slash.
      source += '(?:[^/]+/)*';
      return;
    }
    source += compileComponent(component) + (last ? '' : '/');
  });
  return new RegExp(`^${source}$`);
}

/** A tag pattern as an anchored regular expression; throws on a text `tagPatternProblem` refuses. */
export function compileTagPattern(pattern: string): RegExp {
  const problem = tagPatternProblem(pattern);
  if (problem !== undefined) throw new Error(`Invalid tag pattern "${pattern}": ${problem}`);
  return new RegExp(`^${pattern.split(/\*+/).map(escapeRegExp).join('.*')}$`);
}

/** True when any of the compiled patterns matches the value. */
export function matchesAny(patterns: readonly RegExp[], value: string): boolean {
  return patterns.some((pattern) => pattern.test(value));
}

/** One component: `**` within it crosses slashes, `*` does not. */
function compileComponent(component: string): string {
  return component
    .split('**')
    .map((part) => part.split('*').map(escapeRegExp).join('[^/]*'))
    .join('.*');
}

function escapeRegExp(text: string): string {
  return text.replace(/[.+?^${}()|[\]\\/-]/g, '\\$&');
}
