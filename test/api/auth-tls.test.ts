import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { connect, constants } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { runCertCommand } from '../../src/cli/cert.js';
import { authDirectory, basic, htpasswdText, testUsers, writeFiles } from '../support/auth.js';
import { startApiServer, type ApiServer } from '../support/api-server.js';
import { randomBlob } from '../support/oci-client.js';

/**
 * HTTPS: HTTP/1.1 and HTTP/2 on one port with a certificate from
 * `berth cert create`, TLS 1.2 at least, client certificates when
 * `http.tls.clientcas` is set, and token realms that say https.
 */

const openssl = promisify(execFile);
let dir: string;
let ca: Buffer;
let client: { cert: Buffer; key: Buffer };

before(async () => {
  dir = await authDirectory();
  await runCertCommand(['create', '--hosts', 'localhost,127.0.0.1', '--out', dir]);
  ca = await readFile(join(dir, 'registry.crt'));
  client = await makeClientCertificate(dir);
  await writeFiles(dir, { htpasswd: htpasswdText(testUsers) });
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A client CA and a certificate it signed, with openssl. */
async function makeClientCertificate(where: string) {
  const file = (name: string) => join(where, name);
  // prettier-ignore
  await openssl('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
    '-nodes', '-keyout', file('client-ca.key'), '-out', file('client-ca.crt'), '-days', '2', '-subj', '/CN=client-ca']);
  // prettier-ignore
  await openssl('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
    '-nodes', '-keyout', file('client.key'), '-out', file('client.csr'), '-subj', '/CN=ci-client']);
  // prettier-ignore
  await openssl('openssl', ['x509', '-req', '-in', file('client.csr'), '-CA', file('client-ca.crt'),
    '-CAkey', file('client-ca.key'), '-CAcreateserial', '-out', file('client.crt'), '-days', '2']);
  return { cert: await readFile(file('client.crt')), key: await readFile(file('client.key')) };
}

function tlsConfig(extra: Record<string, unknown> = {}) {
  return { certificate: join(dir, 'registry.crt'), key: join(dir, 'registry.key'), ...extra };
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  protocol: string;
}

/** An HTTP/1.1 request over TLS with the given trust and client options. */
function http1(url: string, options: Record<string, unknown> = {}, method = 'GET', body?: Buffer) {
  return new Promise<Answer>((resolve, reject) => {
    const req = httpsRequest(url, { method, ca, agent: false, ...options }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks),
          protocol: `HTTP/${res.httpVersion}`,
        }),
      );
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** One HTTP/2 request on its own session. */
function http2(
  base: string,
  path: string,
  method = 'GET',
  body?: Buffer,
  headers: Record<string, string> = {},
) {
  return new Promise<Answer>((resolve, reject) => {
    const session = connect(base, { ca });
    session.on('error', reject);
    const stream = session.request({ ':method': method, ':path': path, ...headers });
    const chunks: Buffer[] = [];
    let status = 0;
    let received: Record<string, string | string[] | undefined> = {};
    stream.on('response', (head) => {
      status = Number(head[constants.HTTP2_HEADER_STATUS]);
      received = head;
    });
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => {
      session.close();
      resolve({ status, headers: received, body: Buffer.concat(chunks), protocol: 'HTTP/2' });
    });
    stream.on('error', reject);
    stream.end(body);
  });
}

