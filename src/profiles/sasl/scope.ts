/**
 * OAuth scope helpers shared by the token validators (RFC 6749 §3.3: a scope is a
 * space-delimited list of case-sensitive tokens).
 *
 * @module
 */

/**
 * Scopes from a `scope` claim or member (space-separated string, RFC 8693 §4.2 /
 * RFC 7662 §2.2) or an `scp` array; anything else gives no scopes.
 */
export function scopesOf(claims: Record<string, unknown>): string[] {
  const scope = claims['scope'];
  if (typeof scope === 'string') return scope.split(' ').filter((s) => s !== '');
  const scp = claims['scp'];
  if (typeof scp === 'string') return scp.split(' ').filter((s) => s !== '');
  if (Array.isArray(scp)) return scp.filter((s): s is string => typeof s === 'string' && s !== '');
  return [];
}

/** The required scopes as a list, from one space-separated string or a list. */
export function requiredScopes(required: string | readonly string[] | undefined): string[] {
  if (required === undefined) return [];
  return (typeof required === 'string' ? required.split(' ') : [...required]).filter((s) => s !== '');
}

/** The first required scope `granted` lacks, if any. */
export function missingScope(granted: readonly string[], required: readonly string[]): string | undefined {
  const have = new Set(granted);
  return required.find((s) => !have.has(s));
}
