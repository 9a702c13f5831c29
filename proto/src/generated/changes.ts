import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { Changed as _secretstoresync_changes_v1alpha1_Changed, Changed__Output as _secretstoresync_changes_v1alpha1_Changed__Output } from './secretstoresync/changes/v1alpha1/Changed.js';
import type { ObjectChangesClient as _secretstoresync_changes_v1alpha1_ObjectChangesClient, ObjectChangesDefinition as _secretstoresync_changes_v1alpha1_ObjectChangesDefinition } from './secretstoresync/changes/v1alpha1/ObjectChanges.js';
import type { State as _secretstoresync_changes_v1alpha1_State, State__Output as _secretstoresync_changes_v1alpha1_State__Output } from './secretstoresync/changes/v1alpha1/State.js';
import type { WatchEvent as _secretstoresync_changes_v1alpha1_WatchEvent, WatchEvent__Output as _secretstoresync_changes_v1alpha1_WatchEvent__Output } from './secretstoresync/changes/v1alpha1/WatchEvent.js';
import type { WatchRequest as _secretstoresync_changes_v1alpha1_WatchRequest, WatchRequest__Output as _secretstoresync_changes_v1alpha1_WatchRequest__Output } from './secretstoresync/changes/v1alpha1/WatchRequest.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  secretstoresync: {
    changes: {
      v1alpha1: {
        Changed: MessageTypeDefinition<_secretstoresync_changes_v1alpha1_Changed, _secretstoresync_changes_v1alpha1_Changed__Output>
        ObjectChanges: SubtypeConstructor<typeof grpc.Client, _secretstoresync_changes_v1alpha1_ObjectChangesClient> & { service: _secretstoresync_changes_v1alpha1_ObjectChangesDefinition }
        State: MessageTypeDefinition<_secretstoresync_changes_v1alpha1_State, _secretstoresync_changes_v1alpha1_State__Output>
        WatchEvent: MessageTypeDefinition<_secretstoresync_changes_v1alpha1_WatchEvent, _secretstoresync_changes_v1alpha1_WatchEvent__Output>
        WatchRequest: MessageTypeDefinition<_secretstoresync_changes_v1alpha1_WatchRequest, _secretstoresync_changes_v1alpha1_WatchRequest__Output>
      }
    }
  }
}