describe('auth tls: HTTPS with HTTP/2 and HTTP/1.1', () => {
  let server: ApiServer;
  before(async () => {
    server = await startApiServer({ http: { tls: tlsConfig() } });
  });
  after(() => server.close());

  test('auth tls: HTTP/1.1 over TLS answers /v2/ with the API version header', async () => {
    const reply = await http1(`${server.url}/v2/`);
    assert.equal(reply.status, 200);
    assert.equal(reply.protocol, 'HTTP/1.1');
    assert.equal(reply.headers['docker-distribution-api-version'], 'registry/2.0');
  });

  test('auth tls: a blob pushed and pulled over HTTP/2 comes back intact', async () => {
    const blob = randomBlob(300_000);
    const push = await http2(
      server.url,
      `/v2/h2/app/blobs/uploads/?digest=${blob.digest}`,
      'POST',
      blob.bytes,
      {
        'content-type': 'application/octet-stream',
      },
    );
    assert.equal(push.status, 201, push.body.toString());
    const pull = await http2(server.url, `/v2/h2/app/blobs/${blob.digest}`);
    assert.equal(pull.status, 200);
    assert.ok(pull.body.equals(blob.bytes));
    const missing = await http2(server.url, `/v2/h2/app/blobs/sha256:${'0'.repeat(64)}`);
    assert.equal(missing.status, 404);
  });

  test('auth tls: a client that does not trust the certificate is refused', async () => {
    await assert.rejects(http1(`${server.url}/v2/`, { ca: undefined }), /self.signed|certificate/i);
  });

  test('auth tls: TLS 1.1 is refused', async () => {
    await assert.rejects(
      http1(`${server.url}/v2/`, { maxVersion: 'TLSv1.1', minVersion: 'TLSv1' }),
      /version|protocol|handshake|alert/i,
    );
  });

  test('auth tls: the certificate names localhost and 127.0.0.1', async () => {
    const url = server.url.replace('127.0.0.1', 'localhost');
    assert.equal((await http1(`${url}/v2/`)).status, 200);
  });
});

describe('auth tls: client certificates', () => {
  let server: ApiServer;
  before(async () => {
    server = await startApiServer({
      http: { tls: tlsConfig({ clientcas: [join(dir, 'client-ca.crt')] }) },
    });
  });
  after(() => server.close());

  test('auth tls: with clientcas, a client without a certificate is refused', async () => {
    await assert.rejects(
      http1(`${server.url}/v2/`),
      /certificate|alert|socket hang up|ECONNRESET/i,
    );
  });

  test('auth tls: with clientcas, a certificate of that CA is accepted', async () => {
    const reply = await http1(`${server.url}/v2/`, { cert: client.cert, key: client.key });
    assert.equal(reply.status, 200);
  });
});

describe('auth tls: options', () => {
  test('auth tls: http2.disabled serves HTTP/1.1 only', async () => {
    const server = await startApiServer({ http: { tls: tlsConfig(), http2: { disabled: true } } });
    try {
      assert.equal((await http1(`${server.url}/v2/`)).status, 200);
      await assert.rejects(http2(server.url, '/v2/'));
    } finally {
      await server.close();
    }
  });

  test('auth tls: minimumtls tls1.3 refuses TLS 1.2 clients', async () => {
    const server = await startApiServer({ http: { tls: tlsConfig({ minimumtls: 'tls1.3' }) } });
    try {
      await assert.rejects(http1(`${server.url}/v2/`, { maxVersion: 'TLSv1.2' }));
      assert.equal((await http1(`${server.url}/v2/`)).status, 200);
    } finally {
      await server.close();
    }
  });

  test('auth tls: the token realm is https when the client came over TLS', async () => {
    const auth = { htpasswd: { path: join(dir, 'htpasswd') }, tokenservice: { enabled: true } };
    const server = await startApiServer({ http: { tls: tlsConfig() }, auth });
    try {
      const challenge = await http1(`${server.url}/v2/`);
      assert.equal(challenge.status, 401);
      const realm = `${server.url}/auth/token`;
      assert.match(String(challenge.headers['www-authenticate']), new RegExp(`realm="${realm}"`));
      const token = await http1(`${realm}?service=berth`, {
        headers: basic('alice', testUsers.alice),
      });
      assert.equal(token.status, 200);
      const h2 = await http2(server.url, '/v2/', 'GET', undefined, basic('alice', testUsers.alice));
      assert.equal(h2.status, 200);
    } finally {
      await server.close();
    }
  });
});
