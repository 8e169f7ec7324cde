/**
 * Messages between the parent (`run.ts`) and its worker processes.
 *
 * @module
 */
import type { ImplOptions } from './adapter.js';
import type { CaseParams, Metrics } from '../cases.js';

/** Parent → worker: become the server of `impl`. */
export interface InitServer {
  type: 'init';
  role: 'server';
  impl: string;
  options: ImplOptions;
}

/** Parent → worker: run case `caseId` as the client of `impl` against `port`. */
export interface InitClient {
  type: 'init';
  role: 'client';
  impl: string;
  options: ImplOptions;
  caseId: string;
  params: CaseParams;
  port: number;
}

/**
 * Parent → worker: become one facility's SciStream data server (S2DS) for the
 * `scistream-*` cases: `inbound` (producer side: listens for the remote S2DS,
 * connects to `peers`, the producer application) or `outbound` (consumer side:
 * connects to `peers`, the inbound S2DS, and listens for the consumer
 * application). Answers `ready` with its first listener's port and all its
 * listeners; `exit` closes the data server, then the process.
 */
export interface InitS2ds {
  type: 'init';
  role: 's2ds';
  side: 'inbound' | 'outbound';
  /** Session uid (32 hex digits); the TLS-PSK is derived from it. */
  uid: string;
  /** `host:port`: the producer application (inbound) or the inbound S2DS (outbound). */
  peers: string[];
  numConn: number;
  /** BEEP limits over the data plane's own (`DATA_LIMITS`); empty: its defaults. */
  limits: Record<string, number>;
  /**
   * `node-tls`: instead of an S2DS, run the ceiling relay (`tlsrelay.ts`):
   * node:tls with the same PSK and suite, the S2DS's pump both ways, no BEEP.
   */
  relay?: 'node-tls';
}

/** Parent → server worker: a command; answered by a {@link Reply} with the same id. */
export interface Command {
  type: 'cmd';
  id: number;
  cmd: 'mark' | 'report' | 'exit';
  arg?: unknown;
}

/** Answer to a {@link Command} or a {@link ServerCommand}. */
export interface Reply {
  type: 'reply';
  id: number;
  result?: unknown;
  error?: string;
}

/** Client worker → parent: relay this command to the server worker. */
export interface ServerCommand {
  type: 'server-cmd';
  id: number;
  cmd: 'mark' | 'report';
  arg?: unknown;
}

/** Worker → parent. */
export type FromWorker =
  | { type: 'ready'; port: number; listeners?: string[]; info?: string }
  | { type: 'result'; metrics: Metrics }
  | { type: 'error'; message: string }
  | Reply
  | ServerCommand;

/** Parent → worker. */
export type ToWorker = InitServer | InitClient | InitS2ds | Command | Reply;
