/**
 * Test helpers for the SASL mechanisms: drive a client against a server in memory,
 * and check that a failure carries one of the fixed reasons.
 */
import type { ExecutionContext } from 'ava';
import {
  SaslReasons,
  type SaslClientMechanism,
  type SaslClientOutcome,
  type SaslServerMechanism,
  type SaslServerStep,
} from '../../../src/profiles/sasl/index.js';

/** What an in-memory exchange ended with. */
export interface ExchangeResult {
  /** The server's last step. */
  server: SaslServerStep;
  /** The client's verdict (after a server success), or its own failure. */
  client?: SaslClientOutcome;
  /** Every message, as `C: …` / `S: …` (UTF-8, for debugging). */
  transcript: string[];
}

/** Runs `client` against `server` until a final outcome (at most 10 rounds). */
export async function runExchange(
  client: SaslClientMechanism,
  server: SaslServerMechanism,
  options: { initial?: boolean } = {},
): Promise<ExchangeResult> {
  const transcript: string[] = [];
  let input = options.initial === false ? undefined : await client.initial();
  for (let round = 0; round < 10; round++) {
    if (input !== undefined) transcript.push(`C: ${input.toString('utf8')}`);
    const s = await server.step(input);
    if (s.status === 'continue') {
      transcript.push(`S: ${s.challenge.toString('utf8')}`);
      const c = await client.step(s.challenge);
      if (c.status === 'failure') return { server: s, client: c, transcript };
      input = c.response;
      continue;
    }
    if (s.status === 'success') {
      if (s.additional !== undefined) transcript.push(`S+: ${s.additional.toString('utf8')}`);
      return { server: s, client: await client.finish(s.additional), transcript };
    }
    transcript.push(`S-: ${s.code} ${s.reason}`);
    return { server: s, transcript };
  }
  throw new Error('exchange did not finish in 10 rounds');
}

const reasons = new Set<string>(Object.values(SaslReasons));

/** Asserts `step` is a failure with `code` and one of the fixed reasons (optionally a given one). */
export function assertFailure(t: ExecutionContext, step: SaslServerStep, code: number, reason?: string): void {
  t.is(step.status, 'failure', JSON.stringify(step));
  if (step.status !== 'failure') return;
  t.is(step.code as number, code);
  t.true(reasons.has(step.reason), step.reason);
  if (reason !== undefined) t.is(step.reason, reason);
}

/** True when `step` is well formed and, if a failure, carries a fixed reason and an allowed code. */
export function isWellFormed(step: SaslServerStep): boolean {
  if (step.status === 'continue') return Buffer.isBuffer(step.challenge);
  if (step.status === 'success') return typeof step.identity.authcid === 'string' && step.identity.authcid !== '';
  return [454, 534, 535, 538].includes(step.code) && reasons.has(step.reason);
}

/** Base64 of a UTF-8 string. */
export function b64(s: string): string {
  return Buffer.from(s, 'utf8').toString('base64');
}
