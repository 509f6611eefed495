/**
 * The metadata store: what exists in the registry. Repositories, the blobs
 * linked into each repository, manifests and what they reference, tags,
 * upload sessions and referrers. The blob store holds the bytes; this store
 * decides what may be served (DESIGN.md, invariant 2).
 *
 * Every method is safe to call from several processes and several machines
 * at once: implementations use the database's transactions, never in-process
 * locks, so that any number of `berth serve` instances can share one store.
 */

/** A blob committed to the blob store, known registry-wide. */
export interface BlobRecord {
  digest: string;
  size: number;
}

/** What a manifest references, extracted when it was pushed. */
export interface ManifestReference {
  digest: string;
  /** `blob` for layers and configs, `manifest` for the children of an index. */
  kind: 'blob' | 'manifest';
}

export interface ManifestRecord {
  digest: string;
  mediaType: string;
  size: number;
  /** `artifactType`, or for an image manifest its config's media type (OCI referrers rules). */
  artifactType: string | null;
  /** The digest of the manifest's `subject`, when it has one. */
  subject: string | null;
  /** The manifest's `annotations`, kept as JSON text for the referrers API. */
  annotations: string | null;
  /** Milliseconds since the epoch. */
  createdAt: number;
}

export interface NewManifest extends Omit<ManifestRecord, 'createdAt'> {
  references: ManifestReference[];
}

export interface Page {
  /**
   * Return entries strictly after this one. Names sort byte-wise (by their
   * UTF-8 bytes, SQL's "C" collation), the same on every implementation,
   * so that `last` from one instance pages correctly on another.
   */
  last?: string;
  /** At most this many entries. */
  limit: number;
}

export interface UploadSession {
  id: string;
  repository: string;
  /** Milliseconds since the epoch. */
  startedAt: number;
  /** Milliseconds since the epoch of the last chunk received. */
  updatedAt: number;
}

/**
 * A robot account (src/auth/robots.ts): a machine's token, limited to
 * scopes and an expiry. Only a hash of its secret is stored.
 */
export interface RobotRecord {
  /** 32 hex digits, public: the token names it. */
  id: string;
  name: string;
  /** Hex SHA-256 of the token's secret. */
  secretHash: string;
  /** Scopes such as `repository:ci/*:pull,push` or `registry:catalog:*`. */
  scopes: string[];
  /** Milliseconds since the epoch. */
  createdAt: number;
  expiresAt: number;
}

export interface PutManifestOptions {
  /** The tag may be created, never moved to another digest (immutable tags). */
  immutableTag?: boolean;
}

export type PutManifestResult =
  | { ok: true }
  /** References that are not linked in the repository; nothing was written. */
  | { ok: false; missing: ManifestReference[]; tagDigest?: undefined }
  /** The immutable tag points at this other digest; nothing was written. */
  | { ok: false; missing?: undefined; tagDigest: string };

/** A tag and the last time it was pushed or moved, in milliseconds since the epoch. */
export interface TagRecord {
  name: string;
  digest: string;
  updatedAt: number;
}

/** A manifest as retention sees it: when it was pushed and what it needs. */
export interface ManifestNode {
  digest: string;
  mediaType: string;
  createdAt: number;
  subject: string | null;
  /** The manifests it lists (an index's children). */
  children: string[];
}

/** Every tag and manifest of one repository, for retention. */
export interface RepositoryContent {
  tags: TagRecord[];
  manifests: ManifestNode[];
}

/**
 * The bytes a repository holds: every distinct blob it links or its
 * manifests reference, and its manifests' own bytes, each digest once.
 */
export interface RepositoryUsage {
  repository: string;
  /** Distinct blobs and manifests. */
  objects: number;
  storedBytes: number;
  /** Held by no other repository: what deleting this one would free. */
  uniqueBytes: number;
  /** Held by at least one other repository too. */
  sharedBytes: number;
}

export interface RegistryUsage {
  /** Every repository that holds something, by name. */
  repositories: RepositoryUsage[];
  /** The registry as a whole, each digest once. */
  total: {
    repositories: number;
    objects: number;
    storedBytes: number;
    /** Held by more than one repository, counted once. */
    sharedBytes: number;
  };
}

