// Original file: proto/changes.proto


export interface Changed {
  'keys'?: (string)[];
  'kind'?: (string);
}

export interface Changed__Output {
  'keys': (string)[];
  'kind': (string);
}
