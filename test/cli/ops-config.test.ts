/**
 * Configuration of `s2cs` and `listen`: `--config FILE` (YAML or JSON),
 * `BEEPSTREAM_<COMMAND>_<OPTION>` variables, flags; precedence flag > env >
 * file > default; errors naming the file or variable and the key;
 * `--print-config` with secrets masked.
 */
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import YAML from 'yaml';
import { createUserEntry } from '../../src/index.js';
import { serializeUsersFile } from '../../src/profiles/index.js';
import { buildProgram } from '../../src/cli/main.js';
import { configurableOptions, envNameOf, formatConfig, maskValue, resolveConfig } from '../../src/cli/config.js';
import { UsageError } from '../../src/cli/address.js';
import { testPki } from '../helpers/certs.js';
import { run } from '../helpers/cli.js';
import { startServer } from '../helpers/ops-server.js';

const pki = testPki();
const dir = pki.dir;
let n = 0;
function file(name: string, text: string): string {
  const p = join(dir, `ops-config-${++n}-${name}`);
  writeFileSync(p, text);
  return p;
}

/** A small command like ours, parsed from `argv`, for the resolver on its own. */
function parsed(argv: string[]): Command {
  const cmd = new Command('x')
    .exitOverride()
    .option('--port <port>', 'port', '5000')
    .option('--port-range <r>', 'range')
    .option('--verbose', 'flag')
    .option('--peer <host...>', 'list')
    .addOption(new Option('--mode <m>', 'mode').choices(['a', 'b']).default('a'))
    .option('--config <file>', 'file')
    .option('--print-config [format]', 'print')
    .action(() => undefined);
  cmd.parse(argv, { from: 'user' });
  return cmd;
}

test('precedence: flag > environment > file > default, for every option', (t) => {
  const cfg = file('p.yaml', 'port: 1111\nport-range: 10-20\nverbose: true\npeer: [a:1, b:2]\nmode: b\n');
  const env = { X_PORT: '2222', X_PEER: 'c:3, d:4' };
  const r = resolveConfig(parsed(['--config', cfg, '--port', '3333']), { envPrefix: 'X_', env });
  t.deepEqual(r.values, { port: '3333', portRange: '10-20', verbose: true, peer: ['c:3', 'd:4'], mode: 'b' });
  t.deepEqual(r.sources, { port: 'flag', portRange: 'file', verbose: 'file', peer: 'env', mode: 'file' });
  t.is(resolveConfig(parsed(['--config', cfg]), { envPrefix: 'X_', env }).values.port, '2222');
  t.is(resolveConfig(parsed(['--config', cfg]), { envPrefix: 'X_', env: {} }).values.port, '1111');
  const none = resolveConfig(parsed([]), { envPrefix: 'X_', env: {} });
  t.deepEqual(none.values, { port: '5000', mode: 'a' });
  t.is(none.sources.port, 'default');
  t.is(none.sources.portRange, 'unset');
  // The file itself may come from the environment; booleans from the environment.
  const viaEnv = resolveConfig(parsed([]), { envPrefix: 'X_', env: { X_CONFIG: cfg, X_VERBOSE: 'no' } });
  t.is(viaEnv.values.portRange, '10-20');
  t.is(viaEnv.values.verbose, false);
  // Variable names: the option in upper snake case after the prefix.
  t.deepEqual(configurableOptions(parsed([])).map((o) => envNameOf('X_', o)), ['X_PORT', 'X_PORT_RANGE', 'X_VERBOSE', 'X_PEER', 'X_MODE']);
});

