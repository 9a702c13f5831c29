// Original file: proto/service.proto


export interface Error {
  'code'?: (string);
}

export interface Error__Output {
  'code': (string);
}
