/**
 * Memory budgets against hostile peers (issue 17): the pool a listener's
 * sessions share and the fixed cost of a message waiting behind a reply.
 *
 * @module
 */

/**
 * A memory budget shared by several sessions (a listener's `memoryBudget`):
 * the octets they hold together, as each session's {@link SessionFlow.held}.
 */
export class MemoryPool {
  /** Octets held by all sessions drawing on the pool. */
  used = 0;
  /** @param limit octets the sessions may hold together */
  constructor(readonly limit: number) {}
}

/**
 * Fixed cost charged per message waiting behind a blocked reply (octets): the
 * message, responder and stream objects a waiting exchange keeps alive.
 */
export const MESSAGE_COST = 2048;
