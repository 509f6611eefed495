import { availableParallelism } from 'node:os';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import { writeLockData } from '../metadata/sql/write-lock.js';

/**
 * Several serving threads in one process, all accepting from one listening
 * socket. The main thread listens and serves; every other thread runs its
 * own event loop, HTTP server and store connections, and accepts from the
 * same descriptor, so both cores serve without a proxy in between. All
 * state lives in the two stores, which are safe to share (DESIGN.md,
 * "Shape").
 *
 * Threads rather than processes: a second Node process costs about 80 MB
 * before it serves anything (the mapped binary, counted again per process,
 * and a whole runtime), a second thread about 25 MB, since it loads only
 * what serving needs (serving-thread.ts).
 *
 * The threads share one descriptor number, so none of them may close it
 * while the others run: a closed number is soon given to a file that
 * another thread opens, and the next close would then hit that file. So no
 * thread ever closes its listening server. At shutdown every thread turns
 * new connections away and drains; the process exit then closes the
 * descriptor once nothing else can open a file.
 *
 * Limitation: the main thread accepts as soon as it listens, and the other
 * threads a second or so later, once they have loaded and opened the
 * stores. A keep-alive connection made in that second stays with the main
 * thread for its life, so a burst of clients at start-up is served by one
 * core until they reconnect. Listening only once every thread is ready
 * would need the descriptor before the socket listens, which Node does not
 * offer.
 *
 * Limitation: a serving thread that fails (an uncaught error, or an exit)
 * stops the whole process with exit code 1, after draining the others,
 * since its end may have closed the shared descriptor already. Separate
 * processes would survive one another's failure; here the supervisor
 * (systemd, docker's restart policy) must start the process again.
 */

/** What a serving thread starts from: the main thread's checked configuration and its socket. */
interface ThreadData {
  berthConfig: Config;
  berthListeningDescriptor: number;
}

/** How the main thread and a serving thread talk. */
type ThreadMessage = 'listening' | 'stop' | 'drained' | 'failed';

export function workerCount(config: Config): number {
  const wanted = config.server.workers;
  return wanted === 'auto' ? Math.min(availableParallelism(), 8) : wanted;
}

/** In a serving thread: the configuration and the descriptor it accepts from. */
export function threadData(): { config: Config; descriptor: number } {
  const data = workerData as Partial<ThreadData> | undefined;
  if (isMainThread || !data?.berthConfig || data.berthListeningDescriptor === undefined) {
    throw new Error('Not a serving thread');
  }
  return { config: data.berthConfig, descriptor: data.berthListeningDescriptor };
}

/**
 * The descriptor of a listening server. Node has no public accessor for it;
 * `_handle.fd` has carried it on Linux since the first releases.
 */
export function descriptorOf(server: object): number {
  const fd = (server as { _handle?: { fd?: unknown } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('The listening socket has no descriptor');
  return fd;
}

/**
 * In a serving thread, once it listens: tells the main thread, runs `drain`
 * when asked to stop, and reports a failure instead of ending the thread
 * (which would close the shared descriptor under the others).
 */
export function reportToMainThread(drain: () => Promise<void>, log: Logger): void {
  const port = parentPort;
  if (!port) throw new Error('Not a serving thread');
  process.on('uncaughtException', (error) => {
    log.fatal({ err: error }, 'serving thread failed; stopping the process');
    port.postMessage('failed' satisfies ThreadMessage);
  });
  port.on('message', (message: ThreadMessage) => {
    if (message !== 'stop') return;
    void drain().finally(() => port.postMessage('drained' satisfies ThreadMessage));
  });
  port.postMessage('listening' satisfies ThreadMessage);
}

export interface ServingThreads {
  /** Resolves when every thread listens. */
  readonly listening: Promise<void>;
  /** Asks every thread to drain; resolves when all have (the caller bounds the wait). */
  drain(): Promise<void>;
}

/**
 * In the main thread: starts `count` serving threads on `descriptor`.
 * `onFailure` runs when one of them fails or ends on its own; the process
 * must then stop, since the shared descriptor may be closed already.
 */
export function startServingThreads(
  count: number,
  config: Config,
  descriptor: number,
  onFailure: (reason: string) => void,
): ServingThreads {
  const threads: Worker[] = [];
  const listening: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    // The SQLite write lock goes along even when the store is PostgreSQL: it costs 4 bytes.
    const data: ThreadData = {
      berthConfig: config,
      berthListeningDescriptor: descriptor,
      ...writeLockData(),
    };
    const thread = new Worker(new URL('./serving-thread.js', import.meta.url), {
      workerData: data,
      stdout: false,
      stderr: false,
    });
    threads.push(thread);
    listening.push(
      new Promise((resolve) =>
        thread.on('message', (message: ThreadMessage) => {
          if (message === 'listening') resolve();
          if (message === 'failed') onFailure('a serving thread failed');
        }),
      ),
    );
    thread.on('error', (error) => onFailure(`a serving thread failed: ${error.message}`));
    thread.on('exit', (code) => onFailure(`a serving thread ended with code ${code}`));
  }
  return {
    listening: Promise.all(listening).then(() => undefined),
    drain: async () => {
      await Promise.all(
        threads.map(
          (thread) =>
            new Promise<void>((resolve) => {
              // A thread that has ended has nothing left to drain.
              if (thread.threadId === -1) return resolve();
              thread.once('exit', () => resolve());
              thread.on('message', (message: ThreadMessage) => {
                if (message === 'drained') resolve();
              });
              thread.postMessage('stop' satisfies ThreadMessage);
            }),
        ),
      );
    },
  };
}
