/**
 * Options and plain types of the S2CS session registry (see `registry.ts`).
 *
 * @module
 */
import type { DataPathStats, DataServer } from '../dataplane.js';
import type { SciStreamLimits } from '../limits.js';
import type { SciStreamError } from './errors.js';
import type { HelloMessage, RequestMessage, SciStreamRole, ControlSessionState } from './messages.js';

/** Who sent a control message, and over which connection. */
export interface ControlContext {
  /** The authenticated authorization identity (`core.identity.authzid`). */
  readonly identity: string;
  /** The connection (BEEP session) it came on; any object, compared by identity. */
  readonly connection: object;
}

/** Something the registry did, for logging. Never carries the whole uid (it is the data-plane secret). */
export interface ControlEvent {
  type: 'requested' | 'hello' | 'targets' | 'setup' | 'active' | 'released' | 'timeout' | 'failed' | 'closed' | 'orphaned';
  /** The session's non-secret tag (`sessionTag(uid)`: derived from the uid, reveals none of it); empty when no session is concerned. */
  tag: string;
  identity?: string;
  role?: SciStreamRole;
  error?: SciStreamError;
  /** `orphaned`: the session was requested with `keep` and stays until RELEASE (else it is released now). */
  keep?: boolean;
}

/** Options of a {@link SessionRegistry} (and of the control server). */
export interface RegistryOptions {
  /** The data server that opens and closes data paths. */
  dataServer: DataServer;
  /** How long a REQUEST waits for its HELLO / UPDATETARGETS, and early ones for their REQUEST (ms, default 60000). */
  rendezvousTimeoutMs?: number;
  /**
   * What a session may ask for: `num_conn`, striping, rate, sessions
   * ({@link SciStreamLimits}, validated once by `resolveSciStreamLimits`).
   * The four shorthand options below set the same limits; `limits` wins.
   */
  limits?: Partial<SciStreamLimits>;
  /** Shorthand for `limits.maxSessions`: most sessions (REQUESTs accepted and not released) at once; beyond: NO_RESOURCE (default 1024). */
  maxSessions?: number;
  /** Shorthand for `limits.maxSessionsPerIdentity`: most sessions one identity holds at once; beyond: RATE_LIMIT (default 64). */
  maxSessionsPerIdentity?: number;
  /** Most HELLOs / UPDATETARGETS waiting for a REQUEST at once; beyond: NO_RESOURCE (default 1024). */
  maxEarly?: number;
  /** Most of those one identity has waiting; beyond: RATE_LIMIT (default 64). */
  maxEarlyPerIdentity?: number;
  /** Shorthand for `limits.maxNumConn`: largest num_conn; beyond: NO_RESOURCE (default 64, at most 512). */
  maxConnPerSession?: number;
  /** Shorthand for `limits.maxRate`: largest rate (octets/s) a REQUEST may ask for; beyond: NO_RESOURCE (default: no cap). */
  maxRate?: number;
  /** REQUESTs per identity: a token bucket; when empty: RATE_LIMIT with the exact retry_after. `false`: none. Default burst 64, 8/s. */
  requestRate?: { burst: number; perSecond: number } | false;
  /** retry_after (seconds) on quota and capacity errors (default 30). */
  retryAfter?: number;
  /** After the requesting connection closes, release its sessions this much later (ms, default 0: at once). */
  disconnectGraceMs?: number;
  /** Honour REQUEST `keep='true'` (default true); when false such a REQUEST gets NOT_IMPLEMENTED. */
  allowKeep?: boolean;
  /** How many uids that carried a data path are remembered to refuse their reuse (default 4096). */
  rememberUids?: number;
  /** Policy: may this identity REQUEST? (default: every authenticated identity) — false gives AUTH_ERROR. */
  authorizeRequest?: (identity: string, message: RequestMessage) => boolean;
  /** Policy: may this identity HELLO? (default: every authenticated identity holding the uid) — false gives AUTH_ERROR. */
  authorizeHello?: (identity: string, message: HelloMessage) => boolean;
  /** Observe session life-cycle events (requested, hello, active, released, timeout, …), e.g. for logging. */
  onEvent?: (event: ControlEvent) => void;
  /** Clock in ms (tests). */
  now?: () => number;
}

/** A read-only view of one session, for STATUS and tools. */
export interface SessionSnapshot {
  /** The uid: the data-plane secret — tools must show {@link SessionSnapshot.tag} instead. */
  uid: string;
  /** Non-secret tag of the session (`sessionTag(uid)`), for logs, metrics and status pages. */
  tag: string;
  state: ControlSessionState;
  /** Identity that sent the REQUEST (undefined for an early HELLO / UPDATETARGETS). */
  owner: string | undefined;
  role: SciStreamRole | undefined;
  /** The data path's listeners (empty until it is open). */
  listeners: readonly string[];
  /** The owner's control connection is still open. */
  attached: boolean;
  /** num_conn of the REQUEST, once it came. */
  numConn?: number;
  /** Counters of the data path, while it is open. */
  stats?: DataPathStats;
}
