import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RegistryError } from '../../src/errors/registry-error.js';
import { parseRange } from '../../src/http/handlers/blobs.js';
import { parseContentRange } from '../../src/http/request-body.js';
import { matchRoute } from '../../src/http/router.js';

const digest = `sha256:${'a'.repeat(64)}`;
const uuid = '3f2c1b9e-8d4a-4c6f-9e1d-2b7a5c8d0e1f';

/** Asserts a RegistryError with `code` (and `status`, when given). */
function throwsCode(call: () => unknown, code: string, status?: number): RegistryError {
  let caught: unknown;
  assert.throws(call, (error: unknown) => {
    caught = error;
    return true;
  });
  assert.ok(caught instanceof RegistryError, String(caught));
  assert.equal(caught.code, code);
  if (status !== undefined) assert.equal(caught.status, status);
  return caught;
}

test('router: /v2 and /v2/ are the base route', () => {
  assert.deepEqual(matchRoute('/v2/'), { kind: 'base' });
  assert.deepEqual(matchRoute('/v2'), { kind: 'base' });
});

test('router: /v2/_catalog is the catalog', () => {
  assert.deepEqual(matchRoute('/v2/_catalog'), { kind: 'catalog' });
});

test('router: manifests by tag and digest, with nested names', () => {
  assert.deepEqual(matchRoute('/v2/a/manifests/latest'), {
    kind: 'manifest',
    name: 'a',
    reference: 'latest',
  });
  assert.deepEqual(matchRoute('/v2/a/b/c/manifests/latest'), {
    kind: 'manifest',
    name: 'a/b/c',
    reference: 'latest',
  });
  assert.deepEqual(matchRoute(`/v2/a/b/manifests/${digest}`), {
    kind: 'manifest',
    name: 'a/b',
    reference: digest,
  });
});

test('router: a percent-encoded digest reference is decoded', () => {
  const encoded = digest.replace(':', '%3A');
  assert.deepEqual(matchRoute(`/v2/a/manifests/${encoded}`), {
    kind: 'manifest',
    name: 'a',
    reference: digest,
  });
  assert.deepEqual(matchRoute(`/v2/a/blobs/${encoded}`), { kind: 'blob', name: 'a', digest });
});

test('router: a malformed percent escape is left as it is', () => {
  assert.deepEqual(matchRoute('/v2/a/manifests/%E0%A4%A'), {
    kind: 'manifest',
    name: 'a',
    reference: '%E0%A4%A',
  });
});

test('router: names are never percent-decoded', () => {
  assert.deepEqual(matchRoute('/v2/a%2Fb/manifests/latest'), {
    kind: 'manifest',
    name: 'a%2Fb',
    reference: 'latest',
  });
});

test('router: blobs by digest, with nested names', () => {
  assert.deepEqual(matchRoute(`/v2/a/blobs/${digest}`), { kind: 'blob', name: 'a', digest });
  assert.deepEqual(matchRoute(`/v2/a/b/c/blobs/${digest}`), {
    kind: 'blob',
    name: 'a/b/c',
    digest,
  });
});

test('router: a name containing "blobs" or "manifests" keeps them', () => {
  assert.deepEqual(matchRoute(`/v2/x/blobs/y/blobs/${digest}`), {
    kind: 'blob',
    name: 'x/blobs/y',
    digest,
  });
  assert.deepEqual(matchRoute('/v2/blobs/manifests/manifests/v1'), {
    kind: 'manifest',
    name: 'blobs/manifests',
    reference: 'v1',
  });
  assert.deepEqual(matchRoute(`/v2/x/blobs/uploads/blobs/uploads/${uuid}`), {
    kind: 'upload',
    name: 'x/blobs/uploads',
    id: uuid,
  });
  assert.deepEqual(matchRoute('/v2/tags/list/tags/list'), { kind: 'tags', name: 'tags/list' });
});

test('router: upload sessions are started with or without the trailing slash', () => {
  assert.deepEqual(matchRoute('/v2/a/blobs/uploads/'), { kind: 'uploads', name: 'a' });
  assert.deepEqual(matchRoute('/v2/a/blobs/uploads'), { kind: 'uploads', name: 'a' });
  assert.deepEqual(matchRoute('/v2/a/b/blobs/uploads/'), { kind: 'uploads', name: 'a/b' });
});

