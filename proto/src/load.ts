// Loads service.proto once with @grpc/proto-loader; the generated types in ./generated describe it.
import * as protoLoader from '@grpc/proto-loader';
import { loadPackageDefinition } from '@grpc/grpc-js';
import { fileURLToPath } from 'node:url';
import type { ProtoGrpcType } from './generated/service.js';

export const PROTO_FILE = fileURLToPath(new URL('../proto/service.proto', import.meta.url));

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
