import type { ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import {
  createWorkDirectory,
  hasExited,
  removeWorkDirectory,
  run,
  runCommand,
  sleep,
  spawnLongLived,
  stopProcess,
  type CommandResult,
} from './registry-process.js';

/**
 * A private Docker daemon for one test file: its own data root, exec root,
 * socket and containerd namespace in a temp directory, no iptables, no
 * bridge, the vfs storage driver (works on any filesystem, no overlay
 * mounts). Docker treats registries on 127.0.0.0/8 as insecure, so plain
 * HTTP needs no `--insecure-registry`.
 */

const readyTimeoutMs = 60_000;

export class DockerDaemon {
  readonly dir: string;
  readonly socket: string;
  /** The environment for the docker CLI: this daemon, a private client configuration. */
  readonly env: NodeJS.ProcessEnv;
  readonly #child: ChildProcess;
  readonly #log: string[];

  constructor(dir: string, child: ChildProcess, log: string[]) {
    this.dir = dir;
    this.socket = join(dir, 'docker.sock');
    this.env = clientEnvironment(dir, this.socket);
    this.#child = child;
    this.#log = log;
  }

  logTail(lines = 40): string {
    return this.#log.join('').trimEnd().split('\n').slice(-lines).join('\n');
  }

  /** Runs the docker CLI against this daemon and returns its standard output. */
  docker(args: readonly string[]): Promise<string> {
    return run('docker', args, { env: this.env });
  }

  /** Runs the docker CLI and returns the whole result, whatever the exit code. */
  dockerResult(args: readonly string[]): Promise<CommandResult> {
    return runCommand('docker', args, { env: this.env });
  }

  async waitUntilReady(): Promise<void> {
    const deadline = Date.now() + readyTimeoutMs;

    while (Date.now() < deadline) {
      if (hasExited(this.#child)) throw new Error(`dockerd exited:\n${this.logTail()}`);
      if (await pingSocket(this.socket)) return;
      await sleep(200);
    }
    throw new Error(`dockerd was not ready within 60 s:\n${this.logTail()}`);
  }

  /**
   * Stops the daemon, kills whatever it left behind (containerd, shims: every
   * process whose command line names this daemon's directory), unmounts what
   * it mounted there and removes the directory.
   */
  async stop(): Promise<void> {
    await stopProcess(this.#child, 20_000);
    await removeWorkDirectory(this.dir);
  }
}

function clientEnvironment(dir: string, socket: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DOCKER_HOST: `unix://${socket}`,
    DOCKER_CONFIG: join(dir, 'client'),
    // The classic builder: no buildx plugin needed, and it reads no network.
    DOCKER_BUILDKIT: '0',
    DOCKER_CLI_HINTS: 'false',
  };
  for (const key of ['DOCKER_CONTEXT', 'DOCKER_TLS_VERIFY', 'DOCKER_CERT_PATH']) delete env[key];
  return env;
}

function pingSocket(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/_ping', timeout: 2_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

/**
 * Starts dockerd in a fresh temp directory and waits until it answers
 * `/_ping`. The caller stops it (an `after` hook), which also removes the
 * directory; should the test process die first, dockerd is killed with it.
 */
export async function startDockerDaemon(): Promise<DockerDaemon> {
  const dir = await createWorkDirectory('docker');
  const configFile = join(dir, 'daemon.json');
  await writeFile(configFile, '{}\n');
  await mkdir(join(dir, 'client'));
  const namespace = `berth-e2e-${process.pid}`;

  // prettier-ignore
  const args = [
    '--config-file', configFile,
    '--iptables=false',
    '--ip-forward=false',
    '--ip-masq=false',
    '--bridge=none',
    '--storage-driver=vfs',
    '--data-root', join(dir, 'data'),
    '--exec-root', join(dir, 'exec'),
    '--host', `unix://${join(dir, 'docker.sock')}`,
    '--pidfile', join(dir, 'docker.pid'),
    // Should a system containerd be running, dockerd uses it: keep to our own namespaces.
    '--containerd-namespace', namespace,
    '--containerd-plugins-namespace', `${namespace}-plugins`,
  ];
  const log: string[] = [];
  const child = spawnLongLived('dockerd', args, process.env, log);
  const daemon = new DockerDaemon(dir, child, log);

  try {
    await daemon.waitUntilReady();
    return daemon;
  } catch (error) {
    await daemon.stop();
    throw error;
  }
}
