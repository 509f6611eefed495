import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { scheduleRetention } from '../../src/cli/retention-schedule.js';
import { validateConfig } from '../../src/config/load.js';
import { startApiServer, type ApiServer } from '../support/api-server.js';
import { capturedLogger } from '../support/auth.js';
import { pushImage, request } from '../support/oci-client.js';

/** Retention's schedule in `berth serve`: runs every interval, as configured. */

let server: ApiServer;

before(async () => {
  server = await startApiServer();
});

after(() => server.close());

function configWith(retention: Record<string, unknown>) {
  const rules = [{ repositories: 'scheduled/**', keeplatest: 1 }];
  return validateConfig({ retention: { interval: '50ms', rules, ...retention } }, 'test');
}

async function tagsOf(name: string): Promise<string[]> {
  const reply = await request(`${server.url}/v2/${name}/tags/list`);
  return reply.json<{ tags: string[] }>().tags;
}

async function pushTags(name: string) {
  for (const tag of ['a', 'b', 'c']) {
    await pushImage(server.url, name, tag);
    await sleep(3);
  }
}

describe('retention schedule', () => {
  it('retention schedule: runs every interval until stopped', async () => {
    await pushTags('scheduled/app');
    const logs = capturedLogger();
    const stop = scheduleRetention(server.registry, configWith({}), logs.log);
    try {
      for (let waited = 0; waited < 3000 && (await tagsOf('scheduled/app')).length > 1;) {
        await sleep(25);
        waited += 25;
      }
      assert.deepEqual(await tagsOf('scheduled/app'), ['c']);
      await sleep(120);
      const runs = logs.lines.filter((line) => line.msg === 'retention run');
      assert.ok(runs.length >= 2, `${runs.length} runs`);
    } finally {
      stop();
    }
  });

  it('retention schedule: a dry run logs and removes nothing; disabled schedules nothing', async () => {
    await pushTags('scheduled/dry');
    const dry = capturedLogger();
    const stopDry = scheduleRetention(server.registry, configWith({ dryrun: true }), dry.log);
    const off = capturedLogger();
    const stopOff = scheduleRetention(server.registry, configWith({ enabled: false }), off.log);
    await sleep(200);
    stopDry();
    stopOff();

    assert.deepEqual(await tagsOf('scheduled/dry'), ['a', 'b', 'c']);
    const preview = dry.lines.find(
      (line) => line.msg === 'retention would remove' && line.repository === 'scheduled/dry',
    );
    assert.equal((preview?.tags as unknown[] | undefined)?.length, 2);
    assert.deepEqual(off.lines, []);
  });
});
