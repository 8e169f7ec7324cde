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
  | { type: 'ready'; port: number }
  | { type: 'result'; metrics: Metrics }
  | { type: 'error'; message: string }
  | Reply
  | ServerCommand;

/** Parent → worker. */
export type ToWorker = InitServer | InitClient | Command | Reply;