export type QuotaCheckResult =
  | { ok: true }
  /** Linking would take the repository past its quota; nothing was written. */
  | { ok: false; storedBytes: number }
  /** The blob's record is gone (a collection removed it); nothing was written. */
  | { ok: false; gone: true };

/** A blob linked into a repository, with the link's age for garbage collection. */
export interface LinkedBlob extends BlobRecord {
  /** When the link was made or last refreshed, in milliseconds since the epoch. */
  linkedAt: number;
}

/**
 * What garbage collection may remove (src/registry/gc.ts). Content linked,
 * claimed, pushed or refreshed at or after `before` is always kept: the
 * grace window that protects uploads and pushes in progress.
 */
export interface CollectionRules {
  before: number;
  /** Untagged manifests that nothing references go too (`gc.untagged`). */
  untagged: boolean;
  /**
   * Find as if the earlier steps of the same collection had already removed
   * what they would (untagged manifests, then blob links, then blobs), so
   * that a dry run lists everything a run would remove. Removal methods
   * refuse rules with `dryRun`.
   */
  dryRun: boolean;
}

/** A page of candidates; `cursor` continues after it, and is absent after the last page. */
export interface CollectionPage<T> {
  items: T[];
  cursor?: string;
}

export interface CollectableManifest {
  repository: string;
  digest: string;
  mediaType: string;
  size: number;
}

export interface CollectableLink {
  repository: string;
  digest: string;
}

/** What deleting a repository removed. */
export interface RepositoryDeletion {
  manifests: number;
  tags: number;
  blobLinks: number;
  /** Upload sessions whose staging areas the caller should remove. */
  uploads: string[];
}

export type ManifestDeletion =
  | { ok: true; manifests: string[]; tags: number }
  | { ok: false; reason: 'unknown' }
  /** An index that is not deleted lists one of the manifests; nothing was written. */
  | { ok: false; reason: 'referenced'; digest: string; index: string };

/** A lease that lets one process at a time run a maintenance task, across machines. */
export interface LeaseRecord {
  name: string;
  /** Empty when nobody holds it. */
  holder: string;
  /** Milliseconds since the epoch. */
  expiresAt: number;
  /** When a holder last finished the task, in milliseconds since the epoch. */
  completedAt: number | null;
}

export interface MetadataStore {
  /** Creates tables or migrates them to the current schema. Safe to call from every instance. */
  migrate(): Promise<void>;
  close(): Promise<void>;

  /** Repositories that hold at least one manifest, sorted, paginated. */
  listRepositories(page: Page): Promise<string[]>;
  /** True when the repository holds at least one manifest or blob link. */
  repositoryExists(repository: string): Promise<boolean>;

  /**
   * Records a committed blob registry-wide and links it into a repository.
   * With `endingUpload`, that upload session is deleted in the same
   * transaction: the push that committed the blob is then over.
   */
  linkBlob(repository: string, blob: BlobRecord, endingUpload?: string): Promise<void>;
  /** The blob when it is linked into this repository. */
  getLinkedBlob(repository: string, digest: string): Promise<LinkedBlob | undefined>;
  /** The blob when any repository links it: for mounts without `from`. */
  findBlob(digest: string): Promise<BlobRecord | undefined>;
  /**
   * Repositories that link the blob, sorted, paginated: a mount without
   * `from` under access control takes the blob only from a repository the
   * caller may pull.
   */
  listRepositoriesLinkingBlob(digest: string, page: Page): Promise<string[]>;
  /**
   * Removes a blob's link from one repository; false when there was none.
   * It does not check whether a manifest still references the blob: that is
   * the caller's policy (DESIGN.md, invariant 4).
   */
  unlinkBlob(repository: string, digest: string): Promise<boolean>;

