// Where `npm run bench` writes: a quick run never replaces the committed full-run figures.
import { join } from 'node:path';
import { parseBenchArgs } from './args.js';

const RESULTS = '/repo/bench/results';

test('a full run and a scale run write latest.json; a quick run writes quick.json', () => {
  expect(parseBenchArgs([], RESULTS)).toEqual({
    quick: false,
    profile: false,
    scale: false,
    events: false,
    burst: false,
    out: join(RESULTS, 'latest.json'),
  });
  expect(parseBenchArgs(['--events'], RESULTS)).toMatchObject({ events: true, out: join(RESULTS, 'latest.json') });
  expect(parseBenchArgs(['--burst'], RESULTS)).toMatchObject({ burst: true, out: join(RESULTS, 'latest.json') });
  expect(parseBenchArgs(['--burst', '--quick'], RESULTS)).toMatchObject({
    burst: true,
    out: join(RESULTS, 'quick.json'),
  });
  expect(parseBenchArgs(['--scale'], RESULTS).out).toBe(join(RESULTS, 'latest.json'));
  expect(parseBenchArgs(['--quick'], RESULTS)).toMatchObject({ quick: true, out: join(RESULTS, 'quick.json') });
  expect(parseBenchArgs(['--quick', '--profile'], RESULTS).out).toBe(join(RESULTS, 'quick.json'));
});

test('--out wins, with or without --quick; an unknown flag is refused', () => {
  expect(parseBenchArgs(['--quick', '--out=/tmp/q.json'], RESULTS).out).toBe('/tmp/q.json');
  expect(parseBenchArgs(['--out', '/tmp/f.json'], RESULTS).out).toBe('/tmp/f.json');
  expect(() => parseBenchArgs(['--quik'], RESULTS)).toThrow(/--quik/);
});
