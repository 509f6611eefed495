import { fork, type ChildProcess } from 'node:child_process';
import type { Server } from 'node:net';
import { availableParallelism } from 'node:os';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log/logger.js';

/**
 * Several serving processes on one port. The first process listens and hands
 * the listening socket to the workers it forks; every process then accepts
 * connections from that socket, so both cores serve without a proxy process
 * in between. All state lives in the two stores, which are safe to share
 * between processes (DESIGN.md, "Shape").
 */

const workerVariable = 'BERTH_WORKER';
const listenMessage = 'berth:listen';
const readyMessage = 'berth:ready';

export function isWorker(): boolean {
  return process.env[workerVariable] === '1';
}

export function workerCount(config: Config): number {
  const wanted = config.server.workers;
  return wanted === 'auto' ? Math.min(availableParallelism(), 8) : wanted;
}

/**
 * In a worker, once it can serve: asks the first process for the listening
 * socket and resolves with it. The socket must not come earlier: from the
 * moment it arrives this process accepts connections, and one accepted
 * before a `connection` listener is attached would hang unanswered.
 */
export function receiveListeningSocket(): Promise<Server> {
  return new Promise((resolve) => {
    process.on('message', (message: unknown, handle: unknown) => {
      if (message === listenMessage) resolve(handle as Server);
    });
    process.send?.(readyMessage);
  });
}

/**
 * V8 lets the young generation grow to 16 MiB per semi-space under a high
 * request rate; 4 MiB served manifest GETs as fast here and lowered peak
 * memory by about 20 MB per process. The first process gets the same flag
 * from `npm start` and the `berth` command's first line.
 */
export const heapFlag = '--max-semi-space-size=4';

function withHeapFlags(execArgv: string[]): string[] {
  return execArgv.some((flag) => flag.startsWith('--max-semi-space-size'))
    ? execArgv
    : [...execArgv, heapFlag];
}

/** In the first process: forks `count` workers and keeps them running until `stop`. */
export function startWorkers(count: number, listening: Server, log: Logger): () => void {
  const workers = new Set<ChildProcess>();
  let stopping = false;

  const spawn = () => {
    const child = fork(process.argv[1] as string, process.argv.slice(2), {
      env: { ...process.env, [workerVariable]: '1' },
      execArgv: withHeapFlags(process.execArgv),
      stdio: 'inherit',
    });
    workers.add(child);
    child.on('message', (message: unknown) => {
      if (message === readyMessage) child.send(listenMessage, listening);
    });
    child.once('exit', (code, signal) => {
      workers.delete(child);
      if (stopping) return;
      log.error({ pid: child.pid, code, signal }, 'worker exited; starting another');
      setTimeout(spawn, 1000).unref();
    });
  };

  for (let i = 0; i < count; i++) spawn();
  return () => {
    stopping = true;
    for (const child of workers) child.kill('SIGTERM');
  };
}
