// The proto must stay byte-compatible with the CSI driver's: these fixtures are written by hand
// from the upstream field numbers and wire types, not produced by our own encoder.
import { providerService } from '../src/load.js';

const { Mount, Version } = providerService;

/** A length-delimited field: tag = (number << 3) | 2. */
function ld(field: number, payload: Buffer | string): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  return Buffer.concat([Buffer.from([(field << 3) | 2, body.length]), body]);
}
/** A varint field: tag = (number << 3) | 0; values < 128 fit one byte, 420 needs two. */
function varint(field: number, value: number): Buffer {
  const bytes: number[] = [];
  let v = value;
  do {
    let b = v & 0x7f;
    v >>>= 7;
    if (v) b |= 0x80;
    bytes.push(b);
  } while (v);
  return Buffer.from([(field << 3) | 0, ...bytes]);
}

test('MountRequest fields 1-5 encode as upstream', () => {
  const bytes = Mount.requestSerialize({
    attributes: '{"a":"b"}',
    secrets: 'null',
    targetPath: '/t',
    permission: '420',
    currentObjectVersion: [{ id: 'secret/x', version: 'v1' }],
  });
  const expected = Buffer.concat([
    ld(1, '{"a":"b"}'),
    ld(2, 'null'),
    ld(3, '/t'),
    ld(4, '420'),
    ld(5, Buffer.concat([ld(1, 'secret/x'), ld(2, 'v1')])),
  ]);
  expect(Buffer.from(bytes).toString('hex')).toBe(expected.toString('hex'));
});

test('MountResponse: object_version=1, error=2, files=3 with File{path=1, mode=2 varint, contents=3}', () => {
  const bytes = Mount.responseSerialize({
    objectVersion: [{ id: 'secret/s/0', version: 'abc' }],
    error: { code: 'E' },
    files: [{ path: 's/0', mode: 420, contents: Buffer.from([0, 1, 2]) }],
  });
  const expected = Buffer.concat([
    ld(1, Buffer.concat([ld(1, 'secret/s/0'), ld(2, 'abc')])),
    ld(2, ld(1, 'E')),
    ld(3, Buffer.concat([ld(1, 's/0'), varint(2, 420), ld(3, Buffer.from([0, 1, 2]))])),
  ]);
  expect(Buffer.from(bytes).toString('hex')).toBe(expected.toString('hex'));
});

test('a response written by another implementation decodes field by field', () => {
  const upstream = Buffer.concat([
    ld(3, Buffer.concat([ld(1, 'a.txt'), varint(2, 384), ld(3, 'hi')])),
    ld(1, Buffer.concat([ld(1, 'secret/a'), ld(2, '7')])),
  ]);
  const decoded = Mount.responseDeserialize(upstream);
  expect(decoded.files).toEqual([{ path: 'a.txt', mode: 384, contents: Buffer.from('hi') }]);
  expect(decoded.objectVersion).toEqual([{ id: 'secret/a', version: '7' }]);
});

test('VersionRequest and VersionResponse encode as upstream', () => {
  expect(Buffer.from(Version.requestSerialize({ version: 'v1alpha1' })).toString('hex')).toBe(
    ld(1, 'v1alpha1').toString('hex'),
  );
  const res = Version.responseSerialize({ version: 'v1alpha1', runtimeName: 'n', runtimeVersion: '1.0' });
  expect(Buffer.from(res).toString('hex')).toBe(
    Buffer.concat([ld(1, 'v1alpha1'), ld(2, 'n'), ld(3, '1.0')]).toString('hex'),
  );
});

test('the service is v1alpha1.CSIDriverProvider with the upstream method paths', () => {
  expect(Mount.path).toBe('/v1alpha1.CSIDriverProvider/Mount');
  expect(Version.path).toBe('/v1alpha1.CSIDriverProvider/Version');
});
