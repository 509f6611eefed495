import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { request as httpRequest } from 'node:http';
import { after, test } from 'node:test';
import {
  addReachable,
  blobFiles,
  pullCompletely,
  pushMultiArch,
  pushReferrer,
} from '../support/gc-helpers.js';
import { pushBlob, pushImage, putManifest, request, sha256 } from '../support/oci-client.js';
import {
  createWorkDirectory,
  type RegistryProcess,
  removeWorkDirectory,
  sleep,
  startBerthOn,
  type StartedBerth,
} from '../support/registry-process.js';

/**
 * Crash safety of garbage collection (DESIGN.md, invariant 5): a real
 * `berth serve` is killed with SIGKILL in the middle of a collection, while
 * images are being pushed and a chunked upload streams in, then started
 * again on the same data. It must serve every complete image, show nothing
 * half-deleted, let the interrupted upload resume, and a collection run to
 * the end must then leave exactly what the tags reach.
 */

const graceMs = 1000;
const garbageBlobs = 2500;

let workDir: string | undefined;
after(async () => {
  if (workDir !== undefined) await removeWorkDirectory(workDir);
});

/** `berth serve` on the work directory's data, one serving thread, no scheduled maintenance. */
function startBerth(dir: string): Promise<StartedBerth> {
  return startBerthOn(dir, {
    REGISTRY_LOG_LEVEL: 'info',
    REGISTRY_SERVER_WORKERS: '1',
    REGISTRY_GC_ENABLED: 'false',
    REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_ENABLED: 'false',
  });
}

