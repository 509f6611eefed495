import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { validateConfig } from '../../src/config/load.js';
import { createSilentLogger } from '../../src/log/logger.js';
import { startMaintenance } from '../../src/registry/maintenance.js';
import { startApiServer } from '../support/api-server.js';
import { blobFiles } from '../support/gc-helpers.js';
import { pushBlob, request } from '../support/oci-client.js';

/**
 * The maintenance schedule of `berth serve`'s first process: garbage
 * collection and upload purging every interval, neither in read-only mode.
 */

const everySecond = {
  gc: { interval: '1s', grace: '0s' },
  storage: { maintenance: { uploadpurging: { interval: '1s', age: '1s' } } },
};

test('maintenance: collections and upload purges run on their schedule', async () => {
  const server = await startApiServer();
  try {
    const garbage = await pushBlob(server.url, 'app', randomBytes(100));
    const session = await request(`${server.url}/v2/app/blobs/uploads/`, { method: 'POST' });
    const config = validateConfig(everySecond, 'test');
    const maintenance = startMaintenance(server.registry, config, createSilentLogger());
    try {
      await sleep(2500);
    } finally {
      await maintenance.stop();
    }

    assert.ok(!(await blobFiles(server.root)).includes(garbage), 'the garbage was collected');
    const lease = await server.registry.metadata.getLease('gc');
    assert.ok(lease?.completedAt && lease.holder === '');
    const location = session.headers.get('location') ?? '';
    assert.equal((await request(`${server.url}${location}`)).status, 404, 'the idle upload went');
  } finally {
    await server.close();
  }
});

test('maintenance: nothing runs in read-only mode', async () => {
  const server = await startApiServer();
  try {
    const garbage = await pushBlob(server.url, 'app', randomBytes(100));
    const readOnly = { ...everySecond, storage: { maintenance: { readonly: { enabled: true } } } };
    const config = validateConfig(readOnly, 'test');
    const maintenance = startMaintenance(server.registry, config, createSilentLogger());
    await sleep(1500);
    await maintenance.stop();

    assert.ok((await blobFiles(server.root)).includes(garbage));
    assert.equal(await server.registry.metadata.getLease('gc'), undefined);
  } finally {
    await server.close();
  }
});
