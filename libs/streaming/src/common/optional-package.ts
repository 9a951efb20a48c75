/**
 * Optional peer dependencies (`ioredis`, `nats`, `better-sqlite3`) are loaded
 * only when the backend or store that needs them is configured, the way Nest
 * loads its own optional packages: an app on the local in-memory backend runs
 * without any of them installed.
 */

const loaded = new Map<string, unknown>();

/**
 * `require(name)` on first use; when the package is not installed, throws an
 * Error that names it and the feature that needs it, with the install command.
 */
export function loadOptionalPackage<T>(name: string, feature: string, load: () => T): T {
  if (loaded.has(name)) return loaded.get(name) as T;
  let mod: T;
  try {
    mod = load();
  } catch (err) {
    const missing =
      (err as NodeJS.ErrnoException)?.code === 'MODULE_NOT_FOUND' &&
      String((err as Error).message).includes(`'${name}'`);
    if (!missing) throw err;
    throw new Error(
      `The ${feature} needs the package "${name}", which is not installed. Install it with: npm install ${name}`,
    );
  }
  loaded.set(name, mod);
  return mod;
}
