import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCertCommand } from '../../src/cli/cert.js';
import { htpasswdText, testPolicy, testUsers } from './auth.js';
import { findFreePort, sleep, spawnLongLived, stopProcess } from './registry-process.js';

/**
 * A Berth process for the end-to-end access-control tests, started from a
 * configuration file with htpasswd accounts, the test policy and, when
 * asked, TLS with a certificate from `berth cert create` and the token
 * service. One per test file: the clients log in to it again and again.
 */

const berthMain = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export interface AuthRegistryOptions {
  tokenService?: boolean;
  /** Serve HTTPS on this address (not loopback, which docker never verifies). */
  tlsAddress?: string;
}

export class AuthRegistry {
  readonly host: string;
  readonly dir: string;
  readonly caFile: string;
  readonly #child: ChildProcess;
  readonly #log: string[];

  constructor(host: string, dir: string, child: ChildProcess, log: string[]) {
    this.host = host;
    this.dir = dir;
    this.caFile = join(dir, 'registry.crt');
    this.#child = child;
    this.#log = log;
  }

  logText(): string {
    return this.#log.join('');
  }

  async stop(): Promise<void> {
    await stopProcess(this.#child);
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** A non-loopback IPv4 address of this machine, if it has one. */
export function externalAddress(): string | undefined {
  const entries = Object.values(networkInterfaces()).flat();
  return entries.find((entry) => entry && entry.family === 'IPv4' && !entry.internal)?.address;
}

export async function startAuthRegistry(options: AuthRegistryOptions = {}): Promise<AuthRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-e2e-auth-'));
  const port = await findFreePort();
  const address = options.tlsAddress ?? '127.0.0.1';
  const config = [
    `http:`,
    `  addr: ${address}:${port}`,
    ...(options.tlsAddress
      ? [`  tls: {certificate: ${join(dir, 'registry.crt')}, key: ${join(dir, 'registry.key')}}`]
      : []),
    `storage: {filesystem: {rootdirectory: ${join(dir, 'data')}}}`,
    `server: {workers: 2}`,
    `auth:`,
    `  htpasswd: {realm: berth-e2e, path: ${join(dir, 'htpasswd')}}`,
    `  policy: {path: ${join(dir, 'policy.yml')}}`,
    ...(options.tokenService ? ['  tokenservice: {enabled: true}'] : []),
    '',
  ].join('\n');
  await writeFile(join(dir, 'config.yml'), config);
  await writeFile(join(dir, 'htpasswd'), htpasswdText(testUsers));
  await writeFile(join(dir, 'policy.yml'), testPolicy);
  if (options.tlsAddress) {
    await runCertCommand(['create', '--hosts', `${address},localhost`, '--out', dir]);
  }

  const log: string[] = [];
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !key.startsWith('REGISTRY_')),
  );
  const args = [berthMain, 'serve', '--config', join(dir, 'config.yml')];
  const child = spawnLongLived(process.execPath, args, env, log);
  const registry = new AuthRegistry(`${address}:${port}`, dir, child, log);
  try {
    await waitUntilAnswering(registry.host, options.tlsAddress !== undefined, child);
  } catch (error) {
    await registry.stop();
    throw new Error(`${(error as Error).message}\n${log.join('')}`);
  }
  return registry;
}

async function waitUntilAnswering(host: string, tls: boolean, child: ChildProcess) {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error('Berth exited');
    if ((await statusOf(`${tls ? 'https' : 'http'}://${host}/v2/`)) === 401) return;
    await sleep(100);
  }
  throw new Error('Berth did not answer within 30 s');
}

/** The status of a GET, or 0 when nothing answers; certificates are not checked here. */
async function statusOf(url: string): Promise<number> {
  if (url.startsWith('http:')) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      await response.arrayBuffer();
      return response.status;
    } catch {
      return 0;
    }
  }
  return new Promise((resolve) => {
    const options = { rejectUnauthorized: false, timeout: 2_000 };
    const req = httpsRequest(url, options, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

export interface InputResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command with `input` on its standard input (`--password-stdin`). */
export async function runWithInput(
  file: string,
  args: readonly string[],
  input: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<InputResult> {
  const child = spawn(file, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
  child.stdin.end(input);
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  try {
    const [code] = (await once(child, 'close')) as [number | null];
    const text = (chunks: Buffer[]) => Buffer.concat(chunks).toString('utf8');
    return { code, stdout: text(stdout), stderr: text(stderr) };
  } finally {
    clearTimeout(timer);
  }
}

/** `berth robot create` against the registry's configuration: the new token. */
export async function createRobot(registry: AuthRegistry, name: string, scope: string) {
  const args = [berthMain, 'robot', 'create', name, '--scope', scope];
  const result = await runWithInput(
    process.execPath,
    [...args, '--config', join(registry.dir, 'config.yml')],
    '',
  );
  if (result.code !== 0) throw new Error(`berth robot create failed: ${result.stderr}`);
  return result.stdout.trim();
}
