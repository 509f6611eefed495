import { RegistryError } from '../errors/registry-error.js';
import type { ManifestRecord, MetadataStore } from '../metadata/metadata-store.js';
import type { BlobStore } from '../storage/blob-store.js';
import { digestOf, parseDigest } from './digest.js';
import { immutableTagError, ImmutableTags } from './immutable-tags.js';
import { ManifestCache } from './manifest-cache.js';
import { parseManifest, type Descriptor, type ParsedManifest } from './manifest.js';
import { manifestKind } from './media-types.js';
import type { Reference } from './names.js';
import { exceedsQuota, Quotas, quotaError } from './quotas.js';

/**
 * Manifests (OCI distribution spec, "Pushing manifests" and "Pulling
 * manifests"): accepted only when everything they reference is present in
 * the repository, served byte for byte as pushed.
 */

export interface PushedManifest {
  digest: string;
  subject: string | null;
}

export interface ServedManifest {
  record: ManifestRecord;
  bytes: Buffer;
}

/** The repository rules a manifest push obeys (src/registry/registry.ts builds them). */
export interface ManifestRules {
  immutableTags?: ImmutableTags;
  quotas?: Quotas;
}

export class ManifestService {
  readonly #blobs: BlobStore;
  readonly #metadata: MetadataStore;
  readonly #cache: ManifestCache;
  readonly #immutableTags: ImmutableTags;
  readonly #quotas: Quotas;

  constructor(
    blobs: BlobStore,
    metadata: MetadataStore,
    rules: ManifestRules = {},
    // Per serving thread: some ten thousand manifests of a typical 1 KiB.
    cacheBytes = 16 * 1024 * 1024,
  ) {
    this.#blobs = blobs;
    this.#metadata = metadata;
    this.#cache = new ManifestCache(cacheBytes);
    this.#immutableTags = rules.immutableTags ?? new ImmutableTags();
    this.#quotas = rules.quotas ?? new Quotas();
  }

  async put(
    repository: string,
    reference: Reference,
    bytes: Buffer,
    contentType: string | undefined,
  ): Promise<PushedManifest> {
    const parsed = parseManifest(bytes, contentType);
    const digest = digestFor(reference, bytes);
    const tag = reference.kind === 'tag' ? reference.tag : undefined;
    const immutableTag = tag !== undefined && this.#immutableTags.isImmutable(repository, tag);
    if (immutableTag) await this.#refuseMovingTag(repository, tag, digest);
    await this.#checkReferences(repository, parsed);
    await this.#checkQuota(repository, digest, bytes.length);

    // Claimed before written, as uploads do (MetadataStore.claimBlob).
    await this.#metadata.claimBlob({ digest, size: bytes.length });
    await this.#blobs.write(digest, bytes);
    const manifest = {
      digest,
      size: bytes.length,
      mediaType: parsed.mediaType,
      artifactType: parsed.artifactType,
      subject: parsed.subject,
      annotations: parsed.annotations,
      references: parsed.references,
    };
    const result = await this.#metadata.putManifest(repository, manifest, tag, { immutableTag });
    if (!result.ok && result.missing) throw missingReferences(result.missing.map((m) => m.digest));
    if (!result.ok) throw immutableTagError(repository, tag ?? '', result.tagDigest);
    // Not cached here: a pushed manifest's bytes share an 8 KiB slab of
    // Node's buffer pool with whatever came next, so every manifest pushed
    // kept a slab alive. Sixteen pushers of small images raised peak memory
    // by 15 to 17 MiB per run with the cache filled on push, by nothing
    // without it. The first pull reads the file and caches that.
    return { digest, subject: parsed.subject };
  }

  /** The manifest a reference names, without its bytes (for HEAD). */
  async resolve(repository: string, reference: Reference): Promise<ManifestRecord> {
    const record =
      reference.kind === 'tag'
        ? await this.#metadata.resolveTag(repository, reference.tag)
        : await this.#metadata.getManifest(repository, reference.digest);
    if (!record) throw unknownManifest(repository, reference);
    return record;
  }

  /**
   * The manifest with its bytes. When a client accepts only single-image
   * manifests and the reference names an index, the index's linux/amd64
   * image is served instead, as Distribution does for old clients.
   * `accept` lists the accepted media types; it is asked only for an index.
   */
  async get(
    repository: string,
    reference: Reference,
    accept: () => string[],
  ): Promise<ServedManifest> {
    const record = await this.resolve(repository, reference);
    const bytes = await this.#bytesOf(record.digest);
    if (!needsPlatformFallback(record.mediaType, accept)) return { record, bytes };

    const child = defaultPlatformChild(parseManifest(bytes, record.mediaType).descriptors);
    const childRecord = child && (await this.#metadata.getManifest(repository, child.digest));
    if (!childRecord) return { record, bytes };
    return { record: childRecord, bytes: await this.#bytesOf(childRecord.digest) };
  }

  /**
   * Deletes a tag, or a manifest with the tags on it (and with `referrers`
   * its referrers, recursively); resolves with the manifests deleted. A
   * manifest that an index still lists is refused: the index would break
   * (DESIGN.md, invariant 4).
   */
  async delete(
    repository: string,
    reference: Reference,
    { referrers = false }: { referrers?: boolean } = {},
  ): Promise<{ manifests: string[]; tags: number }> {
    if (reference.kind === 'tag') {
      if (await this.#metadata.deleteTag(repository, reference.tag)) {
        return { manifests: [], tags: 1 };
      }
      throw unknownManifest(repository, reference);
    }
    const result = await this.#metadata.deleteManifestTree(repository, reference.digest, {
      referrers,
    });
    if (result.ok) return { manifests: result.manifests, tags: result.tags };
    if (result.reason === 'unknown') throw unknownManifest(repository, reference);
    throw new RegistryError(
      'UNSUPPORTED',
      `Manifest "${repository}@${result.digest}" is listed by index "${result.index}": ` +
        'delete the index first',
      { status: 409, detail: { digest: result.digest, index: result.index } },
    );
  }

