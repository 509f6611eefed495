/**
 * Buffers of 1 MiB that blobs stream through, kept between requests in this
 * thread: pulls read into them (http/send-blob.ts) and uploads copy into
 * them (file-sink.ts).
 *
 * A buffer made for one request and then dropped is external memory that V8
 * frees only after tens of MB of such memory piled up, and counting it
 * towards the old generation's limit makes V8 mark the whole heap again and
 * again meanwhile: 8 connections pulling raised peak memory by about 40 MB
 * before pulls kept their buffers (docs/performance.md). At most
 * `spareCount` wait here, 16 MiB per thread.
 */

export const spareSize = 1 << 20;
const spareCount = 16;
const spares: Buffer[] = [];

/** A buffer of `size` bytes; a spare one when `size` is `spareSize`. */
export function takeBuffer(size = spareSize): Buffer {
  if (size === spareSize) return spares.pop() ?? Buffer.allocUnsafeSlow(size);
  return Buffer.allocUnsafeSlow(size);
}

/** Only for buffers no read or write refers to any longer. */
export function returnBuffers(buffers: Iterable<Buffer>): void {
  for (const buffer of buffers) {
    if (buffer.length === spareSize && spares.length < spareCount) spares.push(buffer);
  }
}