async function killHard(child: ChildProcess): Promise<void> {
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

/** A PATCH whose body trickles in until the server goes away; resolves with what was sent. */
function trickleUpload(url: string, bytes: Buffer): Promise<number> {
  return new Promise((resolve) => {
    const target = new URL(url);
    const req = httpRequest({
      hostname: target.hostname,
      port: target.port,
      path: target.pathname,
      method: 'PATCH',
      headers: { 'Content-Type': 'application/octet-stream' },
    });
    let sent = 0;
    const timer = setInterval(() => {
      if (sent >= bytes.length / 2) return;
      req.write(bytes.subarray(sent, sent + 64 * 1024));
      sent += 64 * 1024;
    }, 20);
    req.on('error', () => {
      clearInterval(timer);
      resolve(sent);
    });
    req.on('response', (res) => res.resume());
  });
}

test(
  'gc crash: SIGKILL in the middle of a collection and of pushes leaves a registry that serves every complete image',
  { timeout: 240_000 },
  async (t) => {
    workDir = await createWorkDirectory('gc-crash');
    const first = await startBerth(workDir);
    const base = first.registry.url;

    // What must survive: tagged images, a multi-arch index, a signature.
    await pushImage(base, 'crash/keep', 'v1');
    await pushImage(base, 'crash/keep', 'v2');
    const index = await pushMultiArch(base, 'crash/keep', 'multi');
    const signature = await pushReferrer(base, 'crash/keep', {
      ...index,
      mediaType: 'application/vnd.oci.image.index.v1+json',
    });

    // Garbage: many unreferenced blobs, untagged multi-arch indexes.
    const junk = Array.from({ length: garbageBlobs }, () => randomBytes(256));
    for (let start = 0; start < junk.length; start += 32) {
      await Promise.all(
        junk.slice(start, start + 32).map((bytes) => pushBlob(base, 'crash/junk', bytes)),
      );
    }
    const untagged = [];
    for (let i = 0; i < 5; i++) {
      untagged.push(await pushMultiArch(base, 'crash/old', `old-${i}`));
      await request(`${base}/v2/crash/old/manifests/old-${i}`, { method: 'DELETE' });
    }
    await sleep(graceMs + 100);

    // In flight at the kill: a chunked upload, and a loop of image pushes.
    const bigBlob = randomBytes(8 * 1024 * 1024);
    const session = await request(`${base}/v2/crash/resumed/blobs/uploads/`, { method: 'POST' });
    const sessionPath = session.headers.get('location') ?? '';
    const trickle = trickleUpload(`${base}${sessionPath}`, bigBlob);
    const pushed: string[] = [];
    let pushing = true;
    const failures: string[] = [];
    const pushLoop = (async () => {
      for (let n = 0; pushing; n++) {
        try {
          await pushImage(base, 'crash/live', `n${n}`);
          pushed.push(`n${n}`);
        } catch (error) {
          if (pushing) failures.push(String(error));
          return;
        }
      }
    })();
    while (pushed.length < 3) await sleep(10);

    const collection = request(`${base}/admin/v1/gc?grace=1s&untagged=true`, {
      method: 'POST',
    }).catch(() => undefined);
    const deadline = Date.now() + 30_000;
    while (!first.log.join('').includes('"kind":"blob"') && Date.now() < deadline) await sleep(5);
    // Pushes cut off by the kill are expected to fail: stop counting first.
    pushing = false;
    await killHard(first.child);
    await Promise.all([collection, pushLoop, trickle]);
    const logBefore = first.log.join('');
    assert.match(logBefore, /"msg":"gc removed"/, 'the collection had started removing');
    assert.doesNotMatch(
      logBefore,
      /"msg":"gc finished"/,
      'the kill came before the collection ended',
    );
    assert.deepEqual(failures, [], 'no push failed before the kill');
    t.diagnostic(
      `killed after ${(logBefore.match(/"msg":"gc removed"/g) ?? []).length} removals, ${pushed.length} pushes`,
    );

    const second = await startBerth(workDir);
    try {
      await verifyAfterRestart(second.registry.url, { index, signature, untagged, junk, pushed });
      await resumeUpload(second.registry.url, sessionPath, bigBlob);
      await sleep(graceMs + 100);
      const finished = await request(`${second.registry.url}/admin/v1/gc?grace=1s&untagged=true`, {
        method: 'POST',
      });
      assert.equal(finished.status, 200, finished.body.toString());
      await verifyOnlyReachableLeft(second.registry, pushed);
    } finally {
      await killHard(second.child);
    }
  },
);

async function verifyAfterRestart(
  base: string,
  state: {
    index: { digest: string };
    signature: { digest: string };
    untagged: { digest: string; children: { digest: string }[] }[];
    junk: Buffer[];
    pushed: string[];
  },
) {
  for (const tag of ['v1', 'v2', 'multi']) await pullCompletely(base, 'crash/keep', tag);
  await pullCompletely(base, 'crash/keep', state.signature.digest);
  for (const tag of state.pushed) await pullCompletely(base, 'crash/live', tag);

  // Half-deleted content must never be visible: what answers must be whole.
  for (const old of state.untagged) {
    const reply = await request(`${base}/v2/crash/old/manifests/${old.digest}`, { method: 'HEAD' });
    if (reply.status === 200) await pullCompletely(base, 'crash/old', old.digest);
    else assert.equal(reply.status, 404);
  }
  for (const bytes of state.junk) {
    const digest = sha256(bytes);
    const head = await request(`${base}/v2/crash/junk/blobs/${digest}`, { method: 'HEAD' });
    if (head.status !== 200) {
      assert.equal(head.status, 404);
      continue;
    }
    const got = await request(`${base}/v2/crash/junk/blobs/${digest}`);
    assert.equal(got.status, 200, `blob ${digest} is linked but its bytes are gone`);
    assert.equal(sha256(got.body), digest);
  }
}

/** Asks where the upload stands, sends the rest, commits it, and pushes an image of it. */
async function resumeUpload(base: string, sessionPath: string, bytes: Buffer) {
  const status = await request(`${base}${sessionPath}`);
  assert.equal(status.status, 204, 'the interrupted session survives the crash');
  const received = Number((status.headers.get('range') ?? '0-0').split('-')[1]) + 1;
  const offset = received > 1 ? received : 0;
  const rest = await request(`${base}${sessionPath}?digest=${sha256(bytes)}`, {
    method: 'PUT',
    body: bytes.subarray(offset),
    headers: {
      'Content-Type': 'application/octet-stream',
      'Content-Range': `${offset}-${bytes.length - 1}`,
    },
  });
  assert.equal(rest.status, 201, rest.body.toString());

  const config = Buffer.from('{"os":"linux","architecture":"amd64"}');
  await pushBlob(base, 'crash/resumed', config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: sha256(config),
        size: config.length,
      },
      layers: [
        {
          mediaType: 'application/vnd.oci.image.layer.v1.tar',
          digest: sha256(bytes),
          size: bytes.length,
        },
      ],
    }),
  );
  const reply = await putManifest(
    base,
    'crash/resumed',
    'v1',
    manifest,
    'application/vnd.oci.image.manifest.v1+json',
  );
  assert.equal(reply.status, 201, reply.body.toString());
  await pullCompletely(base, 'crash/resumed', 'v1');
}

/** After a complete collection the blob store holds what the tags reach, nothing else. */
async function verifyOnlyReachableLeft(registry: RegistryProcess, pushed: string[]) {
  const reachable = new Set<string>();
  const tags = [
    ...['v1', 'v2', 'multi'].map((tag) => ['crash/keep', tag] as const),
    ...pushed.map((tag) => ['crash/live', tag] as const),
    ['crash/resumed', 'v1'] as const,
  ];
  for (const [name, tag] of tags) await addReachable(registry.url, name, tag, reachable);
  assert.deepEqual(await blobFiles(registry.dataDir), [...reachable].sort());
}
