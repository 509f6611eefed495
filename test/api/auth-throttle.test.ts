import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { authDirectory, basic, htpasswdText, testUsers, writeFiles } from '../support/auth.js';
import { startApiServer, type ApiServer } from '../support/api-server.js';

/**
 * Failed logins from one address are slowed down, then refused with 429
 * TOOMANYREQUESTS and Retry-After, even with the right password; other
 * addresses are not affected. Each test uses its own loopback address.
 */

let server: ApiServer;
let dir: string;

before(async () => {
  dir = await authDirectory();
  await writeFiles(dir, { htpasswd: htpasswdText(testUsers) });
  const auth = {
    htpasswd: { path: join(dir, 'htpasswd') },
    tokenservice: { enabled: true },
    throttle: { slowafter: 2, blockafter: 4, window: '1m' },
  };
  server = await startApiServer({ auth });
});

after(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

interface Answer {
  status: number;
  retryAfter: string | undefined;
  body: string;
  ms: number;
}

/** A GET from a chosen local address (127.0.0.0/8 is all loopback on Linux). */
function getFrom(address: string, path: string, headers: Record<string, string>): Promise<Answer> {
  const { port } = new URL(server.url);
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, path, headers, localAddress: address, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            retryAfter: res.headers['retry-after'],
            body: Buffer.concat(chunks).toString(),
            ms: Date.now() - started,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const wrong = basic('alice', 'guess');
const right = basic('alice', testUsers.alice);

test('auth throttle: failures beyond slowafter are slowed, beyond blockafter answered 429', async () => {
  const address = '127.0.0.11';
  for (let i = 0; i < 2; i++) assert.equal((await getFrom(address, '/v2/', wrong)).status, 401);
  const slowed = await getFrom(address, '/v2/', wrong);
  assert.equal(slowed.status, 401);
  assert.ok(slowed.ms >= 240, `the third failure took ${slowed.ms} ms`);
  assert.equal((await getFrom(address, '/v2/', wrong)).status, 401);

  const blocked = await getFrom(address, '/v2/', wrong);
  assert.equal(blocked.status, 429);
  assert.equal(
    (JSON.parse(blocked.body) as { errors: { code: string }[] }).errors[0]?.code,
    'TOOMANYREQUESTS',
  );
  const seconds = Number(blocked.retryAfter);
  assert.ok(seconds > 50 && seconds <= 60, `Retry-After ${blocked.retryAfter}`);

  const evenRight = await getFrom(address, '/v2/', right);
  assert.equal(evenRight.status, 429, 'the right password waits too');
});

test('auth throttle: another address is not affected', async () => {
  for (let i = 0; i < 5; i++) await getFrom('127.0.0.12', '/v2/', wrong);
  const other = await getFrom('127.0.0.13', '/v2/', right);
  assert.equal(other.status, 200);
});

test('auth throttle: a success clears the address failures', async () => {
  const address = '127.0.0.14';
  for (let i = 0; i < 2; i++) await getFrom(address, '/v2/', wrong);
  assert.equal((await getFrom(address, '/v2/', right)).status, 200);
  const next = await getFrom(address, '/v2/', wrong);
  assert.ok(next.ms < 200, 'no pause after the slate was cleared');
});

test('auth throttle: the token endpoint counts failed logins too', async () => {
  const address = '127.0.0.15';
  const path = '/auth/token?service=berth&scope=repository:x:pull';
  for (let i = 0; i < 4; i++) assert.equal((await getFrom(address, path, wrong)).status, 401);
  const blocked = await getFrom(address, path, right);
  assert.equal(blocked.status, 429);
  assert.ok(blocked.retryAfter);
  assert.equal((await getFrom(address, '/v2/', right)).status, 429, 'shared with /v2/');
});
