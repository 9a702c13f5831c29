// Loads the protos once with @grpc/proto-loader; the generated types in ./generated describe them.
// service.proto is the CSI driver's contract, byte for byte; changes.proto is this project's
// optional change-notice service (see its header).
import * as protoLoader from '@grpc/proto-loader';
import { loadPackageDefinition } from '@grpc/grpc-js';
import { fileURLToPath } from 'node:url';
import type { ProtoGrpcType } from './generated/service.js';
import type { ProtoGrpcType as ChangesGrpcType } from './generated/changes.js';

export const PROTO_FILE = fileURLToPath(new URL('../proto/service.proto', import.meta.url));
export const CHANGES_PROTO_FILE = fileURLToPath(new URL('../proto/changes.proto', import.meta.url));

/** Options that keep field names as in the generated types and bytes as Buffers. */
const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

export const packageDefinition = protoLoader.loadSync(PROTO_FILE, LOADER_OPTIONS);
export const api = loadPackageDefinition(packageDefinition) as unknown as ProtoGrpcType;
export const providerService = api.v1alpha1.CSIDriverProvider.service;

export const changesPackageDefinition = protoLoader.loadSync(CHANGES_PROTO_FILE, LOADER_OPTIONS);
export const changesApi = loadPackageDefinition(changesPackageDefinition) as unknown as ChangesGrpcType;
export const changesService = changesApi.secretstoresync.changes.v1alpha1.ObjectChanges.service;