  /**
   * Stores a manifest, its references and optionally a tag, in one
   * transaction, only when every reference is present in the repository
   * (blobs linked, child manifests stored); otherwise writes nothing and
   * lists each missing reference once. Creates the repository when needed.
   * Pushing the same digest again is idempotent (its `createdAt` stays)
   * and may move the tag.
   */
  putManifest(
    repository: string,
    manifest: NewManifest,
    tag?: string,
    options?: PutManifestOptions,
  ): Promise<PutManifestResult>;
  getManifest(repository: string, digest: string): Promise<ManifestRecord | undefined>;
  /** The manifest a tag points at. */
  resolveTag(repository: string, tag: string): Promise<ManifestRecord | undefined>;
  /** Deletes a manifest, its references and every tag pointing at it; false when absent. */
  deleteManifest(repository: string, digest: string): Promise<boolean>;
  /** Deletes one tag, leaving the manifest; false when absent. */
  deleteTag(repository: string, tag: string): Promise<boolean>;
  /**
   * Tags of a repository, sorted, paginated; undefined when the repository
   * is unknown (holds no manifest and no blob link).
   */
  listTags(repository: string, page: Page): Promise<string[] | undefined>;
  /**
   * Manifests of this repository whose subject is the digest, optionally of
   * one artifact type only, ordered by digest.
   */
  listReferrers(
    repository: string,
    subject: string,
    artifactType?: string,
  ): Promise<ManifestRecord[]>;

  /** Every tag and manifest of a repository; empty when it is unknown. */
  listRepositoryContent(repository: string): Promise<RepositoryContent>;
  /**
   * Deletes a tag only while it still points where `tag` says and was not
   * pushed since: retention never removes a tag a client just moved.
   */
  deleteTagIfUnchanged(repository: string, tag: TagRecord): Promise<boolean>;
  /**
   * Deletes a manifest pushed before `pushedBefore` only while nothing in
   * the repository needs it: no tag points at it, no manifest lists it, and
   * its subject, if any, is not there. Checked and deleted in one
   * transaction; false when it was kept or absent.
   */
  deleteUntaggedManifest(
    repository: string,
    digest: string,
    pushedBefore: number,
  ): Promise<boolean>;

  /** What every repository stores, and the registry in total, in a few grouped queries. */
  measureUsage(): Promise<RegistryUsage>;
  /** What one repository stores; undefined when it holds nothing. */
  measureRepositoryUsage(repository: string): Promise<RepositoryUsage | undefined>;
  /**
   * The bytes a repository stores (as `measureRepositoryUsage` counts
   * them) and whether it holds the digest already: a quota's check.
   */
  measureStoredBytes(
    repository: string,
    digest: string,
  ): Promise<{ storedBytes: number; holds: boolean }>;
  /**
   * `linkBlob`, unless the repository would then store more than `limit`
   * bytes. Checked and linked in one transaction, one such link at a time
   * per repository, so that blobs pushed in parallel cannot together pass
   * the limit.
   */
  linkBlobWithinQuota(
    repository: string,
    blob: BlobRecord,
    limit: number,
  ): Promise<QuotaCheckResult>;

  createUpload(session: UploadSession): Promise<void>;
  getUpload(id: string): Promise<UploadSession | undefined>;
  /**
   * Records activity on an upload session (for purging abandoned ones). The
   * time never moves back; an unknown session is ignored.
   */
  touchUpload(id: string, at: number): Promise<void>;
  deleteUpload(id: string): Promise<void>;
  /** Sessions with no activity since the given time, oldest activity first. */
  listUploadsIdleSince(before: number): Promise<UploadSession[]>;

  /** Stores a new robot account; false when one of that name exists. */
  createRobot(robot: RobotRecord): Promise<boolean>;
  getRobot(id: string): Promise<RobotRecord | undefined>;
  getRobotByName(name: string): Promise<RobotRecord | undefined>;
  /** Every robot account, by name. */
  listRobots(): Promise<RobotRecord[]>;
  /** Deletes the robot account of that name; false when there was none. */
  deleteRobot(name: string): Promise<boolean>;

