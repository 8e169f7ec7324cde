/**
 * What the FNUA makes of the FNAA's replies (`spec/flows.md` §4, §6): a
 * reply body as a JSON object, an `{"error": …}` document or a refused
 * exchange as a {@link FlowsError}.
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import { BeepError, BeepReplyError, ErrorCodes } from '../errors.js';
import { FlowsError, isFlowsErrorCode, type FlowsErrorCode } from './errors.js';

/** The {@link FlowsError} an `{"error": {code, reply, message, …}}` object stands for, or undefined when it is not one. */
export function errorFromJson(e: unknown, cause?: unknown): FlowsError | undefined {
  if (e === null || typeof e !== 'object') return undefined;
  const o = e as Record<string, unknown>;
  if (!isFlowsErrorCode(o.code) || typeof o.message !== 'string') return undefined;
  const details: Record<string, string | number> = {};
  for (const [k, v] of Object.entries(o)) if (k !== 'code' && k !== 'reply' && k !== 'message' && (typeof v === 'string' || typeof v === 'number')) details[k] = v;
  return new FlowsError(o.code, o.message, { origin: 'remote', details, ...(cause !== undefined ? { cause } : {}), ...(typeof o.reply === 'number' ? { replyCode: o.reply } : {}) });
}

/** Turn anything a flows exchange can fail with into a {@link FlowsError} (aborts pass through). */
export function toFlowsError(err: unknown): unknown {
  if (err instanceof FlowsError) return err;
  if (err instanceof BeepReplyError) {
    if (err.body !== undefined) {
      try {
        const doc = JSON.parse(Buffer.from(err.body).toString('utf8')) as { error?: unknown };
        const e = errorFromJson(doc.error, err);
        if (e) return e;
      } catch {
        /* not ours: by reply code below */
      }
    }
    const reply = err.replyCode ?? 0;
    return new FlowsError(codeForReply(reply), err.diagnostic || `refused with ${reply}`, { origin: 'remote', cause: err, ...(reply >= 400 && reply <= 599 ? { replyCode: reply } : {}) });
  }
  if (err instanceof BeepError && err.code === ErrorCodes.ABORTED) return err;
  if (err instanceof BeepError) return new FlowsError('UNAVAILABLE', `flows connection failed: ${err.message}`, { origin: 'local', beepCode: err.beepCode, cause: err });
  return err;
}

function codeForReply(reply: number): FlowsErrorCode {
  if (reply === 421 || reply === 454) return 'UNAVAILABLE';
  if (reply === 530 || reply === 534 || reply === 535 || reply === 537 || reply === 538) return 'NOT_AUTHORIZED';
  if (reply === 500 || reply === 501 || reply === 553) return 'BAD_REQUEST';
  if (reply === 504) return 'UNKNOWN_OP';
  return 'SERVER_ERROR';
}

/** A reply body as a JSON object; SERVER_ERROR when it is not one. */
export function parseReply(body: Buffer): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    throw new FlowsError('SERVER_ERROR', 'the server sent a reply that is not JSON', { origin: 'remote' });
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new FlowsError('SERVER_ERROR', 'the server sent a reply that is not a JSON object', { origin: 'remote' });
  return doc as Record<string, unknown>;
}
