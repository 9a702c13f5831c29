// Original file: proto/changes.proto

import type { State as _secretstoresync_changes_v1alpha1_State, State__Output as _secretstoresync_changes_v1alpha1_State__Output } from '../../../secretstoresync/changes/v1alpha1/State.js';
import type { Changed as _secretstoresync_changes_v1alpha1_Changed, Changed__Output as _secretstoresync_changes_v1alpha1_Changed__Output } from '../../../secretstoresync/changes/v1alpha1/Changed.js';

export interface WatchEvent {
  'state'?: (_secretstoresync_changes_v1alpha1_State | null);
  'changed'?: (_secretstoresync_changes_v1alpha1_Changed | null);
  'event'?: "state"|"changed";
}

export interface WatchEvent__Output {
  'state'?: (_secretstoresync_changes_v1alpha1_State__Output | null);
  'changed'?: (_secretstoresync_changes_v1alpha1_Changed__Output | null);
  'event'?: "state"|"changed";
}
