/**
 * Configuration of the long-running commands (`s2cs`, `listen`) from three
 * places besides the command line: a `--config FILE` (YAML or JSON), the
 * environment, and the defaults. Precedence: flag > environment > file >
 * default.
 *
 * The settable keys are derived from the command's own commander options,
 * so a new flag is covered without further work: `--port-range` is the key
 * `portRange` (or `port-range`) in a file and the environment variable
 * `BEEPSTREAM_S2CS_PORT_RANGE` (prefix, then the option's name in upper case
 * with `_` for `-`). Files are validated strictly; every error names the
 * file (or variable) and the key. `--print-config` shows the effective
 * configuration with secrets masked (see {@link maskValue}).
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { dirname, extname, isAbsolute, resolve as resolvePath } from 'node:path';
import type { Command, Option } from 'commander';
import YAML from 'yaml';
import { UsageError } from './address.js';

/** Option attribute names that configure the configuration itself, never settable from a file or the environment. */
const META_KEYS = new Set(['config', 'printConfig', 'help', 'version']);

/** Where an effective value came from. */
export type ConfigSource = 'flag' | 'env' | 'file' | 'default' | 'unset';

/** A value as commander holds it: a string, a boolean, or a list (variadic options). */
export type ConfigValue = string | boolean | string[];

/** Options of {@link resolveConfig}. */
export interface ResolveConfigOptions {
  /** Prefix of the environment variables, e.g. `BEEPSTREAM_S2CS_`. */
  envPrefix: string;
  /** The environment (default `process.env`). */
  env?: NodeJS.ProcessEnv;
  /** Checks of string values that came from a file or the environment, by key; throw a UsageError to refuse (its message is prefixed with where the value came from). */
  validate?: Record<string, (value: string) => unknown>;
  /** Warnings, e.g. an unknown variable with our prefix (default: standard error). */
  warn?: (line: string) => void;
  /**
   * Keys (attribute names) this command does not have but sibling commands
   * sharing the same file and prefix do: ignored in the file and the
   * environment instead of refused (e.g. `remote` for `s2uc status`).
   */
  sharedKeys?: ReadonlySet<string>;
  /**
   * Keys whose values are paths: a relative path from the config file is
   * resolved against the file's directory. (A `file:PATH` secret reference
   * from the file is resolved so whatever its key.)
   */
  pathKeys?: ReadonlySet<string>;
}

/** The effective configuration of a command. */
export interface ResolvedConfig {
  /** Effective values by attribute name (as commander's `opts()`), unset keys absent. */
  values: Record<string, ConfigValue>;
  /** Where each configurable key's value came from. */
  sources: Record<string, ConfigSource>;
  /** The environment variable of each key. */
  envNames: Record<string, string>;
  /** The configuration file read, if any. */
  file?: string;
  /**
   * How a key's value was given, for error messages: the flag (`--tls-cert`,
   * also for defaults), the variable (`BEEPSTREAM_S2CS_TLS_CERT`), or the
   * key in the file (`key "tlsCert" in --config "s2cs.yaml"`).
   */
  nameOf(attr: string): string;
}

/** The options of `cmd` a file or the environment may set (all but `--config`, `--print-config`, `--help`). */
export function configurableOptions(cmd: Command): Option[] {
  return cmd.options.filter((o) => o.long !== undefined && !META_KEYS.has(o.attributeName()));
}

/** `portRange` → `PORT_RANGE`. */
function upperSnake(attr: string): string {
  return attr.replace(/[A-Z]/g, (c) => '_' + c).toUpperCase();
}

/** The environment variable of an option: `prefix` + its name in upper snake case (`--port-range` → `BEEPSTREAM_S2CS_PORT_RANGE`). */
export function envNameOf(prefix: string, option: Option): string {
  return prefix + upperSnake(option.attributeName());
}

/** `portRange` → `port-range` (the flag without its dashes, for options that are not negated). */
function kebabOf(o: Option): string {
  return o.attributeName().replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
}

/**
 * Read a configuration file: JSON when it ends in `.json`, else YAML (1.2,
 * which also reads JSON). An empty file is an empty configuration. Errors
 * name the file, with the line and column of a syntax error.
 */