  /**
   * Records that bytes of this digest are about to be written to the blob
   * store, before they are: garbage collection then keeps them for its grace
   * window, and a collection that removed the same digest just before has
   * finished removing its bytes too. Refreshes the time of a known blob.
   */
  claimBlob(blob: BlobRecord): Promise<void>;
  /**
   * Links a blob that `from` links (any repository when `from` is absent)
   * into `repository`, checked and linked in one transaction, so that a
   * collection cannot remove the blob in between; undefined when no such
   * link exists.
   */
  mountBlob(repository: string, digest: string, from?: string): Promise<BlobRecord | undefined>;
  /**
   * Moves a link's time to `at`, as a push that found the blob present
   * would have: garbage collection reads it as the link's age. False when
   * the link is gone.
   */
  refreshBlobLink(repository: string, digest: string, at: number): Promise<boolean>;

  /**
   * Deletes a repository: its tags, manifests, blob links, upload sessions
   * and its row, in one transaction. Blobs go at the next collection.
   * Undefined when there is no such repository and no session for it.
   */
  deleteRepository(repository: string): Promise<RepositoryDeletion | undefined>;
  /**
   * Deletes a manifest and the tags on it, with `referrers` also every
   * manifest whose subject is a deleted one, recursively; in one
   * transaction. Refused when an index that is not deleted lists one of
   * them (DESIGN.md, invariant 4).
   */
  deleteManifestTree(
    repository: string,
    digest: string,
    options: { referrers: boolean },
  ): Promise<ManifestDeletion>;

  /**
   * Untagged manifests that nothing in their repository references, whose
   * subject is absent, pushed before `rules.before`; ordered, paginated.
   * Deleting them may make others collectable: collect until none is left.
   */
  findCollectableManifests(
    rules: CollectionRules,
    cursor: string | undefined,
    limit: number,
  ): Promise<CollectionPage<CollectableManifest>>;
  /** Checks each candidate again and deletes those still collectable, in one transaction. */
  removeCollectableManifests(
    rules: CollectionRules,
    candidates: readonly CollectableManifest[],
  ): Promise<CollectableManifest[]>;
  /** Blob links made before `rules.before` that no manifest of their repository references. */
  findCollectableLinks(
    rules: CollectionRules,
    cursor: string | undefined,
    limit: number,
  ): Promise<CollectionPage<CollectableLink>>;
  removeCollectableLinks(
    rules: CollectionRules,
    candidates: readonly CollectableLink[],
  ): Promise<CollectableLink[]>;
  /**
   * Blobs claimed before `rules.before` that no repository links, no
   * manifest anywhere references, and that are no manifest's own bytes.
   */
  findCollectableBlobs(
    rules: CollectionRules,
    cursor: string | undefined,
    limit: number,
  ): Promise<CollectionPage<BlobRecord>>;
  /**
   * Checks each candidate again and deletes the records of those still
   * collectable, calling `removeBytes` with them before the transaction
   * commits: a push of the same digest waits for both (see `claimBlob`).
   * Should the removal fail, the records stay, unlinked, for the next run.
   */
  removeCollectableBlobs(
    rules: CollectionRules,
    candidates: readonly BlobRecord[],
    removeBytes: (blobs: BlobRecord[]) => Promise<void>,
  ): Promise<BlobRecord[]>;
  /** The digests of which the store knows nothing: no blob record, no manifest. */
  findUnknownDigests(digests: readonly string[]): Promise<string[]>;
  /** Checks again, and calls `removeBytes` with those still unknown before the transaction commits. */
  removeUnknownDigests(
    digests: readonly string[],
    removeBytes: (digests: string[]) => Promise<void>,
  ): Promise<string[]>;

  /**
   * Takes the named lease until `expiresAt` when nobody holds it, it has
   * expired, or `replacing` holds it (a holder known to be dead); true when
   * taken. Taking a lease one holds already extends it.
   */
  acquireLease(
    name: string,
    holder: string,
    expiresAt: number,
    options: { now: number; replacing?: string },
  ): Promise<boolean>;
  /** Extends a lease this holder holds; false when it lost it. */
  renewLease(name: string, holder: string, expiresAt: number): Promise<boolean>;
  /** Gives a lease up, recording `completedAt` when the task finished. */
  releaseLease(name: string, holder: string, completedAt?: number): Promise<void>;
  getLease(name: string): Promise<LeaseRecord | undefined>;
}
