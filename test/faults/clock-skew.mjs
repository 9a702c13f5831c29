// Test-only preload (node --import): the process's wall clock runs SSS_CLOCK_SKEW_MS ahead of the
// machine's (and so of the apiserver's). Monotonic time (performance.now) is left alone, as a
// skewed host would leave it.
const skew = Number(process.env.SSS_CLOCK_SKEW_MS ?? 0);
if (skew) {
  const RealDate = Date;
  const realNow = RealDate.now.bind(RealDate);
  class SkewedDate extends RealDate {
    constructor(...args) {
      if (args.length === 0) super(realNow() + skew);
      else super(...args);
    }
    static now() {
      return realNow() + skew;
    }
  }
  globalThis.Date = SkewedDate;
}