export function loadConfigFile(path: string): Record<string, unknown> {
  const where = `--config ${JSON.stringify(path)}`;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new UsageError(`${where}: cannot read the file`);
  }
  let doc: unknown;
  if (extname(path).toLowerCase() === '.json') {
    try {
      doc = JSON.parse(text);
    } catch (err) {
      throw new UsageError(`${where} is not valid JSON: ${(err as Error).message}`);
    }
  } else {
    try {
      doc = YAML.parse(text, { uniqueKeys: true, prettyErrors: true, maxAliasCount: 16 });
    } catch (err) {
      const e = err as Error & { linePos?: [{ line: number; col: number }] };
      const pos = e.linePos?.[0];
      const first = e.message.split('\n')[0]?.replace(/ at line \d+, column \d+:?$/, '') ?? 'syntax error';
      throw new UsageError(`${where} is not valid JSON or YAML: ${first}${pos ? ` (line ${pos.line}, column ${pos.col})` : ''}`);
    }
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new UsageError(`${where}: expected a JSON object (a YAML mapping) of option names to values, not ${Array.isArray(doc) ? 'a list' : typeof doc}`);
  return doc as Record<string, unknown>;
}

function describeType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  return typeof v === 'object' ? 'a mapping' : `a ${typeof v}`;
}

/** Convert one file value to commander's form, or throw naming the key. */
function fromFile(o: Option, key: string, v: unknown, where: string): ConfigValue {
  const bad = (what: string): UsageError => new UsageError(`${where}: key ${JSON.stringify(key)} must be ${what}, not ${describeType(v)}`);
  if (o.isBoolean() || o.negate) {
    if (typeof v !== 'boolean') throw bad('true or false');
    return v;
  }
  const scalar = (x: unknown): string => {
    if (typeof x === 'string') return x;
    if (typeof x === 'number' && Number.isFinite(x)) return String(x);
    throw bad(o.variadic ? 'a string or a number, or a list of them' : 'a string or a number');
  };
  if (o.optional && typeof v === 'boolean') return v;
  if (o.variadic) return Array.isArray(v) ? v.map(scalar) : [scalar(v)];
  return scalar(v);
}

/** Convert one environment value, or throw naming the variable. */
function fromEnv(o: Option, name: string, v: string): ConfigValue {
  if (o.isBoolean() || o.negate) {
    const t = v.trim().toLowerCase();
    let b: boolean;
    if (['1', 'true', 'yes', 'on'].includes(t)) b = true;
    else if (['0', 'false', 'no', 'off'].includes(t)) b = false;
    else throw new UsageError(`environment variable ${name} must be true or false (or 1/0, yes/no, on/off), not ${JSON.stringify(v)}`);
    return b;
  }
  if (o.variadic) return v.split(',').map((s) => s.trim()).filter(Boolean);
  return v;
}

function checkChoices(o: Option, value: ConfigValue, where: string): void {
  if (!o.argChoices) return;
  for (const v of Array.isArray(value) ? value : [value]) {
    if (typeof v === 'string' && !o.argChoices.includes(v)) throw new UsageError(`${where} must be one of ${o.argChoices.join(', ')}, not ${JSON.stringify(v)}`);
  }
}

/**
 * The effective configuration of `cmd` after parsing: each configurable
 * option from the command line if given there, else from its environment
 * variable, else from `--config` (itself a flag or the `…CONFIG` variable),
 * else its default. Unknown keys, wrong types and bad values are usage
 * errors naming the file or variable and the key.
 */
