/**
 * One format for every error the `beepstream` command prints, whatever the
 * command: one line on standard error, prefixed `beepstream: `.
 *
 * - a negative reply with a BEEP reply code (RFC 3080 §8) prints as
 *   `beepstream: error CODE: TEXT` — the same from `connect`, `s2uc`,
 *   `appctrl` and `session` for the same reply;
 * - a SciStream error (draft §8) adds its status code and what the server
 *   sent with it: `beepstream: error 554: CONN_ERROR: failed to establish a
 *   connection to a remote endpoint: 127.0.0.1:9 (ECONNREFUSED)`;
 * - any other beepstream error: `beepstream: MESSAGE [BEEP_ERR_…]`;
 * - a usage error (exit 2): `beepstream: MESSAGE`.
 *
 * @module
 */
import { BeepError, BeepReplyError, ErrorCodes } from '../errors.js';
import { SciStreamError } from '../scistream/index.js';

/** The prefix of every line the CLI writes on standard error. */
export const ERROR_PREFIX = 'beepstream: ';

/** `error CODE: TEXT`, the form of every negative reply. */
function replyLine(replyCode: number, text: string): string {
  return `error ${replyCode}: ${text}`;
}

/**
 * The text of an error as the CLI prints it (without the prefix). See the
 * module documentation for the forms.
 */
export function describeError(err: unknown): string {
  if (err instanceof SciStreamError) {
    // A refusal at the BEEP layer (e.g. SASL 535) that the client turned into a
    // SciStreamError prints as the BEEP reply it was, as `connect` prints it.
    const cause = err.cause;
    if (cause instanceof BeepReplyError && cause.replyCode === err.replyCode && cause.diagnostic === err.message) {
      return replyLine(cause.replyCode, cause.diagnostic);
    }
    let text = `${err.code}: ${err.message}`;
    if (err.endpoint !== undefined) text += `: ${err.endpoint}`;
    if (err.details !== undefined && err.details !== '') text += ` (${err.details})`;
    if (err.retryAfter !== undefined) text += ` (retry after ${err.retryAfter} s)`;
    return replyLine(err.replyCode, text);
  }
  // A usage error (bad argument or configuration) is its message alone.
  if (err instanceof BeepError && err.beepCode === ErrorCodes.USAGE) return err.message;
  if (err instanceof BeepReplyError && err.replyCode !== undefined) return replyLine(err.replyCode, err.diagnostic || 'no diagnostic');
  if (err instanceof BeepError) {
    return err.replyCode !== undefined && err.origin === 'remote' ? replyLine(err.replyCode, err.message.replace(new RegExp(`^${err.replyCode} `), '')) : `${err.message} [${err.code}]`;
  }
  return err instanceof Error ? err.message : String(err);
}

/** Write `err` as one line on standard error, in the CLI's one format. */
export function printError(err: unknown): void {
  process.stderr.write(`${ERROR_PREFIX}${describeError(err)}\n`);
}
