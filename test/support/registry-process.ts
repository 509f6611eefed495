import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Processes for the end-to-end tests: the registry under test, and the real
 * clients (docker, skopeo, podman) that talk to it.
 *
 * The registry is Berth by default. `BERTH_E2E_REGISTRY=distribution` runs
 * the very same suite against CNCF Distribution (`docker-registry`, Debian's
 * package), the reference implementation Berth replaces: a test that fails
 * there is a bug in the test, not in Berth.
 */

export type RegistryKind = 'berth' | 'distribution';

const berthMain = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const readyTimeoutMs = 30_000;
const stopTimeoutMs = 10_000;

/** Every long-lived process still running, killed outright should the test process end. */
const liveProcesses = new Set<ChildProcess>();
/** Every work directory not yet removed, cleaned up too should the test process end. */
const liveWorkDirectories = new Set<string>();

/**
 * The last resort, synchronous, when the test process ends before its
 * `after` hooks ran: kill, wait a little, unmount, delete. Each step is
 * attempted whatever the previous one did.
 */
function cleanUpEverythingNow(): void {
  const pids: number[] = [];
  for (const child of liveProcesses) {
    child.kill('SIGKILL');
    if (child.pid !== undefined) pids.push(child.pid);
  }
  for (const dir of liveWorkDirectories) pids.push(...killProcessesMentioning(dir));
  for (let i = 0; i < 40 && pids.some(isRunning); i++) sleepSync(50);

  for (const dir of liveWorkDirectories) {
    try {
      unmountBelow(dir);
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    } catch (error) {
      console.error(`Could not remove ${dir}: ${String(error)}`);
    }
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

process.once('exit', cleanUpEverythingNow);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    cleanUpEverythingNow();
    process.kill(process.pid, signal);
  });
}

export function selectedRegistryKind(): RegistryKind {
  const value = process.env.BERTH_E2E_REGISTRY ?? 'berth';
  if (value === 'berth' || value === 'distribution') return value;
  throw new Error(`Unknown BERTH_E2E_REGISTRY "${value}": expected berth or distribution`);
}

/** The binaries a registry of this kind needs besides Node.js. */
export function registryCommands(kind: RegistryKind = selectedRegistryKind()): string[] {
  return kind === 'distribution' ? ['docker-registry'] : [];
}

export interface CommandResult {
  command: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Killed for running longer than its timeout. */
  timedOut: boolean;
}

export interface CommandOptions {
  env?: NodeJS.ProcessEnv;
  /** Default 90 s: no client command here takes more than a few seconds when all is well. */
  timeoutMs?: number;
}

/** Runs a command to completion and returns its outputs, whatever its exit code. */
export async function runCommand(
  file: string,
  args: readonly string[],
  options: CommandOptions = {},
): Promise<CommandResult> {
  const child = spawn(file, args, {
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, options.timeoutMs ?? 90_000);

  try {
    const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
    return {
      command: [file, ...args].join(' '),
      code,
      signal,
      stdout: Buffer.concat(stdout).toString('utf8'),
      stderr: Buffer.concat(stderr).toString('utf8'),
      timedOut,
    };
  } finally {
    clearTimeout(timer);
  }
}

/** Runs a command and returns its standard output; a non-zero exit throws with both outputs. */
export async function run(
  file: string,
  args: readonly string[],
  options: CommandOptions = {},
): Promise<string> {
  const result = await runCommand(file, args, options);
  if (result.code !== 0) throw new Error(describeFailedCommand(result));
  return result.stdout;
}

export function describeFailedCommand(result: CommandResult): string {
  const status = result.timedOut
    ? 'a timeout, killed'
    : result.signal === null
      ? `exit code ${result.code}`
      : `signal ${result.signal}`;
  return [
    `Command failed with ${status}: ${result.command}`,
    `--- stdout ---\n${result.stdout.trimEnd()}`,
    `--- stderr ---\n${result.stderr.trimEnd()}`,
  ].join('\n');
}

export function commandExists(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

/**
 * The reason to skip a test file whose client binaries are missing, or
 * `false` when all are there. Under CI (`CI` set) a missing binary is a broken
 * machine, not a reason to skip: this throws, so that the file fails loudly.
 */
export function skipUnlessInstalled(names: readonly string[]): string | false {
  const missing = names.filter((name) => !commandExists(name));
  if (missing.length === 0) return false;

  const reason = `Not installed: ${missing.join(', ')} (.ci/run installs them)`;
  if (process.env.CI !== undefined && process.env.CI !== '') throw new Error(reason);
  return reason;
}

/** Spawns a long-lived process whose output is collected, killed if the test process exits. */
export function spawnLongLived(
  file: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  log: string[],
): ChildProcess {
  const child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  liveProcesses.add(child);
  child.once('exit', () => liveProcesses.delete(child));
  child.on('error', (error) => log.push(`spawn error: ${error.message}`));
  child.stdout?.setEncoding('utf8').on('data', (text: string) => log.push(text));
  child.stderr?.setEncoding('utf8').on('data', (text: string) => log.push(text));
  return child;
}

/** Stops a process: SIGTERM, then SIGKILL when it is still there after the timeout. */
export async function stopProcess(child: ChildProcess, timeoutMs = stopTimeoutMs): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;

  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  try {
    await exited;
  } finally {
    clearTimeout(timer);
  }
}

export function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** SIGKILLs every process whose command line contains `text`, and returns their IDs. */
function killProcessesMentioning(text: string): number[] {
  const killed: number[] = [];

  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    if (!readCommandLine(pid).includes(text)) continue;
    try {
      process.kill(pid, 'SIGKILL');
      killed.push(pid);
    } catch {
      // It ended on its own in the meantime.
    }
  }
  return killed;
}

function readCommandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}

/** Whether the process still runs: a zombie, dead but not yet reaped, does not. */
function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Unmounts every mount point at or below `dir`, deepest first (dockerd leaves its netns). */
function unmountBelow(dir: string): void {
  const mountPoints = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((point): point is string => point !== undefined)
    .map((point) => point.replace(/\\040/g, ' '))
    .filter((point) => point === dir || point.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);

  for (const point of mountPoints) spawnSync('umount', ['-l', point], { stdio: 'ignore' });
}

/** A fresh temp directory, cleaned up even if the test process ends before its `after` hook. */
export async function createWorkDirectory(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `berth-e2e-${prefix}-`));
  liveWorkDirectories.add(dir);
  return dir;
}

/**
 * Removes a test's work directory after the processes that used it: kills
 * every process whose command line names it (containerd shims, conmon),
 * unmounts whatever was mounted below it, then deletes it.
 */
export async function removeWorkDirectory(dir: string): Promise<void> {
  const killed = killProcessesMentioning(dir);
  for (let i = 0; i < 50 && killed.some(isRunning); i++) await sleep(100);
  unmountBelow(dir);
  await rm(dir, { recursive: true, force: true });
  liveWorkDirectories.delete(dir);
}

/** A free TCP port on the loopback interface, found by binding port 0. */
export async function findFreePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  await once(server, 'close');
  if (address === null || typeof address === 'string') throw new Error('No TCP address bound');
  return address.port;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** One HTTP exchange with the registry, its body always read. */
export interface HttpReply {
  status: number;
  headers: Headers;
  body: string;
}

export class RegistryProcess {
  readonly kind: RegistryKind;
  /** `127.0.0.1:PORT`, the registry part of an image reference. */
  readonly host: string;
  readonly url: string;
  readonly dataDir: string;
  readonly #child: ChildProcess;
  readonly #log: string[];
  readonly #workDir: string;

  constructor(
    kind: RegistryKind,
    port: number,
    workDir: string,
    child: ChildProcess,
    log: string[],
  ) {
    this.kind = kind;
    this.host = `127.0.0.1:${port}`;
    this.url = `http://${this.host}`;
    this.dataDir = join(workDir, 'data');
    this.#child = child;
    this.#log = log;
    this.#workDir = workDir;
  }

