// Original file: proto/service.proto


export interface ObjectVersion {
  'id'?: (string);
  'version'?: (string);
}

export interface ObjectVersion__Output {
  'id': (string);
  'version': (string);
}
