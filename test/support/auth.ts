import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { createLogger, type Logger } from '../../src/log/logger.js';

/** Helpers for the access-control tests: accounts, policies, credentials and captured logs. */

export function basic(user: string, password: string): Record<string, string> {
  return { Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` };
}

export function bearer(token: string): Record<string, string> {
  return { Authorization: `Bearer ${token}` };
}

/** A bcrypt hash at the lowest cost, with the prefix asked (`htpasswd -B` writes `2y`). */
export function quickHash(password: string, prefix: '2a' | '2b' | '2y' = '2y'): string {
  return bcrypt.hashSync(password, 4).replace(/^\$2[aby]\$/, `$${prefix}$`);
}

export function htpasswdText(users: Record<string, string>): string {
  return Object.entries(users)
    .map(([user, password]) => `${user}:${quickHash(password)}\n`)
    .join('');
}

/** A fresh directory for the test's htpasswd and policy files. */
export async function authDirectory(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'berth-auth-'));
}

export async function writeFiles(dir: string, files: Record<string, string>): Promise<void> {
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
}

/** A logger whose lines are kept, parsed, for assertions. */
export function capturedLogger(): {
  log: Logger;
  lines: Record<string, unknown>[];
  text: () => string;
} {
  const raw: string[] = [];
  const log = createLogger({ level: 'info' }, { write: (line: string) => void raw.push(line) });
  return {
    log,
    get lines() {
      return raw.map((line) => JSON.parse(line) as Record<string, unknown>);
    },
    text: () => raw.join(''),
  };
}

/** The claims of a JWT, unverified. */
export function jwtClaims(token: string): Record<string, unknown> {
  const payload = token.split('.')[1] ?? '';
  return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
}

/** Waits for the registry's once-a-second look at changed files. */
export function waitForFileCheck(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 1_100));
}

export const testPolicy = `
admins: [root]
groups:
  team-a: [alice]
rules:
  - repository: team-a/**
    groups: [team-a]
    actions: [pull, push]
  - repository: public/**
    anonymous: true
    actions: [pull]
  - repository: public/**
    users: [alice]
    actions: [push]
  - repository: shared/*
    authenticated: true
    actions: [pull]
`;

export const testUsers = { root: 'root-pw', alice: 'alice-pw', bob: 'bob-pw' };
