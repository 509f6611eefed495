import { randomUUID, type Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { RegistryError } from '../errors/registry-error.js';
import type { BlobRecord, MetadataStore, UploadSession } from '../metadata/metadata-store.js';
import type { BlobStore } from '../storage/blob-store.js';
import { createDigester, digestOf, requireDigest, type DigestAlgorithm } from './digest.js';
import { HashingStream, readAnnouncedBody } from './hashing-stream.js';
import { exceedsQuota, Quotas, quotaError } from './quotas.js';

/**
 * Blob upload sessions (OCI distribution spec, "Pushing blobs"): POST opens a
 * session, PATCH appends in order, PUT with the digest verifies and commits,
 * DELETE cancels. Sessions live in the metadata store and their bytes in the
 * blob store's staging area, so a session survives a restart and can go on
 * at another instance.
 */

export interface UploadStatus {
  session: UploadSession;
  /** Bytes received so far. */
  size: number;
  /** Whether the blob store holds a staging area for it yet. */
  staged: boolean;
}

export interface ChunkOptions {
  /** From `Content-Range`: the first byte of this chunk, which must be the current size. */
  start?: number;
  /** From `Content-Range` or `Content-Length`: the exact number of bytes in this chunk. */
  length?: number;
  signal?: AbortSignal;
}

/** The running hash of a session, kept between its requests in this serving thread. */
interface HashState {
  hash: Hash;
  size: number;
}

/** Enough for every upload in flight; an evicted state is rebuilt from the staged bytes. */
const maxHashStates = 4096;

/**
 * A session that nothing was staged for, completed by a body of at most
 * this many announced bytes, is read in memory and written once
 * (#completeSmall). Most images' configs and many layers are this small.
 */
const SMALL_BLOB_BYTES = 64 << 10;

export class UploadService {
  readonly #blobs: BlobStore;
  readonly #metadata: MetadataStore;
  readonly #quotas: Quotas;
  readonly #hashes = new Map<string, HashState>();
  /** Sessions with a request writing to them now, in this serving thread. */
  readonly #busy = new Set<string>();

  constructor(blobs: BlobStore, metadata: MetadataStore, quotas = new Quotas()) {
    this.#blobs = blobs;
    this.#metadata = metadata;
    this.#quotas = quotas;
  }

  async start(repository: string): Promise<UploadSession> {
    const now = Date.now();
    const session = { id: randomUUID(), repository, startedAt: now, updatedAt: now };
    await this.#metadata.createUpload(session);
    return session;
  }

  /** The staging area appears with the first bytes: until then the session holds none. */
  async status(repository: string, id: string): Promise<UploadStatus> {
    const session = await this.#find(repository, id);
    const staged = await this.#blobs.uploadSize(id);
    return { session, size: staged ?? 0, staged: staged !== undefined };
  }

  /** Appends a chunk in order; answers 416 with the current range when it is not. */
  async append(
    repository: string,
    id: string,
    body: Readable,
    options: ChunkOptions = {},
  ): Promise<{ size: number; received: number }> {
    return this.#exclusive(id, async () => {
      const { size } = await this.status(repository, id);
      if (options.start !== undefined && options.start !== size) throw outOfOrder(id, size);
      const newSize = await this.#appendHashed(id, size, body, options);
      await this.#metadata.touchUpload(id, Date.now());
      return { size: newSize, received: newSize - size };
    });
  }

  /**
   * Finishes a session: appends the optional last chunk, verifies the digest
   * over every byte received, then commits and links the blob (#finish).
   */
  async complete(
    repository: string,
    id: string,
    digest: string,
    body: Readable | undefined,
    options: ChunkOptions = {},
  ): Promise<BlobRecord> {
    const { algorithm } = requireDigest(digest);
    return this.#exclusive(id, async () => {
      const status = await this.status(repository, id);
      let { size } = status;
      if (options.start !== undefined && options.start !== size) throw outOfOrder(id, size);
      const small = options.length !== undefined && options.length <= SMALL_BLOB_BYTES;
      if (size === 0 && (!body || small)) {
        const blob = await this.#completeSmall(repository, id, digest, algorithm, body, options);
        // An empty staging area, left by a PATCH without bytes.
        if (status.staged) await this.#blobs.abortUpload(id);
        return blob;
      }
      if (body) size = await this.#appendHashed(id, size, body, options);
      const actual = await this.#finalDigest(id, size, algorithm);
      return this.#finish(repository, id, { digest, size }, actual, () => this.#commit(id, digest));
    });
  }

  /**
   * A session with nothing staged, completed by a small body or none: the
   * body is read whole, verified, and written to its digest in one durable
   * write (BlobStore.write), never staged: no staging file to create, open,
   * flush and rename, and no stream pipeline. Pushing small images with 16
   * pushers went from 220 and 199 to 263 and 241 images/s (fresh servers,
   * alternating; docs/performance.md).
   */
  async #completeSmall(
    repository: string,
    id: string,
    digest: string,
    algorithm: DigestAlgorithm,
    body: Readable | undefined,
    options: ChunkOptions,
  ): Promise<BlobRecord> {
    const bytes = body ? await readAnnouncedBody(body, options.length ?? 0) : Buffer.alloc(0);
    const actual = digestOf(bytes, algorithm);
    const blob = { digest, size: bytes.length };
    return this.#finish(repository, id, blob, actual, () => this.#blobs.write(digest, bytes));
  }

  /**
   * The end of both ways of completing. A digest that does not match what
   * was received cancels the session, as Distribution does; a blob past
   * the repository's quota is refused. Otherwise the blob is claimed, its
   * bytes land (`land`), and it is linked.
   */
  async #finish(
    repository: string,
    id: string,
    blob: BlobRecord,
    actual: string,
    land: () => Promise<void>,
  ): Promise<BlobRecord> {
    if (actual !== blob.digest) {
      await this.#discard(id);
      throw new RegistryError(
        'DIGEST_INVALID',
        `Digest mismatch: the ${blob.size} bytes received hash to "${actual}", not "${blob.digest}"`,
      );
    }
    const limit = this.#quotas.limitFor(repository);
    if (limit !== undefined) await this.#refuseOverQuota(repository, id, blob, limit);
    // Claimed first: a collection removing the same digest now finishes
    // before the bytes land, or keeps them (MetadataStore.claimBlob).
    await this.#metadata.claimBlob(blob);
    await land();
    const refusal = await this.#link(repository, blob, limit, id);
    this.#hashes.delete(id);
    if (refusal) throw refusal;
    return blob;
  }

  async cancel(repository: string, id: string): Promise<void> {
    await this.#find(repository, id);
    await this.#exclusive(id, () => this.#discard(id));
  }

  /**
   * Cross-repository mount: links a blob from `from`, or from anywhere in
   * the registry when `from` is absent. Undefined when it cannot be mounted,
   * in which case the caller opens an ordinary upload.
   */
  async mount(repository: string, digest: string, from?: string): Promise<BlobRecord | undefined> {
    const limit = this.#quotas.limitFor(repository);
    if (limit === undefined) return this.#mountChecked(repository, digest, from);
    const blob = from
      ? await this.#metadata.getLinkedBlob(from, digest)
      : await this.#metadata.findBlob(digest);
    if (!blob) return undefined;
    if ((await this.#blobs.stat(digest)) === undefined) return undefined;
    const refusal = await this.#link(repository, blob, limit);
    // A blob collected since it was found cannot be mounted: upload it instead.
    if (refusal?.code === 'BLOB_UNKNOWN') return undefined;
    if (refusal) throw refusal;
    return blob;
  }

  /**
   * The source is checked and the link made in one transaction, so that a
   * collection removing the source's last link cannot slip in between.
   */
  async #mountChecked(repository: string, digest: string, from: string | undefined) {
    if ((await this.#blobs.stat(digest)) === undefined) return undefined;
    return this.#metadata.mountBlob(repository, digest, from);
  }

  /** A session purged or its repository deleted meanwhile leaves nothing to commit. */
  async #commit(id: string, digest: string): Promise<void> {
    try {
      await this.#blobs.commitUpload(id, digest);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw unknownUpload(id);
      throw error;
    }
  }

  /**
   * The quota's check before committing: a blob that would take the
   * repository past its quota is refused and its staged bytes discarded.
   *
   * Limitation: the refusal comes once every byte of the blob was received
   * and hashed: the digest, which says whether the repository holds the
   * blob already, is known only then.
   */
  async #refuseOverQuota(repository: string, id: string, blob: BlobRecord, limit: number) {
    const usage = await this.#metadata.measureStoredBytes(repository, blob.digest);
    if (!exceedsQuota(usage, blob.size, limit)) return;
    await this.#discard(id);
    throw quotaError(repository, 'blob', blob.size, limit, usage.storedBytes);
  }

  /**
   * Links the blob, or returns the quota's refusal. Under a quota the check
   * is made again in the linking transaction, so that layers pushed in
   * parallel cannot pass the quota together. A blob refused there was
   * committed already: its bytes, unless another repository links them,
   * are unreferenced, and garbage collection frees them. `endingUpload`,
   * the session that delivered the blob, is deleted either way, in the
   * linking transaction when there is no quota.
   */
  async #link(
    repository: string,
    blob: BlobRecord,
    limit: number | undefined,
    endingUpload?: string,
  ): Promise<RegistryError | undefined> {
    if (limit === undefined) {
      await this.#metadata.linkBlob(repository, blob, endingUpload);
      return undefined;
    }
    const result = await this.#metadata.linkBlobWithinQuota(repository, blob, limit);
    if (endingUpload !== undefined) await this.#metadata.deleteUpload(endingUpload);
    if (result.ok) return undefined;
    if ('gone' in result) {
      return new RegistryError('BLOB_UNKNOWN', `Blob "${blob.digest}" was removed meanwhile`);
    }
    return quotaError(repository, 'blob', blob.size, limit, result.storedBytes);
  }

  async #find(repository: string, id: string): Promise<UploadSession> {
    const session = /^[a-f0-9-]{36}$/.test(id) ? await this.#metadata.getUpload(id) : undefined;
    if (!session || session.repository !== repository) throw unknownUpload(id);
    return session;
  }

  async #appendHashed(id: string, size: number, body: Readable, options: ChunkOptions) {
    const state = await this.#hashState(id, size);
    const hashing = new HashingStream(state.hash.copy(), options.length);
    // A failure on either side destroys both; it surfaces through `hashing`.
    pipeline(body, hashing).catch(() => undefined);
    const newSize = await this.#blobs.appendUpload(id, size, hashing, options.signal);
    this.#remember(id, { hash: hashing.hash, size: newSize });
    return newSize;
  }

  /**
   * The running sha256 of the staged bytes, rebuilt from storage when this
   * serving thread lacks it.
   *
   * Limitation: when two serving threads or instances receive chunks of the
   * same upload session, the second rebuilds the hash by reading everything
   * staged so far. Clients send one session's chunks over one connection,
   * which stays with one thread, so this costs little in practice.
   */
  async #hashState(id: string, size: number): Promise<HashState> {
    const known = this.#hashes.get(id);
    if (known && known.size === size) return known;
    const hash = createDigester('sha256');
    if (size === 0) return { hash, size };
    let count = 0;
    for await (const chunk of await this.#blobs.readUpload(id)) {
      hash.update(chunk as Buffer);
      count += (chunk as Buffer).length;
    }
    if (count !== size) throw new Error(`Upload "${id}" changed while it was read`);
    return { hash, size };
  }

  async #finalDigest(id: string, size: number, algorithm: DigestAlgorithm): Promise<string> {
    if (algorithm === 'sha256') {
      const state = await this.#hashState(id, size);
      return `sha256:${state.hash.copy().digest('hex')}`;
    }
    const hash = createDigester(algorithm);
    for await (const chunk of await this.#blobs.readUpload(id)) hash.update(chunk as Buffer);
    return `${algorithm}:${hash.digest('hex')}`;
  }

  #remember(id: string, state: HashState) {
    this.#hashes.delete(id);
    this.#hashes.set(id, state);
    if (this.#hashes.size > maxHashStates) {
      const oldest = this.#hashes.keys().next().value;
      if (oldest !== undefined) this.#hashes.delete(oldest);
    }
  }

  async #discard(id: string) {
    this.#hashes.delete(id);
    await this.#blobs.abortUpload(id);
    await this.#metadata.deleteUpload(id);
  }

  /**
   * One writer per session in this thread: two PATCHes at once would
   * interleave bytes. Across threads and instances, `appendUpload` refuses
   * a write that does not start at the staged size.
   */
  async #exclusive<T>(id: string, work: () => Promise<T>): Promise<T> {
    if (this.#busy.has(id)) {
      throw new RegistryError(
        'BLOB_UPLOAD_INVALID',
        `Upload "${id}" is busy: another request is writing to it`,
      );
    }
    this.#busy.add(id);
    try {
      return await work();
    } finally {
      this.#busy.delete(id);
    }
  }
}

function unknownUpload(id: string): RegistryError {
  return new RegistryError('BLOB_UPLOAD_UNKNOWN', `Upload "${id.slice(0, 80)}" is unknown here`);
}

function outOfOrder(id: string, size: number): RegistryError {
  return new RegistryError(
    'RANGE_INVALID',
    `Chunk out of order for upload "${id}": the next chunk must start at byte ${size}`,
    { status: 416, headers: { Range: `0-${Math.max(size - 1, 0)}` } },
  );
}