  get exited(): boolean {
    return hasExited(this.#child);
  }

  logText(): string {
    return this.#log.join('');
  }

  /** The last lines of the log, each cut to 500 characters. */
  logTail(lines = 40): string {
    const tail = this.logText().trimEnd().split('\n').slice(-lines);
    return tail.map((line) => (line.length > 500 ? `${line.slice(0, 500)}…` : line)).join('\n');
  }

  /** Sends a request to the registry and reads the whole response body. */
  async request(path: string, init: RequestInit = {}): Promise<HttpReply> {
    const response = await fetch(`${this.url}${path}`, init);
    const body = await response.text();
    return { status: response.status, headers: response.headers, body };
  }

  /** GETs a JSON document, failing with the reply when the status is not 200. */
  async getJson(path: string, headers: Record<string, string> = {}): Promise<unknown> {
    const reply = await this.request(path, { headers });
    if (reply.status !== 200) {
      throw new Error(`GET ${path}: expected 200, got ${reply.status}: ${reply.body}`);
    }
    return JSON.parse(reply.body) as unknown;
  }

  async stop(): Promise<void> {
    await stopProcess(this.#child);
    await removeWorkDirectory(this.#workDir);
  }

  async waitUntilReady(): Promise<void> {
    const deadline = Date.now() + readyTimeoutMs;

    while (Date.now() < deadline) {
      if (this.exited) throw new Error(`The ${this.kind} registry exited:\n${this.logTail()}`);
      if (await this.#answersBaseRoute()) return;
      await sleep(100);
    }
    throw new Error(`The ${this.kind} registry was not ready within 30 s:\n${this.logTail()}`);
  }

  async #answersBaseRoute(): Promise<boolean> {
    try {
      const reply = await this.request('/v2/', { signal: AbortSignal.timeout(2_000) });
      return reply.status === 200;
    } catch {
      return false;
    }
  }
}

/** The environment without any `REGISTRY_*` override that would reconfigure the registry. */
function cleanEnvironment(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const key of Object.keys(env)) {
    if (key.startsWith('REGISTRY_')) delete env[key];
  }
  return env;
}

function spawnBerth(workDir: string, port: number, log: string[]): ChildProcess {
  if (!existsSync(berthMain)) {
    throw new Error(`Berth is not built: ${berthMain} is missing (run npx tsc -p .)`);
  }
  const env = {
    ...cleanEnvironment(),
    REGISTRY_HTTP_ADDR: `127.0.0.1:${port}`,
    REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: join(workDir, 'data'),
    REGISTRY_STORAGE_DELETE_ENABLED: 'true',
    REGISTRY_LOG_LEVEL: 'info',
  };
  return spawnLongLived(process.execPath, [berthMain, 'serve'], env, log);
}

async function spawnDistribution(workDir: string, port: number, log: string[]) {
  const config = [
    'version: 0.1',
    'log:',
    '  level: info',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${join(workDir, 'data')}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    '',
  ].join('\n');
  const configPath = join(workDir, 'config.yml');
  await writeFile(configPath, config);
  return spawnLongLived('docker-registry', ['serve', configPath], cleanEnvironment(), log);
}

async function startOnce(kind: RegistryKind): Promise<RegistryProcess> {
  const workDir = await createWorkDirectory(kind);
  const port = await findFreePort();
  const log: string[] = [];
  const child =
    kind === 'berth' ? spawnBerth(workDir, port, log) : await spawnDistribution(workDir, port, log);
  const registry = new RegistryProcess(kind, port, workDir, child, log);

  try {
    await registry.waitUntilReady();
    return registry;
  } catch (error) {
    await registry.stop();
    throw error;
  }
}

/**
 * Starts a registry on a free loopback port with a fresh data directory and
 * waits until `GET /v2/` answers 200. Another process may take the port
 * between its discovery and the registry's bind: that case is retried.
 */
export async function startRegistry(
  kind: RegistryKind = selectedRegistryKind(),
): Promise<RegistryProcess> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(kind);
    } catch (error) {
      const text = error instanceof Error ? error.message : String(error);
      if (attempt >= 3 || !/address already in use|EADDRINUSE/i.test(text)) throw error;
    }
  }
}

export interface StartedBerth {
  registry: RegistryProcess;
  child: ChildProcess;
  log: string[];
}

/**
 * `berth serve` on the data of `workDir`, which outlives the process (a
 * test may start it again there), with `settings` as extra `REGISTRY_*`
 * variables, on a free loopback port. Another process may take the port
 * between its discovery and the bind: that case is retried.
 */
export async function startBerthOn(
  workDir: string,
  settings: NodeJS.ProcessEnv = {},
): Promise<StartedBerth> {
  for (let attempt = 1; ; attempt++) {
    const port = await findFreePort();
    const log: string[] = [];
    const env: NodeJS.ProcessEnv = {
      ...cleanEnvironment(),
      REGISTRY_HTTP_ADDR: `127.0.0.1:${port}`,
      REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: join(workDir, 'data'),
      ...settings,
    };
    const child = spawnLongLived(process.execPath, [berthMain, 'serve'], env, log);
    const registry = new RegistryProcess('berth', port, workDir, child, log);
    try {
      await registry.waitUntilReady();
      return { registry, child, log };
    } catch (error) {
      child.kill('SIGKILL');
      if (attempt >= 3 || !/EADDRINUSE/.test(String(error))) throw error;
    }
  }
}

/**
 * Runs a test body against a registry of its own, and stops the registry
 * afterwards whatever happened. When the body fails, the tail of the
 * registry's log is added to the error's message.
 */
export async function withRegistry(body: (registry: RegistryProcess) => Promise<void>) {
  const registry = await startRegistry();
  try {
    await body(registry);
  } catch (error) {
    if (error instanceof Error) {
      // Reporters print the message or the stack: both carry the log.
      const log = `\n\n${registry.kind} registry log, last lines:\n${registry.logTail(20)}`;
      const original = error.message;
      error.message += log;
      const stack = error.stack ?? '';
      error.stack = stack.includes(original) ? stack.replace(original, error.message) : stack + log;
    }
    throw error;
  } finally {
    await registry.stop();
  }
}