  async #bytesOf(digest: string): Promise<Buffer> {
    const cached = this.#cache.get(digest);
    if (cached) return cached;
    const bytes = await this.#blobs.readAll(digest);
    this.#cache.set(digest, bytes);
    return bytes;
  }

  /**
   * An immutable tag already on another digest refuses the push before any
   * byte is written; the store checks again as it places the tag.
   */
  async #refuseMovingTag(repository: string, tag: string, digest: string) {
    const current = await this.#metadata.resolveTag(repository, tag);
    if (current && current.digest !== digest) {
      throw immutableTagError(repository, tag, current.digest);
    }
  }

  /**
   * A manifest's own bytes count towards its repository's quota.
   *
   * Limitation: this check and the manifest's write are separate steps, so
   * manifests pushed at the same moment as blobs may take a repository past
   * its quota by their own few kilobytes; blobs are checked as they are
   * linked and never do.
   */
  async #checkQuota(repository: string, digest: string, size: number) {
    const limit = this.#quotas.limitFor(repository);
    if (limit === undefined) return;
    const usage = await this.#metadata.measureStoredBytes(repository, digest);
    if (exceedsQuota(usage, size, limit)) {
      throw quotaError(repository, 'manifest', size, limit, usage.storedBytes);
    }
  }

  /** Every blob must be linked here with the size the descriptor claims; every child stored here. */
  async #checkReferences(repository: string, parsed: ParsedManifest): Promise<void> {
    const checks = parsed.references.map(async (reference) => {
      if (reference.kind === 'manifest') {
        return (await this.#metadata.getManifest(repository, reference.digest))
          ? []
          : [reference.digest];
      }
      const blob = await this.#metadata.getLinkedBlob(repository, reference.digest);
      if (!blob) return [reference.digest];
      checkSize(parsed.descriptors, reference.digest, blob.size);
      return [];
    });
    const missing = (await Promise.all(checks)).flat();
    if (missing.length > 0) throw missingReferences(missing);
  }
}

function digestFor(reference: Reference, bytes: Buffer): string {
  if (reference.kind === 'tag') return digestOf(bytes, 'sha256');
  const algorithm = parseDigest(reference.digest)?.algorithm ?? 'sha256';
  const actual = digestOf(bytes, algorithm);
  if (actual !== reference.digest) {
    throw new RegistryError(
      'DIGEST_INVALID',
      `Manifest digest mismatch: the body hashes to "${actual}", not "${reference.digest}"`,
    );
  }
  return actual;
}

function checkSize(descriptors: Descriptor[], digest: string, size: number) {
  const wrong = descriptors.find((item) => item.digest === digest && item.size !== size);
  if (!wrong) return;
  throw new RegistryError(
    'MANIFEST_INVALID',
    `Descriptor for blob "${digest}" claims ${wrong.size} bytes, but the blob has ${size}`,
  );
}

function needsPlatformFallback(mediaType: string, accepted: () => string[]): boolean {
  if (manifestKind(mediaType) !== 'index') return false;
  const accept = accepted();
  if (accept.length === 0) return false;
  if (accept.includes(mediaType) || accept.some((type) => type === '*/*')) return false;
  return accept.some((type) => manifestKind(type) === 'image');
}

function defaultPlatformChild(children: Descriptor[]): Descriptor | undefined {
  return children.find(
    (child) => child.platform?.os === 'linux' && child.platform.architecture === 'amd64',
  );
}

function missingReferences(digests: string[]): RegistryError {
  const list = digests.map((digest) => `"${digest}"`).join(', ');
  return new RegistryError(
    'MANIFEST_BLOB_UNKNOWN',
    `Manifest references content not present in this repository: ${list}`,
    { detail: digests.map((digest) => ({ digest })) },
  );
}

function unknownManifest(repository: string, reference: Reference): RegistryError {
  const [name, detail] =
    reference.kind === 'tag'
      ? [`${repository}:${reference.tag}`, { tag: reference.tag }]
      : [`${repository}@${reference.digest}`, { digest: reference.digest }];
  return new RegistryError('MANIFEST_UNKNOWN', `Manifest "${name}" is unknown`, { detail });
}
