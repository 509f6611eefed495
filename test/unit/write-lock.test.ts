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
    const thread = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       const cell = new Int32Array(workerData);
       let ticks = 0;
       const timer = setInterval(() => ticks++, 1);
       (async () => {
         parentPort.postMessage('waiting');
         while (Atomics.compareExchange(cell, 0, 0, 1) !== 0) {
           const wait = Atomics.waitAsync(cell, 0, 1, 5000);
           if (wait.async) await wait.value;
         }
         clearInterval(timer);
         parentPort.postMessage({ acquired: true, ticks });
       })();`,
      { eval: true, workerData: lock.buffer },
    );
    try {
      const messages: unknown[] = [];
      const acquired = new Promise<{ ticks: number }>((resolve) =>
        thread.on('message', (message: unknown) => {
          messages.push(message);
          if (typeof message === 'object') resolve(message as { ticks: number });
        }),
      );
      assert.equal(await settledSoon(acquired), false);
      await sleep(30);
      lock.release();
      const { ticks } = await acquired;
      assert.deepEqual(messages[0], 'waiting');
      assert.ok(ticks > 5, `the waiting thread's timers ran ${ticks} times while it waited`);
    } finally {
      await thread.terminate();
    }
  });
});