test('resolver errors name the file or variable and the key', (t) => {
  const cases: [string, string, RegExp][] = [
    ['u.yaml', 'prot: 1\n', /--config ".*u\.yaml": unknown key "prot" \(known: port, portRange, verbose, peer, mode\)/],
    ['t.yaml', 'port: [1, 2]\n', /--config ".*t\.yaml": key "port" must be a string or a number, not a list/],
    ['b.yaml', 'verbose: "yes please"\n', /key "verbose" must be true or false, not a string/],
    ['m.yaml', 'mode: c\n', /key "mode" must be one of a, b, not "c"/],
    ['d.yaml', 'port-range: 1-2\nportRange: 3-4\n', /key "portRange" is given twice/],
    ['n.yaml', 'port:\n', /key "port" must be a string or a number, not null/],
    ['s.yaml', 'port: 1\n  bad: indentation\n', /--config ".*s\.yaml" is not valid JSON or YAML: .*\(line \d+, column \d+\)/],
    ['dup.yaml', 'port: 1\nport: 2\n', /Map keys must be unique.*\(line 2, column 1\)/],
    ['list.yaml', '- port\n', /expected a JSON object \(a YAML mapping\) of option names to values, not a list/],
    ['j.json', '{"port": 1,}', /--config ".*j\.json" is not valid JSON: /],
  ];
  for (const [name, text, pattern] of cases) {
    const err = t.throws(() => resolveConfig(parsed(['--config', file(name, text)]), { envPrefix: 'X_', env: {} }), { instanceOf: UsageError }, name);
    t.regex(err?.message ?? '', pattern, name);
  }
  t.throws(() => resolveConfig(parsed([]), { envPrefix: 'X_', env: { X_VERBOSE: 'maybe' } }), { message: /environment variable X_VERBOSE must be true or false/ });
  t.throws(() => resolveConfig(parsed([]), { envPrefix: 'X_', env: { X_MODE: 'z' } }), { message: /environment variable X_MODE must be one of a, b, not "z"/ });
  t.throws(() => resolveConfig(parsed(['--config', join(dir, 'missing.yaml')]), { envPrefix: 'X_', env: {} }), { message: /--config ".*missing\.yaml": cannot read the file/ });
  // Checks of values from a file or the environment are prefixed with where they came from.
  const validate = {
    port: (v: string) => {
      if (!/^\d+$/.test(v)) throw new UsageError(`invalid port ${JSON.stringify(v)}`);
    },
  };
  t.throws(() => resolveConfig(parsed(['--config', file('v.yaml', 'port: abc\n')]), { envPrefix: 'X_', env: {}, validate }), { message: /--config ".*v\.yaml": key "port": invalid port "abc"/ });
  t.throws(() => resolveConfig(parsed([]), { envPrefix: 'X_', env: { X_PORT: 'abc' }, validate }), { message: /environment variable X_PORT: invalid port "abc"/ });
  // An unknown variable with our prefix is a warning, not an error.
  const warnings: string[] = [];
  resolveConfig(parsed([]), { envPrefix: 'X_', env: { X_PROT: '1' }, warn: (l) => warnings.push(l) });
  t.regex(warnings[0] ?? '', /unknown environment variable X_PROT ignored/);
});

test('every s2cs and listen flag is a config key and a variable, derived from the command', (t) => {
  const program = buildProgram();
  for (const [name, prefix] of [['s2cs', 'BEEPSTREAM_S2CS_'], ['listen', 'BEEPSTREAM_LISTEN_']] as const) {
    const cmd = program.commands.find((c) => c.name() === name) as Command;
    const keys = configurableOptions(cmd).map((o) => o.long);
    const all = cmd.options.map((o) => o.long).filter((l) => l !== '--config' && l !== '--print-config');
    t.deepEqual(keys, all, name);
    t.true(keys.includes('--log-level'));
    const portOpt = configurableOptions(cmd).find((o) => o.long === '--port') as Option;
    t.is(envNameOf(prefix, portOpt), `${prefix}PORT`);
  }
});

