import type { ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { BlobFile, ByteRange } from '../storage/blob-store.js';
import { largeSpareSize, returnBuffers, spareSize, takeBuffer } from '../storage/spare-buffers.js';
import type { RequestContext } from './context.js';
import type { Headers } from './respond.js';

/**
 * Writes a blob's bytes to the response. With a driver that reads by
 * position, two buffers take turns: one is read into while the socket takes
 * the other, and a buffer is reused only once the socket has taken all of
 * it (one buffer when several pulls run at once, see `oneBufferFrom`). A
 * pull then allocates nothing per chunk, which keeps memory flat and the
 * garbage collector idle however many bytes go out. The buffers are
 * no larger than the blob: a 1 KiB layer needs no 2 MiB to go out.
 */

/** Opens the blob first, so that a missing file is still an error response, then writes it. */
export async function sendBlob(
  ctx: RequestContext,
  digest: string,
  range: ByteRange,
  status: number,
  headers: Headers,
) {
  const file = await ctx.registry.blobs.open(digest);
  if (!file) {
    const source = await ctx.registry.blobs.read(digest, range);
    ctx.res.writeHead(status, headers);
    await pipeline(source, ctx.res, { signal: ctx.signal });
    return;
  }
  try {
    ctx.res.writeHead(status, headers);
    await copyRange(file, range, ctx.res, ctx.signal);
  } finally {
    await file.close();
  }
}

/** Pulls copying bytes in this thread now. */
let pullsUnderWay = 0;

/**
 * From this many pulls at once, each reads only after its socket took the
 * last chunk: the pulls keep the disk and the sockets busy for one another,
 * so the second buffer bought nothing but memory. Eight pulls of 256 MiB:
 * 3,350 to 3,540 MB/s with one buffer each against 3,300 to 3,600 with
 * two, and peak memory 7 to 8 MiB above the pulls before instead of 18 to
 * 26 MiB (docs/performance.md).
 */
const oneBufferFrom = 3;

async function copyRange(
  file: BlobFile,
  range: ByteRange,
  res: ServerResponse,
  signal: AbortSignal,
) {
  pullsUnderWay++;
  try {
    await copyThroughBuffers(file, range, res, signal, pullsUnderWay < oneBufferFrom ? 2 : 1);
  } finally {
    pullsUnderWay--;
  }
}

async function copyThroughBuffers(
  file: BlobFile,
  range: ByteRange,
  res: ServerResponse,
  signal: AbortSignal,
  count: 1 | 2,
) {
  let remaining = range.end - range.start + 1;
  const largest = count === 2 ? largeSpareSize : spareSize;
  const chunkSize = Math.max(1, Math.min(largest, remaining));
  const buffers = Array.from({ length: count }, () => takeBuffer(chunkSize));
  let position = range.start;
  let turn = 0;
  const readNext = () => file.read(buffers[turn]!, Math.min(chunkSize, remaining), position);
  let reading = readNext();

  while (remaining > 0) {
    const read = await reading;
    if (read === 0) throw new Error(`Blob ended ${remaining} bytes early at byte ${position}`);
    const current = buffers[turn]!.subarray(0, read);
    position += read;
    remaining -= read;
    turn = (turn + 1) % count;
    // With two buffers the next read fills the other while the socket takes this one.
    if (count === 2 && remaining > 0) reading = readNext();
    await writeChunk(res, current, signal);
    if (count === 1 && remaining > 0) reading = readNext();
  }
  res.end();
  // Only here is every write done: after a failure the socket or a read may
  // still hold a buffer, which is then left to the collector.
  returnBuffers(buffers);
}

/** Resolves once the socket has taken the whole chunk, so its buffer may be reused. */
function writeChunk(res: ServerResponse, chunk: Buffer, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise((resolve, reject) => {
    res.write(chunk, (error) => (error ? reject(error) : resolve()));
  });
}
