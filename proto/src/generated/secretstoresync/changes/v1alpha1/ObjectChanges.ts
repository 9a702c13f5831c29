// Original file: proto/changes.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { WatchEvent as _secretstoresync_changes_v1alpha1_WatchEvent, WatchEvent__Output as _secretstoresync_changes_v1alpha1_WatchEvent__Output } from '../../../secretstoresync/changes/v1alpha1/WatchEvent.js';
import type { WatchRequest as _secretstoresync_changes_v1alpha1_WatchRequest, WatchRequest__Output as _secretstoresync_changes_v1alpha1_WatchRequest__Output } from '../../../secretstoresync/changes/v1alpha1/WatchRequest.js';

export interface ObjectChangesClient extends grpc.Client {
  Watch(argument: _secretstoresync_changes_v1alpha1_WatchRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_secretstoresync_changes_v1alpha1_WatchEvent__Output>;
  Watch(argument: _secretstoresync_changes_v1alpha1_WatchRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_secretstoresync_changes_v1alpha1_WatchEvent__Output>;
  watch(argument: _secretstoresync_changes_v1alpha1_WatchRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_secretstoresync_changes_v1alpha1_WatchEvent__Output>;
  watch(argument: _secretstoresync_changes_v1alpha1_WatchRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_secretstoresync_changes_v1alpha1_WatchEvent__Output>;
  
}

export interface ObjectChangesHandlers extends grpc.UntypedServiceImplementation {
  Watch: grpc.handleServerStreamingCall<_secretstoresync_changes_v1alpha1_WatchRequest__Output, _secretstoresync_changes_v1alpha1_WatchEvent>;
  
}

export interface ObjectChangesDefinition extends grpc.ServiceDefinition {
  Watch: MethodDefinition<_secretstoresync_changes_v1alpha1_WatchRequest, _secretstoresync_changes_v1alpha1_WatchEvent, _secretstoresync_changes_v1alpha1_WatchRequest__Output, _secretstoresync_changes_v1alpha1_WatchEvent__Output>
}
