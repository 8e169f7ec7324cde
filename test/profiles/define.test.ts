import test from 'ava';
import { BeepError, ErrorCodes } from '../../src/errors.js';
import {
  ANSWERS_URI,
  ECHO_URI,
  MAX_ANSWERS,
  MAX_ANSWER_SIZE,
  answersProfile,
  defineProfile,
  echoProfile,
  parseAnswersRequest,
  type ProfileDefinition,
} from '../../src/profiles/index.js';
import * as root from '../../src/index.js';

const invalid = { instanceOf: BeepError, code: ErrorCodes.INVALID_ARGUMENT };

test('defineProfile accepts absolute URIs of any scheme', (t) => {
  for (const uri of [
    'http://xml.resource.org/profiles/NULL/ECHO',
    'http://iana.org/beep/SASL/OTP',
    'urn:example:profile',
    'x-custom+v1.2:thing',
    'https://example.com/p?q=1#frag',
  ]) {
    t.is(defineProfile({ uri }).uri, uri);
  }
});

test('defineProfile refuses relative or malformed URIs with BEEP_ERR_INVALID_ARGUMENT', (t) => {
  for (const uri of ['', 'echo', 'profiles/echo', '/profiles/echo', './echo', '//host/path', '1http://x', 'http://x y', 'http:', ':nothing', 'urn:a<b>', 'http://x"y']) {
    const err = t.throws(() => defineProfile({ uri }), invalid, JSON.stringify(uri));
    t.regex(err?.message ?? '', /absolute URI/);
  }
});

test('defineProfile refuses a missing or non-string uri', (t) => {
  t.throws(() => defineProfile({} as ProfileDefinition), invalid);
  t.throws(() => defineProfile({ uri: 42 } as unknown as ProfileDefinition), invalid);
  t.throws(() => defineProfile({ uri: null } as unknown as ProfileDefinition), invalid);
  t.throws(() => defineProfile(undefined as unknown as ProfileDefinition), invalid);
  t.throws(() => defineProfile(null as unknown as ProfileDefinition), invalid);
});

test('defineProfile refuses hooks that are not functions', (t) => {
  for (const hook of ['onStart', 'onOpen', 'onMessage', 'onCloseRequest', 'onClosed'] as const) {
    for (const bad of ['handler', 1, {}, null, true]) {
      const def = { uri: 'urn:x:y', [hook]: bad } as unknown as ProfileDefinition;
      const err = t.throws(() => defineProfile(def), invalid, `${hook}: ${JSON.stringify(bad)}`);
      t.true(err?.message.includes(hook));
    }
  }
});

test('defineProfile: advertise must be a boolean or a function', (t) => {
  t.notThrows(() => defineProfile({ uri: 'urn:x:y', advertise: false }));
  t.notThrows(() => defineProfile({ uri: 'urn:x:y', advertise: true }));
  t.notThrows(() => defineProfile({ uri: 'urn:x:y', advertise: () => true }));
  for (const bad of ['yes', 1, {}, null]) {
    t.throws(() => defineProfile({ uri: 'urn:x:y', advertise: bad } as unknown as ProfileDefinition), invalid);
  }
});

test('defineProfile accepts undefined hooks and every function hook', (t) => {
  const noop = (): void => undefined;
  const p = defineProfile({
    uri: 'urn:x:all',
    onStart: noop,
    onOpen: noop,
    onMessage: noop,
    onCloseRequest: noop,
    onClosed: noop,
    onClosedExtra: 'extra fields are kept',
  } as ProfileDefinition & { onClosedExtra: string });
  t.is(p.onMessage, noop);
  t.is((p as unknown as { onClosedExtra: string }).onClosedExtra, 'extra fields are kept');
  t.notThrows(() => defineProfile({ uri: 'urn:x:y', onMessage: undefined }));
});

test('defineProfile returns a frozen copy, leaving the definition alone', (t) => {
  const onMessage = (): void => undefined;
  const def: ProfileDefinition = { uri: 'urn:x:copy', onMessage };
  const p = defineProfile(def);
  t.not(p, def);
  t.true(Object.isFrozen(p));
  t.false(Object.isFrozen(def));
  t.is(p.uri, 'urn:x:copy');
  t.is(p.onMessage, onMessage);
  (def as { uri: string }).uri = 'urn:x:changed';
  t.is(p.uri, 'urn:x:copy', 'later changes to the definition do not leak in');
  t.throws(() => {
    (p as { uri: string }).uri = 'urn:x:mutated';
  }, { instanceOf: TypeError });
  t.is(p.uri, 'urn:x:copy');
});

test('bundled profiles are frozen definitions with their URIs', (t) => {
  t.is(ECHO_URI, 'http://xml.resource.org/profiles/NULL/ECHO');
  t.is(echoProfile.uri, ECHO_URI);
  t.is(answersProfile.uri, ANSWERS_URI);
  t.true(Object.isFrozen(echoProfile));
  t.true(Object.isFrozen(answersProfile));
  t.is(typeof echoProfile.onMessage, 'function');
  t.is(typeof answersProfile.onMessage, 'function');
});

test('the package root re-exports the profiles API; helpers such as parseAnswersRequest stay in the profiles layer', (t) => {
  t.is(root.defineProfile, defineProfile);
  t.is(root.echoProfile, echoProfile);
  t.false('parseAnswersRequest' in root);
});

test('parseAnswersRequest: valid forms', (t) => {
  t.deepEqual(parseAnswersRequest('5'), { count: 5, size: undefined });
  t.deepEqual(parseAnswersRequest('0'), { count: 0, size: undefined });
  t.deepEqual(parseAnswersRequest('3:100000'), { count: 3, size: 100000 });
  t.deepEqual(parseAnswersRequest('  7\r\n'), { count: 7, size: undefined });
  t.deepEqual(parseAnswersRequest('1:0'), { count: 1, size: 0 });
  t.deepEqual(parseAnswersRequest('007'), { count: 7, size: undefined });
  t.deepEqual(parseAnswersRequest(String(MAX_ANSWERS)), { count: MAX_ANSWERS, size: undefined });
  t.deepEqual(parseAnswersRequest(`2:${MAX_ANSWER_SIZE}`), { count: 2, size: MAX_ANSWER_SIZE });
});

test('parseAnswersRequest: malformed or out of range gives null', (t) => {
  for (const s of [
    '',
    ' ',
    'abc',
    '-1',
    '+1',
    '1.5',
    '1:',
    ':5',
    '1:2:3',
    '1 : 2',
    '1e3',
    '0x10',
    '12345678', // 8 digits
    '1:1234567890', // 10 digits
    String(MAX_ANSWERS + 1),
    `1:${MAX_ANSWER_SIZE + 1}`,
    '5 6',
  ]) {
    t.is(parseAnswersRequest(s), null, JSON.stringify(s));
  }
});
