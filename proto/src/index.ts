// The provider API: the proto, a typed server helper and a typed client.
export {
  CHANGES_PROTO_FILE,
  PROTO_FILE,
  api,
  changesApi,
  changesPackageDefinition,
  changesService,
  packageDefinition,
  providerService,
} from './load.js';
export {
  MAX_KEYS_PER_NOTICE,
  MAX_UNSENT_EVENTS,
  changesServer,
  type ChangeListener,
  type ChangeNotice,
  type ChangeSource,
  type ChangeState,
  type ChangesServer,
} from './changes.js';
export {
  ProviderError,
  REASON_METADATA_KEY,
  errorCode,
  errorMessage,
  errorStack,
  isProviderErrorCode,
  statusName,
  type ErrorContext,
  type ProviderErrorCode,
} from './errors.js';
export { socketPath } from './endpoint.js';
export { flagUsage, parseArgsOptions, type FlagSpec, type FlagTable } from './flags.js';
export {
  API_VERSION,
  DEFAULT_MAX_MESSAGE_BYTES,
  MAX_TRAILER_BYTES,
  PARTIAL_FAILURES_METADATA_KEY,
  OBJECT_EXPIRY_METADATA_KEY,
  CHANGE_KEY,
  CHANGE_KEYS_METADATA_KEY,
  FRESH_READ_METADATA_KEY,
  TrailerError,
  decodeChangeKeys,
  decodeExpiry,
  decodeFailures,
  encodeChangeKeys,
  encodeExpiry,
  encodeFailures,
  type ObjectFailure,
} from './wire.js';
export {
  parseMountRequest,
  serve,
  toMountResponse,
  type CallContext,
  type CallEvent,
  type MountResult,
  type ObjectVersionEntry,
  type ParsedMountRequest,
  type Provider,
  type ProviderFile,
  type RunningProvider,
  type ServeOptions,
} from './serve.js';
export {
  CHANGE_KEEPALIVE,
  ProviderClient,
  type Keepalive,
  type MountAnswerTrailers,
  type ProviderCallError,
  type WatchChangesOptions,
} from './client.js';
export { PKCS12_ITERATION_BUDGET, Pkcs12CostError, withPkcs12Budget } from './pkcs12.js';
export {
  buildMountRequest,
  DEFAULT_PERMISSION,
  mountAttributes,
  rfc3339,
  POD_NAME_ATTRIBUTE,
  POD_NAMESPACE_ATTRIBUTE,
  POD_UID_ATTRIBUTE,
  SERVICE_ACCOUNT_NAME_ATTRIBUTE,
  SERVICE_ACCOUNT_TOKENS_ATTRIBUTE,
  SYNC_TARGET_PATH,
  type MountRequestInput,
  type ServiceAccountToken,
} from './request.js';
export type { MountRequest, MountRequest__Output } from './generated/v1alpha1/MountRequest.js';
export type { MountResponse, MountResponse__Output } from './generated/v1alpha1/MountResponse.js';
export type { File } from './generated/v1alpha1/File.js';
export type { ObjectVersion } from './generated/v1alpha1/ObjectVersion.js';
export type { VersionResponse } from './generated/v1alpha1/VersionResponse.js';
export {
  report,
  runConformance,
  type CheckResult,
  type ConformanceOptions,
  type Fixture,
  type MountCase,
} from './conformance.js';
export { STREAM_HOLD_MS, type ChangeCase } from './conformance-changes.js';
