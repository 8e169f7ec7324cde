/**
 * `beepstream users`: manage a SCRAM-SHA-256 users file (salted keys only —
 * no password is ever stored or printed).
 *
 * @module
 */
import { existsSync } from 'node:fs';
import { createUserEntry, DEFAULT_SCRAM_ITERATIONS, loadUsersFile, MIN_SCRAM_ITERATIONS, normalizeUsername, saveUsersFile, type ScramCredentials } from '../profiles/index.js';
import { parsePositiveInt, UsageError } from './address.js';
import { readPasswordInput } from './security.js';

async function load(file: string, mustExist: boolean): Promise<Map<string, ScramCredentials>> {
  if (!existsSync(file)) {
    if (mustExist) throw new UsageError(`users file ${JSON.stringify(file)} does not exist`);
    return new Map();
  }
  try {
    return await loadUsersFile(file);
  } catch (err) {
    // The library's message already names the file ("users file PATH: …").
    throw new UsageError((err as Error).message);
  }
}

/** `users add FILE USER`: add or replace a user; the password comes from --password env:/file: or stdin. */
export async function runUsersAdd(file: string, user: string, opts: { iterations: string; password?: string }): Promise<void> {
  const iterations = parsePositiveInt('--iterations', opts.iterations, 10_000_000);
  if (iterations < MIN_SCRAM_ITERATIONS) throw new UsageError(`--iterations must be at least ${MIN_SCRAM_ITERATIONS}`);
  let name: string;
  try {
    name = normalizeUsername(user);
  } catch {
    throw new UsageError(`invalid user name ${JSON.stringify(user)}`);
  }
  const users = await load(file, false);
  const password = await readPasswordInput(opts.password, `password for ${name}: `);
  users.set(name, await createUserEntry(password, iterations));
  await saveUsersFile(file, users);
  process.stdout.write(`${users.size === 1 ? 'created' : 'updated'} ${file}: user ${name} (SCRAM-SHA-256, ${iterations} iterations)\n`);
}

/** `users remove FILE USER`. */
export async function runUsersRemove(file: string, user: string): Promise<void> {
  const users = await load(file, true);
  if (!users.delete(normalizeUsername(user))) throw new UsageError(`no user ${JSON.stringify(user)} in ${file}`);
  await saveUsersFile(file, users);
  process.stdout.write(`removed user ${user}\n`);
}

/** `users list FILE`: names only. */
export async function runUsersList(file: string): Promise<void> {
  const users = await load(file, true);
  for (const name of users.keys()) process.stdout.write(`${name}\n`);
}

export { DEFAULT_SCRAM_ITERATIONS };
