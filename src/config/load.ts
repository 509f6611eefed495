import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { configSchema, type Config } from './schema.js';

/**
 * Loads the configuration: the YAML file when one is given, then
 * `REGISTRY_SECTION_KEY` environment variables over it, in Distribution's
 * convention (`REGISTRY_HTTP_ADDR` sets `http.addr`), then validation.
 */

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export async function loadConfig(
  file: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Config> {
  const fromFile = file ? await readConfigFile(file) : {};
  const merged = applyEnvironment(fromFile, env);
  return validateConfig(keepStringsFromEnvironment(merged, env), describeSource(file, env));
}

/**
 * Environment values are read as YAML scalars so that `true` and `5000` have
 * their types; where the schema wants a string (a secret made of digits, say)
 * the variable's text is used as it was written.
 */
function keepStringsFromEnvironment(
  merged: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
): Record<string, unknown> {
  const result = configSchema.safeParse(merged);
  if (result.success) return merged;
  let fixed = merged;
  for (const issue of result.error.issues) {
    if (issue.code !== 'invalid_type' || issue.expected !== 'string') continue;
    const name = `REGISTRY_${issue.path.map(String).join('_').toUpperCase()}`;
    const text = env[name];
    if (text === undefined || !isOverride(name, text)) continue;
    if (fixed === merged) fixed = structuredClone(merged);
    setPath(fixed, issue.path.map(String), text, name);
  }
  return fixed;
}

/** Names the file and the variables a bad value may have come from. */
function describeSource(file: string | undefined, env: NodeJS.ProcessEnv): string {
  const base = file === undefined ? 'the embedded defaults' : `"${file}"`;
  const variables = Object.keys(env).filter((name) => isOverride(name, env[name]));
  return variables.length === 0 ? base : `${base} and ${variables.sort().join(', ')}`;
}

export function validateConfig(raw: unknown, source: string): Config {
  const result = configSchema.safeParse(raw ?? {});
  if (result.success) return result.data;
  const problems = result.error.issues.map(describeIssue).join('; ');
  throw new ConfigError(`Invalid configuration in ${source}: ${problems}`);
}

async function readConfigFile(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new ConfigError(`Cannot read configuration file "${file}": ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch (error) {
    throw new ConfigError(`Invalid YAML in "${file}": ${(error as Error).message}`);
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError(
      `Invalid configuration in "${file}": expected a mapping at the top level`,
    );
  }
  return parsed as Record<string, unknown>;
}

/**
 * Kubernetes injects `REGISTRY_PORT`, `REGISTRY_SERVICE_HOST` and the like for
 * a service named "registry"; they are not configuration, so they are skipped
 * instead of stopping the start.
 */
const serviceLinkVariable = /^REGISTRY_(PORT|SERVICE)(_|$)/;

export function applyEnvironment(
  config: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
): Record<string, unknown> {
  const result = structuredClone(config);
  for (const [name, value] of Object.entries(env)) {
    if (!isOverride(name, value)) continue;
    const path = name.slice('REGISTRY_'.length).toLowerCase().split('_');
    setPath(result, path, parseEnvironmentValue(value), name);
  }
  return result;
}

function isOverride(name: string, value: string | undefined): value is string {
  return name.startsWith('REGISTRY_') && value !== undefined && !serviceLinkVariable.test(name);
}

function parseEnvironmentValue(value: string): unknown {
  try {
    return parseYaml(value) ?? value;
  } catch {
    return value;
  }
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown, name: string) {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (next === undefined || next === null) {
      node[key] = {};
    } else if (typeof next !== 'object' || Array.isArray(next)) {
      throw new ConfigError(
        `Environment variable ${name} sets below "${key}", which is not a section`,
      );
    }
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1] as string] = value;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const where = issue.path.map(String).join('.') || '(top level)';
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.map((key) => (where === '(top level)' ? key : `${where}.${key}`));
    return `unknown key ${keys.map((key) => `"${key}"`).join(', ')}`;
  }
  return `"${where}": ${issue.message}`;
}