test('router: an upload session is addressed by its id', () => {
  assert.deepEqual(matchRoute(`/v2/a/blobs/uploads/${uuid}`), {
    kind: 'upload',
    name: 'a',
    id: uuid,
  });
  assert.deepEqual(matchRoute(`/v2/a/b/c/blobs/uploads/${uuid}`), {
    kind: 'upload',
    name: 'a/b/c',
    id: uuid,
  });
});

test('router: tags list and referrers, with nested names', () => {
  assert.deepEqual(matchRoute('/v2/a/b/tags/list'), { kind: 'tags', name: 'a/b' });
  assert.deepEqual(matchRoute(`/v2/a/b/referrers/${digest}`), {
    kind: 'referrers',
    name: 'a/b',
    digest,
  });
});

test('router: unknown paths match no route', () => {
  const unknown = [
    '/',
    '/v1/',
    '/v2x',
    '/v3/a/manifests/latest',
    '/v2/_catalog/x',
    '/v2/a',
    '/v2/a/b',
    '/v2/a/manifests',
    '/v2/a/manifests/',
    '/v2/a/manifests/latest/x',
    '/v2//manifests/latest',
    '/v2/a/blobs/',
    `/v2/a/blobs/uploads/${uuid}/`,
    '/v2/a/tags',
    '/v2/a/tags/list/',
    '/v2/a/referrers/',
  ];
  for (const path of unknown) assert.equal(matchRoute(path), undefined, path);
});

test('content-range: start-end with or without a unit and a length', () => {
  assert.deepEqual(parseContentRange('0-99'), { start: 0, end: 99 });
  assert.deepEqual(parseContentRange('bytes 0-99/100'), { start: 0, end: 99 });
  assert.deepEqual(parseContentRange('bytes 100-199/*'), { start: 100, end: 199 });
  assert.deepEqual(parseContentRange('bytes=0-99'), { start: 0, end: 99 });
  assert.deepEqual(parseContentRange(' 5-5 '), { start: 5, end: 5 });
});

test('content-range: an absent header is undefined', () => {
  assert.equal(parseContentRange(undefined), undefined);
});

test('content-range: a malformed header answers BLOB_UPLOAD_INVALID', () => {
  const malformed = ['', '0', '0-', '-99', 'a-b', 'bytes 0-99/', 'bytes0-99', '0-99-1', '1e2-200'];
  for (const value of malformed) {
    const error = throwsCode(() => parseContentRange(value), 'BLOB_UPLOAD_INVALID', 400);
    assert.match(error.message, /Invalid Content-Range ".*": expected <start>-<end>/);
  }
});

test('content-range: an end before the start answers RANGE_INVALID', () => {
  const error = throwsCode(() => parseContentRange('100-99'), 'RANGE_INVALID', 416);
  assert.match(error.message, /"100-99"/);
});

test('range: bytes=first-last is inclusive', () => {
  assert.deepEqual(parseRange('bytes=0-9', 100), { start: 0, end: 9 });
  assert.deepEqual(parseRange('bytes=99-99', 100), { start: 99, end: 99 });
});

test('range: an open-ended range runs to the last byte', () => {
  assert.deepEqual(parseRange('bytes=10-', 100), { start: 10, end: 99 });
});

test('range: a suffix range takes the last bytes', () => {
  assert.deepEqual(parseRange('bytes=-5', 100), { start: 95, end: 99 });
  assert.deepEqual(parseRange('bytes=-500', 100), { start: 0, end: 99 });
});

test('range: a last byte beyond the end is clamped to the blob', () => {
  assert.deepEqual(parseRange('bytes=90-1000', 100), { start: 90, end: 99 });
});

test('range: a range beyond the end answers 416 with bytes */size', () => {
  for (const header of ['bytes=100-', 'bytes=100-200', 'bytes=-0', 'bytes=5-3']) {
    const error = throwsCode(() => parseRange(header, 100), 'RANGE_INVALID', 416);
    assert.deepEqual(error.headers, { 'Content-Range': 'bytes */100' });
  }
  const empty = throwsCode(() => parseRange('bytes=0-', 0), 'RANGE_INVALID', 416);
  assert.deepEqual(empty.headers, { 'Content-Range': 'bytes */0' });
});

test('range: an absent, garbled or multi-range header means the whole blob', () => {
  const whole = [undefined, '', 'bytes=', 'bytes=-', 'items=0-9', 'bytes=a-b', 'bytes=0-9,20-29'];
  for (const header of whole) assert.equal(parseRange(header, 100), undefined, header);
});
