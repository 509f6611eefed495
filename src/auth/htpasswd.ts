import { createHash, createHmac, randomBytes } from 'node:crypto';
import { open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import bcrypt from 'bcryptjs';

/**
 * Accounts in an Apache htpasswd file, as Distribution reads them: one
 * `name:hash` line per user, bcrypt hashes only (`$2y$`, `$2a$`, `$2b$`,
 * what `htpasswd -B` writes). Berth writes `$2y$` hashes, which Apache's
 * tools read too, and keeps every other line as it was.
 *
 * Limitation: the accounts are a file on each machine, as in Distribution.
 * Instances on several machines need the file copied to each (robot
 * tokens, kept in the metadata store, need nothing of the kind).
 */

/** bcrypt's work factor for new passwords: about 50 ms per check in pure JavaScript. */
export const bcryptCost = 10;

const bcryptHash = /^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/;

/** A user name as htpasswd allows it: no colon, no white space, no control character. */
export const userNamePattern = /^[^:\s\p{Cc}]{1,255}$/u;

/** Users and their password hashes, in file order. */
export type HtpasswdEntries = Map<string, string>;

export function parseHtpasswd(text: string): HtpasswdEntries {
  const entries: HtpasswdEntries = new Map();
  for (const line of text.split(/\r?\n/)) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const colon = trimmed.indexOf(':');
    if (colon <= 0) continue;
    entries.set(trimmed.slice(0, colon), trimmed.slice(colon + 1));
  }
  return entries;
}

export function isBcryptHash(hash: string): boolean {
  return bcryptHash.test(hash);
}

/** A `$2y$` bcrypt hash of the password, as `htpasswd -B` makes. */
export async function hashPassword(password: string, cost = bcryptCost): Promise<string> {
  const hash = await bcrypt.hash(password, cost);
  return hash.replace(/^\$2[ab]\$/, '$2y$');
}

/** bcrypt's compare, which takes the same time whatever the password. */
export function comparePassword(password: string, hash: string): Promise<boolean> {
  if (!isBcryptHash(hash)) return Promise.resolve(false);
  return bcrypt.compare(password, hash);
}

/** A short fingerprint of a hash: refresh tokens carry it, so a new password voids them. */
export function hashFingerprint(hash: string): string {
  return createHash('sha256').update(hash).digest('base64url').slice(0, 16);
}

/**
 * Password checks with a memory of recent successes. Docker sends Basic
 * credentials with every request of a push in htpasswd mode, and one bcrypt
 * check costs tens of milliseconds of CPU; a success is remembered for five
 * minutes under an HMAC of user, password and hash with a key that never
 * leaves this process, so neither the password nor anything that verifies
 * it offline is kept. A new hash in the file makes a new key: a changed
 * password takes effect at once. Failures are never remembered.
 */
export class PasswordChecker {
  readonly #key = randomBytes(32);
  readonly #successes = new Map<string, number>();
  /** Compared against for unknown users, so that they cost as much time as known ones. */
  readonly #dummy = bcrypt.hashSync(randomBytes(16).toString('hex'), bcryptCost);
  readonly #ttlMs: number;
  readonly #maxEntries: number;

  constructor(ttlMs = 300_000, maxEntries = 10_000) {
    this.#ttlMs = ttlMs;
    this.#maxEntries = maxEntries;
  }

  async check(user: string, password: string, hash: string | undefined): Promise<boolean> {
    if (hash === undefined) {
      await bcrypt.compare(password, this.#dummy);
      return false;
    }
    const key = this.#keyOf(user, password, hash);
    const until = this.#successes.get(key);
    if (until !== undefined && until > Date.now()) return true;

    const ok = await comparePassword(password, hash);
    if (ok) this.#remember(key);
    return ok;
  }

  #keyOf(user: string, password: string, hash: string): string {
    return createHmac('sha256', this.#key).update(`${user}\0${password}\0${hash}`).digest('hex');
  }

  #remember(key: string) {
    if (this.#successes.size >= this.#maxEntries) {
      const oldest = this.#successes.keys().next();
      if (!oldest.done) this.#successes.delete(oldest.value);
    }
    this.#successes.delete(key);
    this.#successes.set(key, Date.now() + this.#ttlMs);
  }
}

/**
 * Changes an htpasswd file: reads it (an absent file is empty), lets `change`
 * edit the entries, and replaces the file atomically (a temporary file
 * renamed over it), so that a serving registry never reads half a file.
 * A lock file beside it keeps two `berth user` commands from losing each
 * other's change. Lines that are not entries (comments) are kept.
 */
export async function editHtpasswdFile<T>(
  path: string,
  change: (entries: HtpasswdEntries) => T | Promise<T>,
): Promise<T> {
  const release = await lockFile(`${path}.lock`);
  try {
    const text = await readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return '';
      throw error;
    });
    const entries = parseHtpasswd(text);
    const result = await change(entries);
    await replaceFile(path, renderHtpasswd(text, entries));
    return result;
  } finally {
    await release();
  }
}

/** The file's text with its entries replaced: known users in place, new ones at the end. */
function renderHtpasswd(original: string, entries: HtpasswdEntries): string {
  const written = new Set<string>();
  const lines: string[] = [];
  for (const line of original.split(/\r?\n/)) {
    const trimmed = line.trim();
    const colon = trimmed.indexOf(':');
    const isEntry = trimmed !== '' && !trimmed.startsWith('#') && colon > 0;
    if (!isEntry) {
      if (trimmed !== '') lines.push(line);
      continue;
    }
    const user = trimmed.slice(0, colon);
    const hash = entries.get(user);
    if (hash === undefined || written.has(user)) continue;
    lines.push(`${user}:${hash}`);
    written.add(user);
  }
  for (const [user, hash] of entries) if (!written.has(user)) lines.push(`${user}:${hash}`);
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

async function replaceFile(path: string, text: string) {
  const mode = await stat(path).then(
    (info) => info.mode & 0o777,
    () => 0o600,
  );
  const temporary = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(temporary, text, { mode, flag: 'wx' });
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

/** An exclusive lock by creating a file; one left by a crash is taken over after 30 s. */
async function lockFile(path: string): Promise<() => Promise<void>> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const handle = await open(path, 'wx', 0o600);
      await handle.close();
      return () => rm(path, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const age = await stat(path).then(
        (info) => Date.now() - info.mtimeMs,
        () => 0,
      );
      if (age > 30_000) await rm(path, { force: true });
      else if (Date.now() > deadline)
        throw new Error(`The file "${path}" is locked by another command`);
      else await sleep(50);
    }
  }
}
