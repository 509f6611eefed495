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

  it('write lock: a thread with nothing else to do waits for another thread to release, and does not end', async () => {
    const lock = new WriteLock(new SharedArrayBuffer(4));
    await lock.acquire();
    // Like a serving thread still opening its stores: no server keeps its event loop alive.
    const module = new URL('../../src/metadata/sql/write-lock.js', import.meta.url).href;
    const thread = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       import(${JSON.stringify(module)}).then(async ({ WriteLock }) => {
         const lock = new WriteLock(workerData);
         parentPort.postMessage('waiting');
         await lock.acquire();
         parentPort.postMessage('acquired');
         lock.release();
       });`,
      { eval: true, workerData: lock.buffer },
    );
    try {
      const messages: string[] = [];
      let ended = false;
      thread.on('exit', () => (ended = true));
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
      assert.equal(await next(), 'waiting');
      await sleep(50);
      assert.equal(ended, false, 'the waiting thread ended');
      lock.release();
      assert.equal(await next(), 'acquired');
    } finally {
      await thread.terminate();
    }
  });
});
