/**
 * The Chromium executable the browser tests launch through playwright-core: `BEEPSTREAM_CHROMIUM`,
 * else Debian's `/usr/bin/chromium` (or `chromium-browser`). `npm test`'s pretest step
 * (scripts/test-deps.mjs) installs Debian's `chromium` when it can; when there is none this
 * throws an error naming what is missing, so the test fails (it never skips).
 */
import { accessSync, constants } from 'node:fs';

/** The path of an executable Chromium, or an error saying what to install. */
export function chromiumExecutable(): string {
  const candidates = [process.env.BEEPSTREAM_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'];
  for (const path of candidates) {
    if (path === undefined || path === '') continue;
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // try the next one
    }
  }
  throw new Error(
    'Chromium is missing: no executable at $BEEPSTREAM_CHROMIUM, /usr/bin/chromium or /usr/bin/chromium-browser. ' +
      'Install the Debian package "chromium" (apt-get install -y chromium; `npm test` does this itself when run as root) ' +
      'or set BEEPSTREAM_CHROMIUM to a Chromium binary.',
  );
}
