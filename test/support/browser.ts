/**
 * Chromium for the demo page's e2e specs: Debian's chromium driven by
 * playwright-core, and the page bundled by scripts/build-web.mjs.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { chromium, type Browser } from 'playwright-core';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** Where the specs save their screenshots. */
export const ARTIFACTS = join(__dirname, '..', '..', 'test-artifacts');

/**
 * Checks that Chromium is installed (failing with the install command), bundles
 * the demo page from apps/demo-chat/web and makes the screenshots folder.
 */
export function prepareDemoPage(): void {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium not found at ${CHROMIUM}: install it with "apt-get install -y chromium" (or set CHROMIUM_PATH)`,
    );
  }
  const built = spawnSync('node', ['scripts/build-web.mjs'], {
    cwd: join(__dirname, '..', '..'),
    stdio: 'inherit',
  });
  if (built.status !== 0) throw new Error('building the demo page failed');
  mkdirSync(ARTIFACTS, { recursive: true });
}

/** A headless Chromium with the flags these machines need. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
