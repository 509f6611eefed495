import { parseArgs } from 'node:util';
import {
  editHtpasswdFile,
  hashPassword,
  parseHtpasswd,
  userNamePattern,
} from '../auth/htpasswd.js';
import { loadConfig } from '../config/load.js';
import { readNewPassword } from './prompt.js';
import { readFile } from 'node:fs/promises';

/**
 * `berth user add|passwd|remove|list`: the accounts of the htpasswd file
 * (`auth.htpasswd.path`), without Apache's tools. The file stays readable
 * by `htpasswd -B` and a serving registry picks changes up within seconds.
 */

export const userUsage = `Usage: berth user <add|passwd|remove|list> [NAME] [options]

  add NAME       Add an account (the password is asked, or read with --password-stdin)
  passwd NAME    Set a new password for an account
  remove NAME    Remove an account
  list           List the accounts

Options:
  -c, --config FILE    The configuration whose auth.htpasswd.path names the file
  --file FILE          The htpasswd file itself
  --password-stdin     Read the password from standard input`;

export async function runUserCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      config: { type: 'string', short: 'c' },
      file: { type: 'string' },
      'password-stdin': { type: 'boolean', default: false },
    },
    allowPositionals: true,
  });
  const [action, name, ...extra] = positionals;
  if (extra.length > 0) throw new Error(`Unexpected argument "${extra[0]}"\n\n${userUsage}`);
  const path = values.file ?? (await htpasswdPathOf(values.config));
  const fromStdin = values['password-stdin'];

  switch (action) {
    case 'add':
      return addUser(path, requireName(name), fromStdin);
    case 'passwd':
      return changePassword(path, requireName(name), fromStdin);
    case 'remove':
      return removeUser(path, requireName(name));
    case 'list':
      return listUsers(path);
    default:
      throw new Error(`Unknown user command "${action ?? ''}"\n\n${userUsage}`);
  }
}

async function htpasswdPathOf(configFile: string | undefined): Promise<string> {
  const config = await loadConfig(configFile);
  const path = config.auth.htpasswd?.path;
  if (path === undefined) {
    throw new Error('auth.htpasswd.path is not set: give --config FILE or --file FILE');
  }
  return path;
}

function requireName(name: string | undefined): string {
  if (name === undefined) throw new Error(`A user name is needed\n\n${userUsage}`);
  if (!userNamePattern.test(name)) {
    throw new Error(`Invalid user name "${name}": expected no colon, space or control character`);
  }
  return name;
}

async function addUser(path: string, name: string, fromStdin: boolean) {
  const hash = await hashPassword(await readNewPassword(fromStdin));
  await editHtpasswdFile(path, (entries) => {
    if (entries.has(name)) throw new Error(`User "${name}" exists: use berth user passwd`);
    entries.set(name, hash);
  });
  console.error(`Added user "${name}" to ${path}`);
}

async function changePassword(path: string, name: string, fromStdin: boolean) {
  const hash = await hashPassword(await readNewPassword(fromStdin));
  await editHtpasswdFile(path, (entries) => {
    if (!entries.has(name)) throw new Error(`No user "${name}" in ${path}`);
    entries.set(name, hash);
  });
  console.error(`Changed the password of "${name}"`);
}

async function removeUser(path: string, name: string) {
  await editHtpasswdFile(path, (entries) => {
    if (!entries.delete(name)) throw new Error(`No user "${name}" in ${path}`);
  });
  console.error(`Removed user "${name}"`);
}

async function listUsers(path: string) {
  const text = await readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return '';
    throw error;
  });
  for (const name of parseHtpasswd(text).keys()) console.log(name);
}
