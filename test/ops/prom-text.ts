/**
 * A small, strict parser of the Prometheus text exposition format (0.0.4),
 * for the metrics tests: it throws on anything a Prometheus server would
 * reject or that a well-behaved exporter should not write (a sample before
 * its TYPE, a family split in two, a duplicate series, a bad name, escape,
 * value or label set, a missing final newline), and returns the families.
 */

/** One sample line. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** One metric family (`# HELP` / `# TYPE` and its samples). */
export interface Family {
  name: string;
  help: string | undefined;
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  samples: Sample[];
}

const METRIC = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function fail(line: number, why: string, text: string): never {
  throw new Error(`exposition line ${line}: ${why}: ${JSON.stringify(text)}`);
}

function parseValue(s: string, line: number, text: string): number {
  // As Prometheus reads it (Go's strconv.ParseFloat): NaN and Inf in any case.
  if (/^nan$/i.test(s)) return NaN;
  if (/^\+?inf(inity)?$/i.test(s)) return Infinity;
  if (/^-inf(inity)?$/i.test(s)) return -Infinity;
  if (!/^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$/.test(s)) fail(line, `bad value ${s}`, text);
  return Number(s);
}

/** The family a sample name belongs to (histogram and summary suffixes stripped when such a family exists). */
function familyOf(name: string, families: Map<string, Family>): Family | undefined {
  const f = families.get(name);
  if (f) return f;
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (!name.endsWith(suffix)) continue;
    const base = families.get(name.slice(0, -suffix.length));
    if (base && (base.type === 'histogram' || (base.type === 'summary' && suffix !== '_bucket'))) return base;
  }
  return undefined;
}

/** Parse `{a="x",b="y"}` starting at `s[i] === '{'`; returns the labels and the index after `}`. */
function parseLabels(s: string, i: number, line: number): [Record<string, string>, number] {
  const labels: Record<string, string> = {};
  i++;
  for (;;) {
    if (s[i] === '}') return [labels, i + 1];
    const eq = s.indexOf('=', i);
    if (eq < 0) fail(line, 'label without =', s);
    const name = s.slice(i, eq).trim();
    if (!LABEL.test(name) || name.startsWith('__')) fail(line, `bad label name ${name}`, s);
    if (name in labels) fail(line, `duplicate label ${name}`, s);
    i = eq + 1;
    if (s[i] !== '"') fail(line, 'label value not quoted', s);
    i++;
    let v = '';
    for (;;) {
      const c = s[i];
      if (c === undefined) fail(line, 'unterminated label value', s);
      if (c === '"') break;
      if (c === '\\') {
        const n = s[i + 1];
        if (n === '\\') v += '\\';
        else if (n === '"') v += '"';
        else if (n === 'n') v += '\n';
        else fail(line, `bad escape \\${n}`, s);
        i += 2;
        continue;
      }
      v += c;
      i++;
    }
    labels[name] = v;
    i++;
    if (s[i] === ',') i++;
    else if (s[i] !== '}') fail(line, 'expected , or } after a label', s);
  }
}

/** Parse an exposition; throws on any violation. */
export function parseExposition(text: string): Map<string, Family> {
  if (text.length > 0 && !text.endsWith('\n')) throw new Error('exposition does not end with a newline');
  const families = new Map<string, Family>();
  const series = new Set<string>();
  const finished = new Set<string>();
  let current: Family | undefined;
  const lines = text.split('\n');
  lines.pop();
  lines.forEach((raw, idx) => {
    const line = idx + 1;
    if (raw.trim() === '') return;
    if (raw.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(raw);
      if (!m) return; // a comment
      const [, kind, name = '', rest = ''] = m;
      if (!METRIC.test(name)) fail(line, `bad metric name ${name}`, raw);
      let f = families.get(name);
      if (f && finished.has(name)) fail(line, `family ${name} appears twice`, raw);
      if (!f) {
        f = { name, help: undefined, type: 'untyped', samples: [] };
        families.set(name, f);
        if (current && current !== f) finished.add(current.name);
        current = f;
      }
      if (kind === 'HELP') {
        if (f.help !== undefined) fail(line, `second HELP for ${name}`, raw);
        if (/\\[^\\n]/.test(rest.replace(/\\\\/g, ''))) fail(line, 'bad escape in HELP', raw);
        f.help = rest.replace(/\\(\\|n)/g, (_s, c: string) => (c === 'n' ? '\n' : '\\'));
      } else {
        if (f.samples.length > 0) fail(line, `TYPE after samples of ${name}`, raw);
        if (!TYPES.has(rest)) fail(line, `bad type ${rest}`, raw);
        f.type = rest as Family['type'];
      }
      return;
    }
    const nm = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(raw);
    if (!nm) fail(line, 'bad sample line', raw);
    const name = nm[0];
    let i = name.length;
    let labels: Record<string, string> = {};
    if (raw[i] === '{') [labels, i] = parseLabels(raw, i, line);
    if (raw[i] !== ' ') fail(line, 'expected a space before the value', raw);
    const parts = raw.slice(i + 1).split(' ');
    if (parts.length < 1 || parts.length > 2 || parts[0] === '') fail(line, 'expected a value and an optional timestamp', raw);
    const value = parseValue(parts[0] as string, line, raw);
    if (parts.length === 2 && !/^-?[0-9]+$/.test(parts[1] as string)) fail(line, 'bad timestamp', raw);
    const f = familyOf(name, families);
    if (!f) fail(line, `sample of ${name} without a TYPE`, raw);
    if (f !== current) fail(line, `sample of ${name} outside its family block`, raw);
    if (f.type === 'histogram' && name === `${f.name}_bucket` && labels.le === undefined) fail(line, 'bucket without le', raw);
    if (f.type === 'counter' && value < 0) fail(line, 'negative counter', raw);
    const key = name + JSON.stringify(Object.entries(labels).sort());
    if (series.has(key)) fail(line, 'duplicate series', raw);
    series.add(key);
    f.samples.push({ name, labels, value });
  });
  return families;
}

/** Samples named `name` whose labels include `match`. */
export function samples(families: Map<string, Family>, name: string, match: Record<string, string> = {}): Sample[] {
  const f = familyOf(name, families);
  if (!f) return [];
  return f.samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v));
}

/** The value of the one sample named `name` with labels including `match` (throws unless exactly one). */
export function value(families: Map<string, Family>, name: string, match: Record<string, string> = {}): number {
  const found = samples(families, name, match);
  if (found.length !== 1) throw new Error(`expected one sample ${name}${JSON.stringify(match)}, found ${found.length}`);
  return (found[0] as Sample).value;
}

/** The sum of the samples named `name` with labels including `match` (0 when none). */
export function total(families: Map<string, Family>, name: string, match: Record<string, string> = {}): number {
  return samples(families, name, match).reduce((a, s) => a + s.value, 0);
}
