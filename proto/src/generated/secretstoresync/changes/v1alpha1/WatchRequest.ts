// Original file: proto/changes.proto


export interface WatchRequest {
  'version'?: (string);
}

export interface WatchRequest__Output {
  'version': (string);
}
