// Original file: proto/service.proto


export interface File {
  'path'?: (string);
  'mode'?: (number);
  'contents'?: (Buffer | Uint8Array | string);
}

export interface File__Output {
  'path': (string);
  'mode': (number);
  'contents': (Buffer);
}