export function resolveConfig(cmd: Command, options: ResolveConfigOptions): ResolvedConfig {
  const env = options.env ?? process.env;
  const warn = options.warn ?? ((l: string): void => void process.stderr.write(l + '\n'));
  const flags = cmd.opts() as Record<string, unknown>;
  const opts = configurableOptions(cmd);
  const envNames: Record<string, string> = {};
  const byKey = new Map<string, Option>();
  for (const o of opts) {
    envNames[o.attributeName()] = envNameOf(options.envPrefix, o);
    byKey.set(o.attributeName(), o);
    byKey.set(kebabOf(o), o);
  }
  // --config itself: a flag, or its variable.
  const configVar = `${options.envPrefix}CONFIG`;
  const file = typeof flags.config === 'string' ? flags.config : env[configVar] ? env[configVar] : undefined;
  const fromFileValues = new Map<string, ConfigValue>();
  const fileKeys = new Map<string, string>();
  const shared = options.sharedKeys ?? new Set<string>();
  if (file !== undefined) {
    const where = `--config ${JSON.stringify(file)}`;
    const doc = loadConfigFile(file);
    const base = dirname(resolvePath(file));
    for (const [key, v] of Object.entries(doc)) {
      const o = byKey.get(key);
      if (!o) {
        if (shared.has(key) || shared.has(key.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()))) continue;
        const known = opts.map((x) => x.attributeName()).join(', ');
        throw new UsageError(`${where}: unknown key ${JSON.stringify(key)} (known: ${known})`);
      }
      const attr = o.attributeName();
      if (fromFileValues.has(attr)) throw new UsageError(`${where}: key ${JSON.stringify(key)} is given twice (as ${attr} and ${kebabOf(o)})`);
      const value = relativeTo(base, fromFile(o, key, v, where), options.pathKeys?.has(attr) === true);
      fileKeys.set(attr, key);
      checkChoices(o, value, `${where}: key ${JSON.stringify(key)}`);
      runCheck(options, attr, value, `${where}: key ${JSON.stringify(key)}`);
      fromFileValues.set(attr, value);
    }
  }
  const known = new Set([...Object.values(envNames), configVar, ...[...shared].map((k) => options.envPrefix + upperSnake(k))]);
  for (const name of Object.keys(env)) {
    if (name.startsWith(options.envPrefix) && !known.has(name)) warn(`beepstream: warning: unknown environment variable ${name} ignored (known: ${[...known].join(', ')})`);
  }
  const values: Record<string, ConfigValue> = {};
  const sources: Record<string, ConfigSource> = {};
  for (const o of opts) {
    const attr = o.attributeName();
    const name = envNames[attr] as string;
    const src = cmd.getOptionValueSource(attr);
    const envText = env[name];
    let value: ConfigValue | undefined;
    let source: ConfigSource;
    if (src === 'cli') {
      value = flags[attr] as ConfigValue;
      source = 'flag';
    } else if (envText !== undefined && envText !== '') {
      value = fromEnv(o, name, envText);
      checkChoices(o, value, `environment variable ${name}`);
      runCheck(options, attr, value, `environment variable ${name}`);
      source = 'env';
    } else if (fromFileValues.has(attr)) {
      value = fromFileValues.get(attr) as ConfigValue;
      source = 'file';
    } else {
      value = flags[attr] as ConfigValue | undefined;
      source = value === undefined ? 'unset' : 'default';
    }
    if (value !== undefined) values[attr] = value;
    sources[attr] = source;
  }
  const nameOf = (attr: string): string => {
    const o = opts.find((x) => x.attributeName() === attr);
    const flag = o?.long ?? `--${attr.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())}`;
    switch (sources[attr]) {
      case 'env':
        return envNames[attr] as string;
      case 'file':
        return `key ${JSON.stringify(fileKeys.get(attr) ?? attr)} in --config ${JSON.stringify(file)}`;
      default:
        return flag;
    }
  };
  return { values, sources, envNames, ...(file !== undefined ? { file } : {}), nameOf };
}

/**
 * A value from a config file with its paths made absolute against the file's
 * directory: the whole value for a path key, and any `file:PATH` reference.
 */
function relativeTo(base: string, value: ConfigValue, isPath: boolean): ConfigValue {
  if (typeof value === 'boolean') return value;
  if (Array.isArray(value)) return value.map((v) => relativeTo(base, v, isPath) as string);
  if (value.startsWith('file:')) return isAbsolute(value.slice(5)) ? value : `file:${resolvePath(base, value.slice(5))}`;
  if (!isPath || value === '' || isAbsolute(value) || /^[a-z][a-z0-9+.-]*:\/\//i.test(value) || value.startsWith('env:')) return value;
  return resolvePath(base, value);
}

function runCheck(options: ResolveConfigOptions, attr: string, value: ConfigValue, where: string): void {
  const check = options.validate?.[attr];
  if (!check) return;
  for (const v of Array.isArray(value) ? value : [value]) {
    if (typeof v !== 'string') continue;
    try {
      check(v);
    } catch (err) {
      if (err instanceof UsageError) throw new UsageError(`${where}: ${err.message}`);
      throw err;
    }
  }
}

/** Key names whose values are secrets (masked unless an `env:`/`file:` reference or the key names a file). */
const SECRET_KEY = /pass(?:word|phrase)?|passwd|secret|token|credential|bearer|authori[sz]ation|api-?key|psk|private|cookie/i;
/** A uid (SciStream: the data path's PSK derives from it), in camelCase or kebab-case keys. */
const UID_KEY = /(?:^|[-_])uid(?![a-z])|Uid(?![a-z])/;
/** Key names of key material (masked unless a reference or a file path). */
const KEY_KEY = /key$/i;
/** Key names of paths (`tlsPskFile`, `usersDir`): a path is not the secret. */
const PATH_KEY = /(?:file|dir|path)$/i;

function secretKey(key: string): boolean {
  return !PATH_KEY.test(key) && (SECRET_KEY.test(key) || UID_KEY.test(key));
}

/** A value that looks like a secret whatever its key: PEM, JWT, long hexadecimal or base64 runs. */
function looksSecret(v: string): boolean {
  return (
    /-----BEGIN [A-Z0-9 ]+-----/.test(v) ||
    /^[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}$/.test(v) ||
    /^(?:[0-9a-fA-F]{2}){16,}$/.test(v) ||
    /^[A-Za-z0-9+/]{40,}={0,2}$/.test(v) ||
    /^bearer\s/i.test(v)
  );
}

/** URLs with a password or secret-named query parameters, masked in place. */
function maskUrl(v: string): string {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(v)) return v;
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return v;
  }
  let changed = false;
  if (u.password) {
    u.password = '***';
    changed = true;
  }
  for (const k of [...u.searchParams.keys()]) {
    if (secretKey(k) || KEY_KEY.test(k) || /^(?:sig|signature|code)$/i.test(k)) {
      u.searchParams.set(k, '***');
      changed = true;
    }
  }
  return changed ? u.toString().replace(/%2A%2A%2A/g, '***') : v;
}

