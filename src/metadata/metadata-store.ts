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

export type PutManifestResult =
  | { ok: true }
  /** References that are not linked in the repository; nothing was written. */
  | { ok: false; missing: ManifestReference[] };

export interface MetadataStore {
  /** Creates tables or migrates them to the current schema. Safe to call from every instance. */
  migrate(): Promise<void>;
  close(): Promise<void>;

  /** Repositories that hold at least one manifest, sorted, paginated. */
  listRepositories(page: Page): Promise<string[]>;
  /** True when the repository holds at least one manifest or blob link. */
  repositoryExists(repository: string): Promise<boolean>;

  /** Records a committed blob registry-wide and links it into a repository. */
  linkBlob(repository: string, blob: BlobRecord): Promise<void>;
  /** The blob when it is linked into this repository. */
  getLinkedBlob(repository: string, digest: string): Promise<BlobRecord | undefined>;
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
  putManifest(repository: string, manifest: NewManifest, tag?: string): Promise<PutManifestResult>;
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
}
