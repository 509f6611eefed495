import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';

import { WriteLock } from '../../src/metadata/sql/write-lock.js';

/** Whether `promise` has settled within a few turns of the event loop. */
async function settledSoon(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  void promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  await sleep(20);
  return settled;
}

describe('SQLite write lock between serving threads', () => {
  it('write lock: a second holder waits until the first releases', async () => {
    const lock = new WriteLock(new SharedArrayBuffer(4));
    await lock.acquire();
    const second = lock.acquire();
    assert.equal(await settledSoon(second), false);
    lock.release();
    await second;
    lock.release();
    await lock.acquire();
    lock.release();
  });

  it('write lock: a thread waits, without blocking its event loop, for another thread to release', async () => {
    const lock = new WriteLock(new SharedArrayBuffer(4));
    await lock.acquire();
    // The thread's timer fires only if its event loop runs while it waits;
    // it also keeps the loop alive, as a serving thread's server does.
    const thread = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       const cell = new Int32Array(workerData);
       let waiting = true;
       let told = false;
       const timer = setInterval(() => {
         if (waiting && !told) parentPort.postMessage('alive while waiting');
         told = true;
       }, 5);
       (async () => {
         while (Atomics.compareExchange(cell, 0, 0, 1) !== 0) {
           const wait = Atomics.waitAsync(cell, 0, 1, 30000);
           if (wait.async) await wait.value;
         }
         waiting = false;
         clearInterval(timer);
         parentPort.postMessage('acquired');
       })();`,
      { eval: true, workerData: lock.buffer },
    );
    try {
      const messages: string[] = [];
      const next = () =>
        new Promise<string>((resolve, reject) => {
          const timer = setTimeout(
            () => reject(new Error(`no message after ${messages.join(', ')}`)),
            10_000,
          );
          thread.once('message', (message: string) => {
            clearTimeout(timer);
            messages.push(message);
            resolve(message);
          });
        });
      assert.equal(await next(), 'alive while waiting');
      lock.release();
      assert.equal(await next(), 'acquired');
    } finally {
      await thread.terminate();
    }
  });
});