/**
 * A value as `--print-config` shows it. `env:NAME` / `file:PATH` references
 * are shown (they are not the secret). Otherwise masked as `***`: values of
 * secret-named keys (password, token, secret, credential, psk, private, uid…;
 * not when the key names a file, directory or path),
 * values of `…key` keys unless they are a file path, and any value that
 * looks like key material (PEM, a JWT, 32+ hexadecimal digits, long
 * base64); URLs keep everything but their password and secret query
 * parameters.
 */
export function maskValue(key: string, value: ConfigValue): ConfigValue {
  if (typeof value === 'boolean') return value;
  if (Array.isArray(value)) return value.map((v) => maskValue(key, v) as string);
  if (/^(?:env|file):/.test(value)) return value;
  if (secretKey(key)) return '***';
  if (looksSecret(value)) return '***';
  if (KEY_KEY.test(key) && (/[\r\n]/.test(value) || !/^[^\s]+$/.test(value))) return '***';
  return maskUrl(value);
}

const SOURCE_TEXT = (r: ResolvedConfig, key: string): string => {
  switch (r.sources[key]) {
    case 'flag':
      return 'flag';
    case 'env':
      return `env ${r.envNames[key]}`;
    case 'file':
      return 'config file';
    default:
      return 'default';
  }
};

/** A value for printing: canonical integers as numbers, the rest as is. */
function printable(v: ConfigValue): ConfigValue | number {
  return typeof v === 'string' && /^(?:0|[1-9][0-9]{0,14})$/.test(v) ? Number(v) : v;
}

/**
 * The effective configuration as `--print-config` prints it, secrets masked
 * ({@link maskValue}). YAML: one `key: value` line per key, with where it
 * came from as a comment, unset keys as comments naming their variable;
 * loadable again with `--config`. JSON: one object of the set keys.
 */
export function formatConfig(r: ResolvedConfig, format: 'yaml' | 'json'): string {
  const keys = Object.keys(r.sources);
  if (format === 'json') {
    const doc: Record<string, unknown> = {};
    for (const k of keys) {
      const v = r.values[k];
      if (v !== undefined) doc[k] = printable(maskValue(k, v));
    }
    return JSON.stringify(doc, null, 2) + '\n';
  }
  const lines = [`# effective configuration (flag > env > file > default)${r.file !== undefined ? `; file ${r.file}` : ''}`];
  for (const k of keys) {
    const v = r.values[k];
    if (v === undefined) {
      lines.push(`# ${k}: (not set; env ${r.envNames[k]})`);
      continue;
    }
    const text = YAML.stringify(printable(maskValue(k, v)), { collectionStyle: 'flow', lineWidth: 0 }).trimEnd();
    lines.push(`${k}: ${text}  # ${SOURCE_TEXT(r, k)}`);
  }
  return lines.join('\n') + '\n';
}

/** Parse `--print-config [format]`: `true` (no value) is YAML. */
export function printConfigFormat(v: unknown): 'yaml' | 'json' | null {
  if (v === undefined || v === false) return null;
  if (v === true) return 'yaml';
  const t = String(v).toLowerCase();
  if (t === 'yaml' || t === 'yml') return 'yaml';
  if (t === 'json') return 'json';
  throw new UsageError(`invalid --print-config ${JSON.stringify(v)}: expected yaml or json`);
}

/** Help text listing where a command's options may come from. */
export function configHelp(prefix: string): string {
  return `
Every option may also be set in --config FILE (YAML or JSON; keys are the option names
in camelCase or as written, e.g. tlsCert or tls-cert) or by an environment variable
${prefix}<OPTION> (e.g. ${prefix}TLS_CERT for --tls-cert; switches as
true/false). Precedence: flag > environment > file > default. --print-config shows the
result with secrets masked.
`;
}