test('maskValue: secret-named keys, key material, URLs with credentials; references and paths shown', (t) => {
  t.is(maskValue('password', 'hunter2'), '***');
  t.is(maskValue('statusToken', 'abc'), '***');
  t.is(maskValue('clientSecret', 'abc'), '***');
  t.is(maskValue('pskKey', 'a'.repeat(64)), '***');
  t.is(maskValue('uid', 'x'), '***');
  t.is(maskValue('password', 'env:PW'), 'env:PW');
  t.is(maskValue('token', 'file:/run/secrets/t'), 'file:/run/secrets/t');
  t.is(maskValue('tlsKey', '/etc/beep/key.pem'), '/etc/beep/key.pem');
  t.is(maskValue('tlsPskFile', '/etc/beep/psk.txt'), '/etc/beep/psk.txt');
  t.is(maskValue('tlsKey', '-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n'), '***');
  t.is(maskValue('anything', '0123456789abcdef0123456789abcdef'), '***', 'a uid or a hex key under any name');
  t.is(maskValue('issuer', 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlc2ln'), '***', 'a JWT');
  t.is(maskValue('jwks', 'https://svc:hunter2@idp.example/jwks?access_token=abc&x=1'), 'https://svc:***@idp.example/jwks?access_token=***&x=1');
  t.is(maskValue('jwks', 'https://idp.example/jwks.json'), 'https://idp.example/jwks.json');
  t.deepEqual(maskValue('tokens', ['a', 'env:B']), ['***', 'env:B']);
  t.is(maskValue('requireTls', true), true);
  t.is(maskValue('host', '127.0.0.1'), '127.0.0.1');
});

test('formatConfig: YAML with sources (loadable again), JSON of the set keys', (t) => {
  const r = resolveConfig(parsed(['--port', '1']), { envPrefix: 'X_', env: { X_VERBOSE: 'true' } });
  const yaml = formatConfig(r, 'yaml');
  t.is(
    yaml,
    [
      '# effective configuration (flag > env > file > default)',
      'port: 1  # flag',
      '# portRange: (not set; env X_PORT_RANGE)',
      'verbose: true  # env X_VERBOSE',
      '# peer: (not set; env X_PEER)',
      'mode: a  # default',
      '',
    ].join('\n'),
  );
  t.deepEqual(YAML.parse(yaml), { port: 1, verbose: true, mode: 'a' });
  t.deepEqual(JSON.parse(formatConfig(r, 'json')), { port: 1, verbose: true, mode: 'a' });
});

test('s2cs --print-config: file, env and flags merged, secrets masked, exit 0 without starting', async (t) => {
  const cfg = file(
    's2cs.yaml',
    [
      '# an S2CS',
      `tls-cert: ${pki.paths.serverCert}`,
      `tlsKey: ${pki.paths.serverKey}`,
      'users: /etc/beepstream/users.json',
      'port: 1111',
      'portRange: 5100-5199',
      'jwks: https://svc:hunter2@idp.example/jwks?access_token=tok-123&x=1',
      'issuer: https://idp.example',
      'audience: s2cs',
      'logLevel: debug',
      '',
    ].join('\n'),
  );
  const r = await run(['s2cs', '--config', cfg, '--print-config', '--max-conn', '8'], 60_000, { env: { BEEPSTREAM_S2CS_PORT: '2222', BEEPSTREAM_S2CS_LOG_FORMAT: 'json' } });
  t.is(r.code, 0, r.stderr);
  t.false(/listening on/.test(r.stdout), 'nothing started');
  for (const secret of ['hunter2', 'tok-123']) t.false(r.stdout.includes(secret), secret);
  const lines = r.stdout.split('\n');
  const expect = [
    'port: 2222  # env BEEPSTREAM_S2CS_PORT',
    'portRange: 5100-5199  # config file',
    `tlsCert: ${pki.paths.serverCert}  # config file`,
    `tlsKey: ${pki.paths.serverKey}  # config file`,
    'jwks: https://svc:***@idp.example/jwks?access_token=***&x=1  # config file',
    'maxConn: 8  # flag',
    'logLevel: debug  # config file',
    'logFormat: json  # env BEEPSTREAM_S2CS_LOG_FORMAT',
    'maxSessions: 1024  # default',
    '# dataHost: (not set; env BEEPSTREAM_S2CS_DATA_HOST)',
  ];
  for (const l of expect) t.true(lines.includes(l), `${l}\n${r.stdout}`);
  // Every flag of the command shows, set or not (flags added later included).
  const help = await run(['s2cs', '--help']);
  for (const m of help.stdout.matchAll(/^\s+(?:-\w, )?--([a-z-]+)/gm)) {
    const flag = m[1] as string;
    if (['config', 'print-config', 'help'].includes(flag)) continue;
    const key = flag.replace(/-([a-z])/g, (_x, c: string) => c.toUpperCase());
    t.regex(r.stdout, new RegExp(`^(# )?${key}: `, 'm'), flag);
  }
  const json = await run(['s2cs', '--config', cfg, '--print-config', 'json']);
  t.is(json.code, 0, json.stderr);
  const doc = JSON.parse(json.stdout) as Record<string, unknown>;
  t.like(doc, { port: 1111, portRange: '5100-5199', maxConn: 64, jwks: 'https://svc:***@idp.example/jwks?access_token=***&x=1' });
  const bad = await run(['s2cs', '--print-config', 'toml']);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /invalid --print-config "toml": expected yaml or json/);
});

test('listen --print-config: booleans from a file and the environment', async (t) => {
  const cfg = file('listen.yml', 'require-tls: true\ntlsPskFile: /etc/beep/psk.txt\nallowAnonymous: false\n');
  const r = await run(['listen', '--config', cfg, '--print-config'], 60_000, { env: { BEEPSTREAM_LISTEN_REQUIRE_AUTH: 'yes', BEEPSTREAM_LISTEN_TRACE: '0' } });
  t.is(r.code, 0, r.stderr);
  for (const l of ['requireTls: true  # config file', 'tlsPskFile: /etc/beep/psk.txt  # config file', 'allowAnonymous: false  # config file', 'requireAuth: true  # env BEEPSTREAM_LISTEN_REQUIRE_AUTH', 'trace: false  # env BEEPSTREAM_LISTEN_TRACE', 'port: 10288  # default']) {
    t.true(r.stdout.split('\n').includes(l), `${l}\n${r.stdout}`);
  }
});

test('s2cs and listen: configuration errors exit 2 naming the file or variable and the key', async (t) => {
  const cases: [string[], Record<string, string>, RegExp][] = [
    [['s2cs', '--config', file('a.yaml', 'tlsCert: c\nbogus: 1\n')], {}, /--config ".*a\.yaml": unknown key "bogus" \(known: host, port, /],
    [['s2cs', '--config', file('b.yaml', 'port: {a: 1}\n')], {}, /--config ".*b\.yaml": key "port" must be a string or a number, not a mapping/],
    [['s2cs', '--config', file('c.yaml', 'port: 99999\n')], {}, /--config ".*c\.yaml": key "port": invalid port "99999"/],
    [['s2cs', '--config', file('d.yaml', 'max-conn: 0\n')], {}, /--config ".*d\.yaml": key "max-conn": invalid --max-conn "0"/],
    [['s2cs', '--config', file('e.yaml', 'portRange: 10\n')], {}, /key "portRange": --port-range must be FROM-TO/],
    [['s2cs', '--config', file('f.yaml', 'logLevel: loud\n')], {}, /key "logLevel" must be one of fatal, error, warn, info, debug, trace, silent, not "loud"/],
    [['s2cs', '--config', file('g.yaml', 'port: [1\n')], {}, /--config ".*g\.yaml" is not valid JSON or YAML: .*\(line \d+, column \d+\)/],
    [['s2cs'], { BEEPSTREAM_S2CS_PORT: 'abc' }, /environment variable BEEPSTREAM_S2CS_PORT: invalid port "abc"/],
    [['s2cs'], { BEEPSTREAM_S2CS_CONFIG: '/nonexistent/s2cs.yaml' }, /--config "\/nonexistent\/s2cs\.yaml": cannot read the file/],
    [['listen', '--config', file('h.yaml', 'requireTls: "yes"\n')], {}, /key "requireTls" must be true or false, not a string/],
    [['listen'], { BEEPSTREAM_LISTEN_REQUIRE_TLS: 'maybe' }, /environment variable BEEPSTREAM_LISTEN_REQUIRE_TLS must be true or false/],
    [['listen'], { BEEPSTREAM_LISTEN_MAX_CHANNELS: '0' }, /environment variable BEEPSTREAM_LISTEN_MAX_CHANNELS: invalid --max-channels "0"/],
  ];
  for (const [args, env, pattern] of cases) {
    const r = await run(args, 20000, { env });
    t.is(r.code, 2, `${args.join(' ')} ${JSON.stringify(env)}: ${r.stderr}`);
    t.regex(r.stderr, pattern, args.join(' '));
  }
});

test.serial('s2cs runs from a YAML file with kebab-case keys and a variable; the first line is still the contract', async (t) => {
  const users = join(dir, 'ops-config-users.json');
  writeFileSync(users, serializeUsersFile(new Map([['alice', await createUserEntry('pw-ops-config', 4096)]])), { mode: 0o600 });
  const cfg = file('run.yaml', `tls-cert: ${pki.paths.serverCert}\ntls-key: ${pki.paths.serverKey}\nport: 1\nlog-level: warn\n`);
  const server = await startServer(['s2cs', '--config', cfg], { BEEPSTREAM_S2CS_USERS: users, BEEPSTREAM_S2CS_PORT: '0' });
  t.regex(server.firstLine, /^listening on 127\.0\.0\.1:[1-9]\d*$/);
  t.not(server.firstLine, 'listening on 127.0.0.1:1');
  t.is(await server.stop(), 0);
  t.is(server.stdout(), `${server.firstLine}\n`, 'log level warn from the file: no info records');
});
