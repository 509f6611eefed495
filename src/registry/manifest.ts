import { RegistryError } from '../errors/registry-error.js';
import type { ManifestReference, NewManifest } from '../metadata/metadata-store.js';
import { isDigest } from './digest.js';
import { isSchema1, manifestKind, mediaTypes, type ManifestKind } from './media-types.js';

/**
 * Parsing and validation of pushed manifests: Docker image manifest v2 and
 * manifest list, OCI image manifest and index (image-spec 1.1, artifacts
 * included). The registry keeps the bytes exactly as pushed; this module
 * only reads them to learn their media type and what they reference.
 */

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: { os?: string; architecture?: string; variant?: string };
}

export interface ParsedManifest extends Omit<NewManifest, 'digest' | 'size'> {
  kind: ManifestKind;
  /** Layers and config (image) or children (index), in document order. */
  descriptors: Descriptor[];
}

/** Docker's layers that live elsewhere and are never pushed to the registry. */
const foreignLayerTypes = new Set([
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
]);

export function parseManifest(bytes: Buffer, contentType: string | undefined): ParsedManifest {
  const document = parseJsonObject(bytes);
  const mediaType = resolveMediaType(document, contentType);
  const kind = manifestKind(mediaType);
  if (!kind) {
    throw invalid(
      `Unsupported manifest media type "${mediaType}": expected an OCI or Docker v2 manifest or index`,
    );
  }
  if (document.schemaVersion !== 2) {
    throw invalid(`Invalid schemaVersion ${JSON.stringify(document.schemaVersion)}: expected 2`);
  }
  return kind === 'image' ? parseImage(document, mediaType) : parseIndex(document, mediaType);
}

function parseImage(document: Record<string, unknown>, mediaType: string): ParsedManifest {
  const config = parseDescriptor(document.config, 'config');
  const layers = parseDescriptorList(document.layers, 'layers');
  const subject = optionalDescriptor(document.subject, 'subject');
  const artifactType = optionalString(document.artifactType, 'artifactType');
  const descriptors = [config, ...layers];
  const references = [config, ...layers.filter(isLocal)].map((descriptor): ManifestReference => ({
    digest: descriptor.digest,
    kind: 'blob',
  }));
  return {
    kind: 'image',
    mediaType,
    descriptors,
    references: unique(references),
    artifactType: artifactType ?? (mediaType === mediaTypes.ociManifest ? config.mediaType : null),
    subject: subject?.digest ?? null,
    annotations: annotationsOf(document),
  };
}

function parseIndex(document: Record<string, unknown>, mediaType: string): ParsedManifest {
  const children = parseDescriptorList(document.manifests, 'manifests');
  const subject = optionalDescriptor(document.subject, 'subject');
  const artifactType = optionalString(document.artifactType, 'artifactType');
  const references = children.map((descriptor): ManifestReference => ({
    digest: descriptor.digest,
    kind: 'manifest',
  }));
  return {
    kind: 'index',
    mediaType,
    descriptors: children,
    references: unique(references),
    artifactType: artifactType ?? null,
    subject: subject?.digest ?? null,
    annotations: annotationsOf(document),
  };
}

function parseJsonObject(bytes: Buffer): Record<string, unknown> {
  let document: unknown;
  try {
    document = JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    throw invalid(`Manifest is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof document !== 'object' || document === null || Array.isArray(document)) {
    throw invalid('Manifest is not a JSON object');
  }
  return document as Record<string, unknown>;
}

/**
 * The media type comes from the document's `mediaType` field, or from the
 * request's Content-Type when the document has none (OCI makes the field
 * optional); when both are present they must agree.
 */
function resolveMediaType(document: Record<string, unknown>, contentType: string | undefined) {
  const declared = optionalString(document.mediaType, 'mediaType');
  const header = contentType?.split(';')[0]?.trim() || undefined;
  const mediaType = declared ?? header;
  if (document.schemaVersion === 1 || (mediaType && isSchema1(mediaType))) {
    throw invalid(
      'Docker image manifest schema 1 is not supported: push with a current client, ' +
        'which sends schema 2 or OCI manifests',
    );
  }
  if (!mediaType) throw invalid('Manifest has no mediaType and the request no Content-Type');
  if (declared && header && manifestKind(header) && declared !== header) {
    throw invalid(`Manifest mediaType "${declared}" does not match Content-Type "${header}"`);
  }
  return mediaType;
}

function parseDescriptorList(value: unknown, field: string): Descriptor[] {
  if (!Array.isArray(value)) throw invalid(`Manifest field "${field}" must be an array`);
  return value.map((item, index) => parseDescriptor(item, `${field}[${index}]`));
}

function optionalDescriptor(value: unknown, field: string): Descriptor | undefined {
  return value === undefined || value === null ? undefined : parseDescriptor(value, field);
}

function parseDescriptor(value: unknown, field: string): Descriptor {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalid(`Manifest field "${field}" must be a descriptor object`);
  }
  const descriptor = value as Record<string, unknown>;
  if (typeof descriptor.mediaType !== 'string' || descriptor.mediaType === '') {
    throw invalid(`Descriptor "${field}" has no mediaType`);
  }
  if (typeof descriptor.digest !== 'string' || !isDigest(descriptor.digest)) {
    throw invalid(
      `Descriptor "${field}" has an invalid digest ${JSON.stringify(descriptor.digest)}`,
    );
  }
  if (!Number.isSafeInteger(descriptor.size) || (descriptor.size as number) < 0) {
    throw invalid(`Descriptor "${field}" has an invalid size ${JSON.stringify(descriptor.size)}`);
  }
  return descriptor as unknown as Descriptor;
}

function isLocal(descriptor: Descriptor): boolean {
  const hasUrls = Array.isArray(descriptor.urls) && descriptor.urls.length > 0;
  return !(hasUrls && foreignLayerTypes.has(descriptor.mediaType));
}

function optionalString(value: unknown, field: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw invalid(`Manifest field "${field}" must be a string`);
  return value;
}

function annotationsOf(document: Record<string, unknown>): string | null {
  const annotations = document.annotations;
  if (annotations === undefined || annotations === null) return null;
  if (typeof annotations !== 'object' || Array.isArray(annotations)) {
    throw invalid('Manifest field "annotations" must be an object of strings');
  }
  return JSON.stringify(annotations);
}

function unique(references: ManifestReference[]): ManifestReference[] {
  const seen = new Set<string>();
  return references.filter(
    (reference) => !seen.has(reference.digest) && seen.add(reference.digest),
  );
}

function invalid(message: string): RegistryError {
  return new RegistryError('MANIFEST_INVALID', message);
}
