// Checks PromQL written for dashboards and alerts against what the processes really expose: every
// metric name, label matcher, grouping label and label a legend or annotation prints must exist
// in a scrape. Queries are parsed with Prometheus's own grammar (@prometheus-io/lezer-promql), and
// the labels each sub-expression can carry are followed through aggregations, vector matching and
// functions as Prometheus's engine does, so `sum by (reason) (...)` printing {{pod}} is caught too.
import { parser } from '@prometheus-io/lezer-promql';

type SyntaxNode = ReturnType<typeof parser.parse>['topNode'];

/** Metric name → label name → values seen, from the text exposition format. */
export type Scrape = Map<string, Map<string, Set<string>>>;

/** Parses Prometheus's text exposition format (what prom-client serves). */
export function parseExposition(text: string, into: Scrape = new Map()): Scrape {
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const name = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)?.[0];
    if (!name) throw new Error(`not an exposition line: ${line}`);
    const labels = into.get(name) ?? new Map<string, Set<string>>();
    into.set(name, labels);
    let i = name.length;
    if (line[i] !== '{') continue;
    i++;
    while (line[i] !== '}') {
      const label = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(i))?.[0];
      if (!label || line[i + label.length] !== '=' || line[i + label.length + 1] !== '"')
        throw new Error(`bad label set in: ${line}`);
      i += label.length + 2;
      let value = '';
      for (; line[i] !== '"'; i++) {
        if (i >= line.length) throw new Error(`unterminated label value in: ${line}`);
        if (line[i] === '\\') {
          i++;
          value += line[i] === 'n' ? '\n' : line[i];
        } else value += line[i];
      }
      i++;
      if (line[i] === ',') i++;
      const values = labels.get(label) ?? new Set<string>();
      values.add(value);
      labels.set(label, values);
    }
  }
  return into;
}

type Value = { kind: 'scalar' } | { kind: 'string' } | { kind: 'vector'; labels: Set<string> };
const SCALAR: Value = { kind: 'scalar' };

export interface CheckOptions {
  /** Labels Prometheus attaches at scrape time (job, instance, …): never in the exposition. */
  targetLabels: ReadonlySet<string>;
  /** Labels the query's result must carry (legend placeholders, alert annotations). */
  outputLabels?: string[];
}

export interface CheckResult {
  problems: string[];
  metrics: Set<string>;
  /** Labels the result may carry; undefined for a scalar result. */
  labels: Set<string> | undefined;
}

const FUNCTIONS_RETURNING_SCALAR = new Set(['time', 'pi', 'scalar']);

