// What a single-file build of tfjs-ddp (scripts/bundle.mjs) tells the code it bundles. Installed
// from node_modules, the packages find each other by module resolution; inside one bundle there are
// no node_modules to resolve, so the bundle's entry states where things are before anything runs:
// the optional backend packages it carries, the folder with the tfjs wasm binaries, the entry files
// of the worker and of its heartbeat thread, and the version.

export interface BundleInfo {
  /** Modules the bundle carries, by the specifier the backend loaders import. */
  modules?: Record<string, () => Promise<unknown>>;
  /** Folder holding tfjs-backend-wasm's .wasm files. */
  wasmDir?: string;
  /** The worker's entry file, for the local launcher to start. */
  workerBin?: string;
  /** The entry file of the worker's heartbeat thread. */
  heartbeatThread?: string;
  version?: string;
}

let info: BundleInfo = {};

/** Called once by a bundle's entry, before the command runs. */
export function provideBundleInfo(next: BundleInfo): void {
  info = { ...next };
}

/** What the running bundle provided; empty when running from node_modules. */
export function bundleInfo(): Readonly<BundleInfo> {
  return info;
}
