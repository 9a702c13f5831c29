// Original file: proto/changes.proto


export interface State {
  'receiving'?: (boolean);
  'reason'?: (string);
  'message'?: (string);
}

export interface State__Output {
  'receiving': (boolean);
  'reason': (string);
  'message': (string);
}
