// `npm run bench`'s command line. A quick run writes its own file: its small counts must never
// replace the full run's figures in the committed bench/results/latest.json.
import { join } from 'node:path';
import { parseArgs } from 'node:util';

export interface BenchArgs {
  quick: boolean;
  profile: boolean;
  scale: boolean;
  /** Only the change-events scenario (bench/change-events.ts). */
  events: boolean;
  /** Only the first-sync burst scenario (bench/first-sync-burst.ts). */
  burst: boolean;
  /** Where the results go. */
  out: string;
}

export function parseBenchArgs(argv: string[], resultsDir: string): BenchArgs {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      out: { type: 'string' },
      profile: { type: 'boolean', default: false },
      scale: { type: 'boolean', default: false },
      events: { type: 'boolean', default: false },
      burst: { type: 'boolean', default: false },
    },
  });
  const quick = values.quick;
  return {
    quick,
    profile: values.profile,
    scale: values.scale,
    events: values.events,
    burst: values.burst,
    out: values.out ?? join(resultsDir, quick ? 'quick.json' : 'latest.json'),
  };
}