/** Parses `expr` and checks everything it references against `scrape`. */
export function checkExpr(expr: string, scrape: Scrape, opts: CheckOptions): CheckResult {
  const problems: string[] = [];
  const metrics = new Set<string>();
  const tree = parser.parse(expr);
  tree.iterate({
    enter(n) {
      if (n.type.isError)
        problems.push(`syntax error at ${n.from}: …${expr.slice(Math.max(0, n.from - 20), n.from + 20)}…`);
    },
  });
  if (problems.length) return { problems, metrics, labels: undefined };
  const text = (n: SyntaxNode) => expr.slice(n.from, n.to);
  const children = (n: SyntaxNode): SyntaxNode[] => {
    const out: SyntaxNode[] = [];
    for (let c = n.firstChild; c; c = c.nextSibling) out.push(c);
    return out;
  };
  const unquote = (n: SyntaxNode): string => {
    const s = text(n);
    // Raw strings (`…`) are taken as written; quoted ones are JSON-compatible enough for PromQL's escapes.
    return s.startsWith('`')
      ? s.slice(1, -1)
      : s.startsWith("'")
        ? JSON.parse(`"${s.slice(1, -1).replace(/"/g, '\\"')}"`)
        : JSON.parse(s);
  };
  const groupingLabels = (n: SyntaxNode | undefined): string[] =>
    n
      ? children(n)
          .filter((c) => c.name === 'LabelName')
          .map(text)
      : [];
  const requireLabels = (labels: string[], on: Set<string>, where: string) => {
    for (const l of labels)
      if (!on.has(l))
        problems.push(
          `label '${l}' (${where}) is on none of the series it applies to (they have: ${[...on].sort().join(', ') || 'no labels'})`,
        );
  };

  const selector = (n: SyntaxNode): Value => {
    let name: string | undefined;
    const matchers: { label: string; op: string; value: string }[] = [];
    for (const c of children(n)) {
      if (c.name === 'Identifier') name = text(c);
      if (c.name !== 'LabelMatchers') continue;
      for (const m of children(c)) {
        if (m.name === 'QuotedLabelName') name = unquote(m.firstChild!);
        if (m.name !== 'UnquotedLabelMatcher' && m.name !== 'QuotedLabelMatcher') continue;
        const [l, op, v] = children(m);
        const label = l!.name === 'QuotedLabelName' ? unquote(l!.firstChild!) : text(l!);
        matchers.push({ label, op: text(op!), value: unquote(v!) });
      }
    }
    // {__name__=~"a|b"} selects every metric whose name matches.
    let names = name !== undefined ? [name] : [];
    for (const m of matchers.filter((x) => x.label === '__name__')) {
      // A list of names (a|b) names each one: each must exist, not just one of them.
      if (m.op === '=~' && /^[a-zA-Z_:][\w:]*(\|[a-zA-Z_:][\w:]*)*$/.test(m.value)) {
        names = m.value.split('|');
        continue;
      }
      const re = new RegExp(`^(?:${m.value})$`);
      const match = [...scrape.keys()].filter((k) =>
        m.op === '=' ? k === m.value : m.op === '=~' ? re.test(k) : m.op === '!=' ? k !== m.value : !re.test(k),
      );
      names = name !== undefined ? names.filter((x) => match.includes(x)) : match;
      if (!match.length) problems.push(`no metric in the scrape has a name ${m.op} "${m.value}"`);
    }
    const labels = new Set<string>(opts.targetLabels);
    const series = names.map((x) => ({ name: x, labels: scrape.get(x) }));
    for (const s of series) {
      metrics.add(s.name);
      if (!s.labels) problems.push(`metric '${s.name}' is not in the scrape`);
      for (const l of s.labels?.keys() ?? []) labels.add(l);
    }
    for (const m of matchers) {
      if (m.label === '__name__' || opts.targetLabels.has(m.label)) continue;
      const seen = new Set<string>();
      for (const s of series) for (const v of s.labels?.get(m.label) ?? []) seen.add(v);
      const what = `${names.join('|') || '{…}'}{${m.label}${m.op}"${m.value}"}`;
      if (!series.some((s) => s.labels?.has(m.label))) {
        if (series.every((s) => s.labels))
          problems.push(`label '${m.label}' in ${what} is not on that metric in the scrape`);
        continue;
      }
      // A matcher that can select nothing the scenario produced is as suspect as a wrong name.
      if (m.op === '=' && !seen.has(m.value))
        problems.push(`${what}: no such value in the scrape (seen: ${[...seen].sort().join(', ')})`);
      if (m.op === '=~' && ![...seen].some((v) => new RegExp(`^(?:${m.value})$`).test(v)))
        problems.push(`${what}: matches no value in the scrape (seen: ${[...seen].sort().join(', ')})`);
    }
    return { kind: 'vector', labels };
  };

  const vectorLabels = (v: Value | undefined): Set<string> => (v?.kind === 'vector' ? v.labels : new Set());

  const visit = (n: SyntaxNode): Value => {
    switch (n.name) {
      case 'PromQL':
      case 'ParenExpr':
      case 'MatrixSelector':
      case 'SubqueryExpr':
      case 'OffsetExpr':
      case 'StepInvariantExpr':
        return visit(n.firstChild!.name === 'LeftParen' ? n.firstChild!.nextSibling! : n.firstChild!);
      case 'UnaryExpr':
        return visit(n.lastChild!);
      case 'NumberDurationLiteral':
        return SCALAR;
      case 'StringLiteral':
        return { kind: 'string' };
      case 'VectorSelector':
        return selector(n);
      case 'FunctionCall':
        return functionCall(n);
      case 'AggregateExpr':
        return aggregate(n);
      case 'BinaryExpr':
        return binary(n);
      default:
        // Anything else would need its own rule here; say so rather than guess.
        problems.push(`unhandled PromQL node ${n.name}: ${text(n)}`);
        return { kind: 'vector', labels: new Set(opts.targetLabels) };
    }
  };

  const functionCall = (n: SyntaxNode): Value => {
    const fn = text(n.firstChild!);
    const args = children(n.lastChild!);
    const values = args.map(visit);
    if (FUNCTIONS_RETURNING_SCALAR.has(fn)) return SCALAR;
    if (fn === 'vector') return { kind: 'vector', labels: new Set() };
    if (fn === 'absent' || fn === 'absent_over_time') {
      // absent() returns one series with the labels of the selector's equality matchers.
      const eq = new Set<string>();
      args[0]
        ?.getChildren('LabelMatchers')?.[0]
        ?.getChildren('UnquotedLabelMatcher')
        .forEach((m) => {
          if (text(m.getChild('MatchOp')!) === '=') eq.add(text(m.getChild('LabelName')!));
        });
      return { kind: 'vector', labels: eq };
    }
    const firstVector = values.find((v) => v.kind === 'vector');
    const labels = new Set(vectorLabels(firstVector));
    if (fn === 'histogram_quantile' || fn === 'histogram_fraction') {
      requireLabels(['le'], labels, `${fn} needs bucket series`);
      labels.delete('le');
    }
    if (fn === 'label_replace' || fn === 'label_join') {
      const strings = args.filter((a) => a.name === 'StringLiteral').map(unquote);
      const [dst, ...rest] = fn === 'label_replace' ? [strings[0]!, strings[2]!] : [strings[0]!, ...strings.slice(2)];
      requireLabels(rest.filter(Boolean), labels, `source of ${fn}`);
      labels.add(dst);
    }
    return { kind: 'vector', labels };
  };

  const aggregate = (n: SyntaxNode): Value => {
    const op = text(n.firstChild!);
    const modifier = n.getChild('AggregateModifier');
    const body = children(n.getChild('FunctionCallBody')!);
    const values = body.map(visit);
    const input = vectorLabels(values[values.length - 1]);
    const grouping = groupingLabels(modifier?.getChild('GroupingLabels') ?? undefined);
    requireLabels(grouping, input, `${op} ${modifier ? text(modifier.firstChild!) : ''}`.trim());
    const without = modifier?.firstChild?.name === 'Without';
    // topk, bottomk and limitk select series, they do not aggregate them: labels stay.
    if (['topk', 'bottomk', 'limitk', 'limit_ratio'].includes(op)) return { kind: 'vector', labels: new Set(input) };
    const out = without ? new Set([...input].filter((l) => !grouping.includes(l))) : new Set(grouping);
    if (op === 'count_values') out.add(unquote(body[0]!));
    return { kind: 'vector', labels: out };
  };

  const binary = (n: SyntaxNode): Value => {
    const parts = children(n);
    const lhs = visit(parts[0]!);
    const rhs = visit(parts[parts.length - 1]!);
    const op = text(parts[1]!);
    if (lhs.kind !== 'vector' && rhs.kind !== 'vector') return SCALAR;
    if (lhs.kind !== 'vector') return { kind: 'vector', labels: new Set(vectorLabels(rhs)) };
    if (rhs.kind !== 'vector') return { kind: 'vector', labels: new Set(lhs.labels) };
    const matching = n.getChild('MatchingModifierClause');
    const [onLabels, extra] = matching ? matching.getChildren('GroupingLabels').map((g) => groupingLabels(g)) : [];
    const on = matching?.firstChild?.name === 'On';
    const groupSide = matching?.getChild('GroupLeft') ? 'left' : matching?.getChild('GroupRight') ? 'right' : undefined;
    if (on) {
      requireLabels(onLabels ?? [], lhs.labels, `on(…), left side`);
      requireLabels(onLabels ?? [], rhs.labels, `on(…), right side`);
    } else if (onLabels) {
      const either = new Set([...lhs.labels, ...rhs.labels]);
      requireLabels(onLabels, either, 'ignoring(…)');
    }
    if (op === 'or') return { kind: 'vector', labels: new Set([...lhs.labels, ...rhs.labels]) };
    if (op === 'and' || op === 'unless') return { kind: 'vector', labels: new Set(lhs.labels) };
    if (groupSide) {
      const [many, one] = groupSide === 'left' ? [lhs.labels, rhs.labels] : [rhs.labels, lhs.labels];
      requireLabels(extra ?? [], one, `group_${groupSide}(…)`);
      return { kind: 'vector', labels: new Set([...many, ...(extra ?? [])]) };
    }
    if (on) return { kind: 'vector', labels: new Set(onLabels) };
    if (onLabels) return { kind: 'vector', labels: new Set([...lhs.labels].filter((l) => !onLabels.includes(l))) };
    return { kind: 'vector', labels: new Set(lhs.labels) };
  };

  const result = visit(tree.topNode);
  const labels = result.kind === 'vector' ? result.labels : undefined;
  if (opts.outputLabels?.length) requireLabels(opts.outputLabels, labels ?? new Set(), 'printed from the result');
  return { problems, metrics, labels };
}

/** Grafana's template variables replaced by values a query may take, so the PromQL parses. */
export function interpolate(expr: string, vars: Record<string, string>): string {
  return expr.replace(/\$\{(\w+)(?::\w+)?\}|\$(\w+)/g, (whole, a: string | undefined, b: string | undefined) => {
    const name = (a ?? b)!;
    if (!(name in vars)) throw new Error(`unknown variable $${name} in: ${expr}`);
    return vars[name]!;
  });
}
