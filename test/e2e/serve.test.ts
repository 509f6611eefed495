import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { after, test } from 'node:test';
import { pushImage, request } from '../support/oci-client.js';
import {
  createWorkDirectory,
  removeWorkDirectory,
  sleep,
  startBerthOn,
  type StartedBerth,
} from '../support/registry-process.js';

/**
 * `berth serve` as a user runs it: one process whose serving threads share
 * the listening socket, and a shutdown that finishes what is in flight.
 */

const workDirs: string[] = [];
after(async () => {
  for (const dir of workDirs) await removeWorkDirectory(dir);
});

async function startBerth(workers: number): Promise<StartedBerth> {
  const dir = await createWorkDirectory('serve');
  workDirs.push(dir);
  const started = await startBerthOn(dir, { REGISTRY_SERVER_WORKERS: String(workers) });
  await waitForLine(started.log, '"berth is serving"');
  return started;
}

async function waitForLine(log: string[], text: string): Promise<string> {
  for (let i = 0; i < 300; i++) {
    const line = log
      .join('')
      .split('\n')
      .find((entry) => entry.includes(text));
    if (line !== undefined) return line;
    await sleep(100);
  }
  throw new Error(`No log line with ${text}:\n${log.join('')}`);
}

/** The pids of a process's child processes, from /proc. */
async function childProcessesOf(pid: number): Promise<string> {
  return (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8')).trim();
}

/** A PATCH whose body arrives in four parts over `ms`; resolves with its status. */
function slowPatch(url: string, ms: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const req = httpRequest({
      hostname: target.hostname,
      port: target.port,
      path: `${target.pathname}${target.search}`,
      method: 'PATCH',
      headers: { 'Content-Type': 'application/octet-stream' },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    let parts = 0;
    const timer = setInterval(() => {
      req.write(randomBytes(1000));
      if (++parts === 4) {
        clearInterval(timer);
        req.end();
      }
    }, ms / 4);
  });
}

test('serve: several serving threads in one process answer many connections at once', async () => {
  const { registry, child, log } = await startBerth(2);
  try {
    const started = JSON.parse(await waitForLine(log, '"berth is serving"')) as { workers: number };
    assert.equal(started.workers, 2);
    assert.equal(await childProcessesOf(child.pid as number), '', 'threads, not child processes');

    const pushes = Array.from({ length: 8 }, (_, i) =>
      pushImage(registry.url, `threads/image-${i}`, 'v1'),
    );
    const pings = Array.from({ length: 64 }, () => request(`${registry.url}/v2/`));
    for (const reply of await Promise.all(pings)) assert.equal(reply.status, 200);
    for (const [i, pushed] of (await Promise.all(pushes)).entries()) {
      const reply = await request(`${registry.url}/v2/threads/image-${i}/manifests/v1`, {
        headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' },
      });
      assert.equal(reply.status, 200);
      assert.equal(reply.headers.get('docker-content-digest'), pushed.digest);
    }
  } finally {
    await registry.stop();
  }
});

test('serve: SIGTERM finishes the upload in flight, turns new connections away and exits 0', async () => {
  for (const workers of [1, 2]) {
    const { registry, child, log } = await startBerth(workers);
    const started = await request(`${registry.url}/v2/drain/test/blobs/uploads/`, {
      method: 'POST',
    });
    assert.equal(started.status, 202);
    const location = new URL(started.headers.get('location') as string, registry.url).toString();

    const exited = once(child, 'exit');
    const patched = slowPatch(location, 1200);
    await sleep(300);
    child.kill('SIGTERM');
    await waitForLine(log, '"shutting down"');
    await assert.rejects(
      request(`${registry.url}/v2/`),
      `no new request with ${workers} thread(s)`,
    );

    assert.equal(await patched, 202, `the upload in flight finishes with ${workers} thread(s)`);
    const [code] = (await exited) as [number | null];
    assert.equal(code, 0);
  }
});
