import { Browser, chromium, Locator, Page } from 'playwright-core';

/** Chromium as the browser tests drive it: Debian's package, headless, kept off the network. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-quic',
      '--no-first-run',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/**
 * Waits for `target` on `page`, entering as a guest first where the portal asks: its sign-in page
 * comes once a browser context, so it may or may not stand before the page asked for.
 */
export async function shownAsGuest(page: Page, target: Locator) {
  const enter = page.getByRole('button', { name: /enter/i }).first();
  await Promise.race([
    target.waitFor({ timeout: 60_000 }),
    enter.waitFor({ timeout: 60_000 }),
  ]);
  if (await enter.isVisible()) await enter.click();
  await target.waitFor({ timeout: 60_000 });
}
